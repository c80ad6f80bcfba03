//! Word differences between two versions of an item's text, for the item page's history.

/// One run of a difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    Same(String),
    Added(String),
    Removed(String),
}

/// The most words compared (each side); longer texts are compared by their first words only.
const MAX_WORDS: usize = 4000;

/// The word-level difference from `old` to `new` (a longest common subsequence of words), as runs of
/// words joined by single spaces.
pub fn words(old: &str, new: &str) -> Vec<Run> {
    let a: Vec<&str> = old.split_whitespace().take(MAX_WORDS).collect();
    let b: Vec<&str> = new.split_whitespace().take(MAX_WORDS).collect();
    // lengths[i][j]: the LCS length of a[i..] and b[j..], in one flat table.
    let width = b.len() + 1;
    let mut lengths = vec![0u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lengths[i * width + j] = if a[i] == b[j] {
                lengths[(i + 1) * width + j + 1] + 1
            } else {
                lengths[(i + 1) * width + j].max(lengths[i * width + j + 1])
            };
        }
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut push = |run: Run| {
        let merged = match (runs.last_mut(), &run) {
            (Some(Run::Same(text)), Run::Same(word))
            | (Some(Run::Added(text)), Run::Added(word))
            | (Some(Run::Removed(text)), Run::Removed(word)) => {
                text.push(' ');
                text.push_str(word);
                true
            }
            _ => false,
        };
        if !merged {
            runs.push(run);
        }
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            push(Run::Same(a[i].to_string()));
            i += 1;
            j += 1;
        } else if lengths[(i + 1) * width + j] >= lengths[i * width + j + 1] {
            push(Run::Removed(a[i].to_string()));
            i += 1;
        } else {
            push(Run::Added(b[j].to_string()));
            j += 1;
        }
    }
    for word in &a[i..] {
        push(Run::Removed(word.to_string()));
    }
    for word in &b[j..] {
        push(Run::Added(word.to_string()));
    }
    runs
}

/// The difference as HTML: unchanged text, `<ins>` and `<del>`; all text escaped.
pub fn to_html(runs: &[Run]) -> String {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    runs.iter()
        .map(|run| match run {
            Run::Same(text) => escape(text),
            Run::Added(text) => format!("<ins>{}</ins>", escape(text)),
            Run::Removed(text) => format!("<del>{}</del>", escape(text)),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_found_and_escaped() {
        let runs = words("Trains run to Tashkent <daily>", "Trains run to Samarkand <daily> now");
        assert_eq!(
            runs,
            vec![
                Run::Same("Trains run to".into()),
                Run::Removed("Tashkent".into()),
                Run::Added("Samarkand".into()),
                Run::Same("<daily>".into()),
                Run::Added("now".into()),
            ]
        );
        assert_eq!(
            to_html(&runs),
            "Trains run to <del>Tashkent</del> <ins>Samarkand</ins> &lt;daily&gt; <ins>now</ins>"
        );
        assert_eq!(words("same", "same"), vec![Run::Same("same".into())]);
        assert_eq!(words("", "new"), vec![Run::Added("new".into())]);
    }
}
