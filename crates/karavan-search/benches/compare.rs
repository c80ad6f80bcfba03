//! Search bench: Karavan's index against SQLite FTS5 and PostgreSQL full-text search, on the same
//! generated corpus and the same query mix.
//!
//! The corpus: KARAVAN_BENCH_ITEMS items (500,000) in nine member languages, generated from fixed word
//! lists with a fixed seed (headline of 6 – 10 words, body of 40 – 90 words, Zipf-like word frequencies).
//! Karavan indexes through `SearchIndex::upsert` and searches through `SearchIndex::search` exactly as the
//! API does (visibility inside the query, facets, snippets, top 20). The peers answer the same queries
//! with their top 20 by rank and a total count: FTS5 with its default unicode61 tokenizer; PostgreSQL
//! with a `simple` tsvector column and a GIN index (database `karavan_bench` on 127.0.0.1:5432, dropped
//! and recreated). Karavan's side runs on mimalloc, the allocator of the `karavan` binary (SQLite and
//! PostgreSQL allocate with their own). Run: `cargo bench -p karavan-search --bench compare`.

/// The allocator the `karavan` binary ships with (since issue 18), so that indexing is measured as
/// the server runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::time::{Duration, Instant};

use karavan_search::{Audience, Grant, IndexDoc, SearchIndex, SearchRequest};

