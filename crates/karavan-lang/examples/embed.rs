//! Prints the embeddings of the lines of standard input, one line of floats each:
//! `cargo run --release -p karavan-lang --example embed -- MODEL query|passage`.
use std::io::BufRead;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = karavan_lang::Embedder::load(std::path::Path::new(&args[1])).expect("model loads");
    let role = if args.get(2).map(String::as_str) == Some("query") {
        karavan_lang::Role::Query
    } else {
        karavan_lang::Role::Passage
    };
    let lines: Vec<String> = std::io::stdin().lock().lines().map(Result::unwrap).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let start = std::time::Instant::now();
    let vectors = model.embed(&refs, role).expect("embeds");
    eprintln!("{} texts in {:?}", lines.len(), start.elapsed());
    for v in vectors {
        println!("{}", v.iter().map(|x| format!("{x:.7}")).collect::<Vec<_>>().join(" "));
    }
}