const LANGUAGES: [(&str, &[&str]); 9] = [
    (
        "zh",
        &[
            "铁路",
            "货运",
            "班列",
            "口岸",
            "贸易",
            "合作",
            "发展",
            "项目",
            "建设",
            "能源",
            "农业",
            "丰收",
            "文化",
            "节日",
            "科技",
            "创新",
            "峰会",
            "会议",
            "代表团",
            "经济",
            "增长",
            "投资",
            "企业",
            "物流",
            "中心",
            "城市",
            "地区",
            "人民",
            "政府",
            "国际",
            "交流",
            "旅游",
            "水资源",
            "电力",
            "天然气",
            "管道",
            "工业",
            "园区",
            "教育",
            "医疗",
        ],
    ),
    (
        "ru",
        &[
            "железная",
            "дорога",
            "поезд",
            "грузовой",
            "торговля",
            "сотрудничество",
            "развитие",
            "проект",
            "строительство",
            "энергия",
            "сельское",
            "хозяйство",
            "урожай",
            "пшеница",
            "культура",
            "фестиваль",
            "наука",
            "саммит",
            "встреча",
            "делегация",
            "экономика",
            "рост",
            "инвестиции",
            "компания",
            "логистика",
            "город",
            "регион",
            "правительство",
            "международный",
            "вода",
            "электричество",
            "газ",
            "трубопровод",
            "граница",
            "таможня",
            "контейнер",
            "терминал",
            "выставка",
            "спорт",
            "чемпионат",
        ],
    ),
    (
        "en",
        &[
            "railway",
            "freight",
            "train",
            "border",
            "trade",
            "cooperation",
            "development",
            "project",
            "construction",
            "energy",
            "agriculture",
            "harvest",
            "wheat",
            "culture",
            "festival",
            "science",
            "summit",
            "meeting",
            "delegation",
            "economy",
            "growth",
            "investment",
            "company",
            "logistics",
            "city",
            "region",
            "government",
            "international",
            "water",
            "electricity",
            "gas",
            "pipeline",
            "customs",
            "container",
            "terminal",
            "exhibition",
            "sport",
            "championship",
            "weather",
            "health",
        ],
    ),
    (
        "kk",
        &[
            "теміржол",
            "пойыз",
            "жүк",
            "шекара",
            "сауда",
            "ынтымақтастық",
            "даму",
            "жоба",
            "құрылыс",
            "энергия",
            "ауыл",
            "шаруашылығы",
            "егін",
            "бидай",
            "мәдениет",
            "мереке",
            "ғылым",
            "саммит",
            "кездесу",
            "делегация",
            "экономика",
            "өсім",
            "инвестиция",
            "компания",
            "логистика",
            "қала",
            "өңір",
            "үкімет",
            "халықаралық",
            "су",
            "электр",
            "газ",
            "құбыр",
            "кеден",
            "контейнер",
            "терминал",
            "көрме",
            "спорт",
            "чемпионат",
            "Қазақстан",
        ],
    ),
    (
        "uz-Latn",
        &[
            "temir",
            "yo‘l",
            "poyezd",
            "yuk",
            "chegara",
            "savdo",
            "hamkorlik",
            "rivojlanish",
            "loyiha",
            "qurilish",
            "energiya",
            "qishloq",
            "xo‘jaligi",
            "hosil",
            "bug‘doy",
            "madaniyat",
            "bayram",
            "fan",
            "sammit",
            "uchrashuv",
            "delegatsiya",
            "iqtisodiyot",
            "o‘sish",
            "investitsiya",
            "kompaniya",
            "logistika",
            "shahar",
            "viloyat",
            "hukumat",
            "xalqaro",
            "suv",
            "elektr",
            "gaz",
            "quvur",
            "bojxona",
            "konteyner",
            "terminal",
            "ko‘rgazma",
            "sport",
            "Toshkent",
        ],
    ),
    (
        "uz-Cyrl",
        &[
            "темир",
            "йўл",
            "поезд",
            "юк",
            "чегара",
            "савдо",
            "ҳамкорлик",
            "ривожланиш",
            "лойиҳа",
            "қурилиш",
            "энергия",
            "қишлоқ",
            "хўжалиги",
            "ҳосил",
            "буғдой",
            "маданият",
            "байрам",
            "фан",
            "саммит",
            "учрашув",
            "делегация",
            "иқтисодиёт",
            "ўсиш",
            "инвестиция",
            "компания",
            "логистика",
            "шаҳар",
            "вилоят",
            "ҳукумат",
            "халқаро",
            "сув",
            "электр",
            "газ",
            "қувур",
            "божхона",
            "контейнер",
            "терминал",
            "кўргазма",
            "спорт",
            "Тошкент",
        ],
    ),
    (
        "ky",
        &[
            "темир",
            "жол",
            "поезд",
            "жүк",
            "чек",
            "соода",
            "кызматташтык",
            "өнүгүү",
            "долбоор",
            "курулуш",
            "энергия",
            "айыл",
            "чарба",
            "түшүм",
            "буудай",
            "маданият",
            "майрам",
            "илим",
            "саммит",
            "жолугушуу",
            "делегация",
            "экономика",
            "өсүш",
            "инвестиция",
            "компания",
            "логистика",
            "шаар",
            "аймак",
            "өкмөт",
            "эл",
            "суу",
            "электр",
            "газ",
            "түтүк",
            "бажы",
            "контейнер",
            "терминал",
            "көргөзмө",
            "спорт",
            "Бишкек",
        ],
    ),
    (
        "tk",
        &[
            "demir",
            "ýol",
            "otly",
            "ýük",
            "serhet",
            "söwda",
            "hyzmatdaşlyk",
            "ösüş",
            "taslama",
            "gurluşyk",
            "energiýa",
            "oba",
            "hojalygy",
            "hasyl",
            "bugdaý",
            "medeniýet",
            "baýramy",
            "ylym",
            "sammit",
            "duşuşyk",
            "wekiliýet",
            "ykdysadyýet",
            "ösüş",
            "maýa",
            "kompaniýa",
            "logistika",
            "şäher",
            "welaýat",
            "hökümet",
            "halkara",
            "suw",
            "elektrik",
            "gaz",
            "turba",
            "gümrük",
            "konteýner",
            "terminal",
            "sergi",
            "sport",
            "Aşgabat",
        ],
    ),
    (
        "tg",
        &[
            "роҳи",
            "оҳан",
            "қатора",
            "бор",
            "сарҳад",
            "савдо",
            "ҳамкорӣ",
            "рушд",
            "лоиҳа",
            "сохтмон",
            "энергия",
            "кишоварзӣ",
            "ҳосил",
            "гандум",
            "фарҳанг",
            "ҷашн",
            "илм",
            "саммит",
            "мулоқот",
            "ҳайат",
            "иқтисод",
            "афзоиш",
            "сармоя",
            "ширкат",
            "логистика",
            "шаҳр",
            "вилоят",
            "ҳукумат",
            "байналмилалӣ",
            "об",
            "барқ",
            "газ",
            "қубур",
            "гумрук",
            "контейнер",
            "терминал",
            "намоишгоҳ",
            "варзиш",
            "Душанбе",
            "нерӯгоҳ",
        ],
    ),
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Zipf-like: low indexes much more often.
    fn word<'a>(&mut self, words: &[&'a str]) -> &'a str {
        let r = (self.next() % 10_000) as f64 / 10_000.0;
        words[((r * r) * words.len() as f64) as usize]
    }
}

fn sentence(rng: &mut Rng, language: &str, words: &[&str], count: usize) -> String {
    let picked: Vec<&str> = (0..count).map(|_| rng.word(words)).collect();
    if language == "zh" { picked.concat() + "。" } else { picked.join(" ") + "." }
}

fn corpus(items: usize) -> Vec<IndexDoc> {
    let mut rng = Rng(0x5EED_CAFE_F00D_1234);
    let start = 1_700_000_000_000_000i64;
    (0..items)
        .map(|n| {
            let (language, words) = LANGUAGES[n % LANGUAGES.len()];
            let headline_words = 6 + (rng.next() % 5) as usize;
            let body_words = 40 + (rng.next() % 51) as usize;
            let headline = sentence(&mut rng, language, words, headline_words);
            let body = (0..body_words.div_ceil(15))
                .map(|_| sentence(&mut rng, language, words, 15))
                .collect::<Vec<_>>()
                .join(" ");
            IndexDoc {
                item_id: format!("itm_{n:026}"),
                seq: n as i64 + 1,
                owner: format!("mbr_{}", n % 7),
                country: Some(["CN", "KZ", "KG", "TJ", "TM", "UZ", "RU"][n % 7].to_string()),
                language: Some(language.to_string()),
                item_type: Some("text".to_string()),
                urgency: Some(1 + (n % 9) as u8),
                dated_at: start + n as i64 * 60_000_000,
                available_at: start + n as i64 * 60_000_000,
                pub_status: "usable".to_string(),
                subjects: vec![["medtop:04000000", "medtop:11000000", "medtop:15000000"][n % 3].to_string()],
                genres: Vec::new(),
                headline,
                body,
                translations: Vec::new(),
            }
        })
        .collect()
}

/// The query mix: per language, one frequent word, one rarer word, two words, and a phrase.
fn queries() -> Vec<(String, String)> {
    let mut mix = Vec::new();
    for (language, words) in LANGUAGES {
        mix.push((language.to_string(), words[0].to_string()));
        mix.push((language.to_string(), words[words.len() - 3].to_string()));
        if language != "zh" {
            mix.push((language.to_string(), format!("{} {}", words[1], words[5])));
            mix.push((language.to_string(), format!("\"{} {}\"", words[0], words[1])));
        } else {
            mix.push((language.to_string(), format!("{} {}", words[1], words[5])));
        }
    }
    mix
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(
                    |e| {
                        if e.path().is_dir() { dir_size(&e.path()) } else { e.metadata().map(|m| m.len()).unwrap_or(0) }
                    },
                )
                .sum()
        })
        .unwrap_or(0)
}

struct Outcome {
    name: &'static str,
    index_seconds: f64,
    size_bytes: u64,
    latencies: Vec<Duration>,
    hits: u64,
}

fn report(outcome: &Outcome, items: usize) {
    let mut sorted = outcome.latencies.clone();
    sorted.sort_unstable();
    println!(
        "  {:<22} index {:>8.0} items/s ({:>6.1} s), size {:>7.1} MiB, query p50 {:>7.2} ms, p99 {:>7.2} ms, total hits {}",
        outcome.name,
        items as f64 / outcome.index_seconds,
        outcome.index_seconds,
        outcome.size_bytes as f64 / 1_048_576.0,
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        outcome.hits
    );
}

const ROUNDS: usize = 5;

fn karavan(docs: &[IndexDoc], mix: &[(String, String)]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    let started = Instant::now();
    for (n, doc) in docs.iter().enumerate() {
        index.upsert(doc).unwrap();
        if n % 100_000 == 99_999 {
            index.commit().unwrap();
        }
    }
    index.commit().unwrap();
    let index_seconds = started.elapsed().as_secs_f64();
    let audience = Audience {
        viewer: "mbr_0".to_string(),
        grants: (1..7).map(|n| Grant { grantor: format!("mbr_{n}"), delay_minutes: 0, subjects: Vec::new() }).collect(),
        now: i64::MAX / 2,
    };
    let mut latencies = Vec::new();
    let mut hits = 0;
    for round in 0..ROUNDS {
        for (language, text) in mix {
            let mut request = SearchRequest::text(text);
            request.query_language = Some(language.clone());
            let sent = Instant::now();
            let results = index.search(&request, &audience).unwrap();
            latencies.push(sent.elapsed());
            if round == 0 {
                hits += results.total as u64;
            }
        }
    }
    Outcome { name: "karavan (tantivy)", index_seconds, size_bytes: dir_size(dir.path()), latencies, hits }
}

fn fts5_query(text: &str) -> String {
    // FTS5 syntax: quoted phrases stay, words are ANDed.
    if text.starts_with('"') {
        text.to_string()
    } else {
        text.split_whitespace().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" AND ")
    }
}

fn sqlite_fts5(docs: &[IndexDoc], mix: &[(String, String)]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fts.db");
    let mut connection = rusqlite::Connection::open(&path).unwrap();
    connection.execute_batch("PRAGMA journal_mode=WAL; CREATE VIRTUAL TABLE docs USING fts5(headline, body);").unwrap();
    let started = Instant::now();
    let transaction = connection.transaction().unwrap();
    {
        let mut insert = transaction.prepare("INSERT INTO docs (rowid, headline, body) VALUES (?1, ?2, ?3)").unwrap();
        for doc in docs {
            insert.execute(rusqlite::params![doc.seq, doc.headline, doc.body]).unwrap();
        }
    }
    transaction.commit().unwrap();
    let index_seconds = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    let mut hits = 0;
    let mut top = connection.prepare("SELECT rowid FROM docs WHERE docs MATCH ?1 ORDER BY rank LIMIT 20").unwrap();
    let mut count = connection.prepare("SELECT count(*) FROM docs WHERE docs MATCH ?1").unwrap();
    for round in 0..ROUNDS {
        for (_, text) in mix {
            let query = fts5_query(text);
            let sent = Instant::now();
            let ids: Vec<i64> = top.query_map([&query], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
            let total: i64 = count.query_row([&query], |r| r.get(0)).unwrap();
            latencies.push(sent.elapsed());
            std::hint::black_box(ids);
            if round == 0 {
                hits += total as u64;
            }
        }
    }
    drop(top);
    drop(count);
    connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Outcome { name: "SQLite FTS5", index_seconds, size_bytes: size, latencies, hits }
}

fn postgres(docs: &[IndexDoc], mix: &[(String, String)]) -> Option<Outcome> {
    let mut admin =
        match postgres::Client::connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", postgres::NoTls) {
            Ok(client) => client,
            Err(error) => {
                println!("  PostgreSQL             not reachable on 127.0.0.1:5432 ({error}); skipped");
                return None;
            }
        };
    admin.batch_execute("DROP DATABASE IF EXISTS karavan_bench").unwrap();
    admin.batch_execute("CREATE DATABASE karavan_bench").unwrap();
    let mut client =
        postgres::Client::connect("host=127.0.0.1 port=5432 user=postgres dbname=karavan_bench", postgres::NoTls)
            .unwrap();
    client.batch_execute("CREATE TABLE docs (id bigint PRIMARY KEY, headline text, body text, tsv tsvector)").unwrap();
    let started = Instant::now();
    {
        let mut writer = client.copy_in("COPY docs (id, headline, body) FROM STDIN").unwrap();
        let clean = |text: &str| text.replace(['\t', '\n', '\\'], " ");
        for doc in docs {
            writeln!(writer, "{}\t{}\t{}", doc.seq, clean(&doc.headline), clean(&doc.body)).unwrap();
        }
        writer.finish().unwrap();
    }
    client.batch_execute("UPDATE docs SET tsv = to_tsvector('simple', headline || ' ' || body)").unwrap();
    client.batch_execute("CREATE INDEX docs_tsv ON docs USING gin (tsv)").unwrap();
    // VACUUM may not run in a transaction block, so it is its own statement.
    client.batch_execute("VACUUM ANALYZE docs").unwrap();
    let index_seconds = started.elapsed().as_secs_f64();
    let size: i64 = client.query_one("SELECT pg_total_relation_size('docs')", &[]).unwrap().get(0);
    let top = client
        .prepare("SELECT id FROM docs WHERE tsv @@ websearch_to_tsquery('simple', $1) ORDER BY ts_rank(tsv, websearch_to_tsquery('simple', $1)) DESC LIMIT 20")
        .unwrap();
    let count = client.prepare("SELECT count(*) FROM docs WHERE tsv @@ websearch_to_tsquery('simple', $1)").unwrap();
    let mut latencies = Vec::new();
    let mut hits = 0;
    for round in 0..ROUNDS {
        for (_, text) in mix {
            let sent = Instant::now();
            let ids = client.query(&top, &[text]).unwrap();
            let total: i64 = client.query_one(&count, &[text]).unwrap().get(0);
            latencies.push(sent.elapsed());
            std::hint::black_box(ids);
            if round == 0 {
                hits += total as u64;
            }
        }
    }
    drop(client);
    admin.batch_execute("DROP DATABASE IF EXISTS karavan_bench").unwrap();
    Some(Outcome { name: "PostgreSQL tsvector/GIN", index_seconds, size_bytes: size as u64, latencies, hits })
}

fn main() {
    let items: usize = std::env::var("KARAVAN_BENCH_ITEMS").ok().and_then(|v| v.parse().ok()).unwrap_or(500_000);
    let docs = corpus(items);
    let mix = queries();
    let mean = docs.iter().map(|d| d.headline.len() + d.body.len()).sum::<usize>() / items.max(1);
    println!(
        "search bench: {items} items in {} languages (mean {mean} bytes of text), {} queries x {ROUNDS} rounds",
        LANGUAGES.len(),
        mix.len()
    );
    let ours = karavan(&docs, &mix);
    report(&ours, items);
    let fts5 = sqlite_fts5(&docs, &mix);
    report(&fts5, items);
    let pg = postgres(&docs, &mix);
    if let Some(pg) = &pg {
        report(pg, items);
    }
    let p99 = |o: &Outcome| {
        let mut sorted = o.latencies.clone();
        sorted.sort_unstable();
        percentile(&sorted, 0.99)
    };
    let p50 = |o: &Outcome| {
        let mut sorted = o.latencies.clone();
        sorted.sort_unstable();
        percentile(&sorted, 0.5)
    };
    for peer in std::iter::once(&fts5).chain(pg.as_ref()) {
        println!(
            "  vs {:<22} query p50 {:.2}x faster, p99 {:.2}x faster, indexing {:.2}x the peer's speed",
            peer.name,
            p50(peer) / p50(&ours),
            p99(peer) / p99(&ours),
            peer.index_seconds / ours.index_seconds
        );
    }
}
