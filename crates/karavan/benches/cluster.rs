//! Cluster mode against one node, PostgreSQL against SQLite, through the HTTP API of the real binary.
//!
//! Three configurations run one after the other in one run, with the same items and the same clients:
//! the embedded SQLite store on one node; a fresh PostgreSQL database with NATS on one node; and the
//! same on three nodes (three `karavan serve` processes, each with its own data directory), the clients
//! spread round-robin over them. For each: publish throughput and latency (realistic items of about
//! 2 KB from concurrent clients over keep-alive connections); publish → searchable under the load (a
//! probe publishes one item every 100 ms on the first node and polls `GET /v1/search` on every node
//! until each finds it); peak RSS per node; and the CPU time each process used over the load (the nodes,
//! PostgreSQL's processes, nats-server, the bench's own clients), which says what limits scaling when
//! all of them share one machine. Each configuration's database is dropped and its NATS stream deleted
//! after it.
//! For the PostgreSQL configurations it also samples `pg_stat_activity` every 100 ms (what the
//! backends run, and wait for) and prints each backend's CPU time with the statement it was seen on.
//! Settings: KARAVAN_BENCH_ITEMS (20000), KARAVAN_BENCH_CONCURRENCY (32), KARAVAN_BENCH_ANALYZE_SECONDS
//! (0: never; else `ANALYZE` the database that often during the load, as autovacuum would where it is
//! on), KARAVAN_TEST_POSTGRES (postgres://postgres@127.0.0.1:5432/postgres), KARAVAN_TEST_NATS
//! (nats://127.0.0.1:4222).
//! Run: `cargo bench -p karavan --bench cluster`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{
    Database, binary, cli, nats_server, off_runtime, peak_rss_mib, percentile, postgres_server, realistic_item, setting,
};

/// A running `karavan serve` whose warnings and errors are kept. `support::Server` drains the log
/// without keeping it; here the log is what shows leases lost and other trouble between the nodes.
struct Node {
    child: Child,
    base: String,
    troubles: Arc<Mutex<Vec<String>>>,
}

impl Node {
    fn start(data_dir: &Path, extra: &[&str]) -> Node {
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let troubles = Arc::new(Mutex::new(Vec::new()));
        let (sender, receiver) = std::sync::mpsc::channel();
        let kept = Arc::clone(&troubles);
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(rest) = line.split("address=").nth(1) {
                    let _ = sender.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                    sent = true;
                }
                if line.contains(" WARN ") || line.contains(" ERROR ") {
                    kept.lock().unwrap().push(line);
                }
            }
        });
        let address = receiver.recv_timeout(Duration::from_secs(120)).expect("the server logs its address");
        Node { child, base: format!("http://{address}"), troubles }
    }

    /// Sends SIGTERM and waits (at most a minute) for a graceful stop, then kills.
    fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("node {} did not stop within a minute of SIGTERM; killed", self.base);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} did not become healthy");
}

/// CPU time (user + system, in clock ticks) of the processes the bench watches, at one moment.
#[derive(Clone, Default)]
struct CpuSample {
    nodes: Vec<u64>,
    /// Every `postgres` process (the postmaster's reaped children included, so that a backend that ended
    /// during the load still counts).
    postgres: u64,
    /// Each `postgres` process's own ticks, by process id (the backends: one per connection).
    postgres_by_pid: HashMap<u32, u64>,
    nats: u64,
    /// The bench process: the load's clients and the probe.
    clients: u64,
    /// The whole machine, from /proc/stat: busy and all ticks.
    machine_busy: u64,
    machine_total: u64,
}

/// (comm, utime + stime, cutime + cstime) of a process.
fn process_ticks(pid: &str) -> Option<(String, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let fields: Vec<u64> =
        stat[close + 1..].split_whitespace().skip(11).take(4).map(|f| f.parse().unwrap_or(0)).collect();
    Some((comm, fields[0] + fields[1], fields[2] + fields[3]))
}

fn cpu_sample(node_pids: &[u32]) -> CpuSample {
    let mut sample = CpuSample::default();
    for pid in node_pids {
        sample.nodes.push(process_ticks(&pid.to_string()).map_or(0, |(_, own, _)| own));
    }
    sample.clients = process_ticks("self").map_or(0, |(_, own, _)| own);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        match process_ticks(&name) {
            Some((comm, own, children)) if comm == "postgres" => {
                sample.postgres += own + children;
                sample.postgres_by_pid.insert(name.parse().unwrap_or(0), own);
            }
            Some((comm, own, _)) if comm == "nats-server" => sample.nats += own,
            _ => {}
        }
    }
    let machine = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = machine
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    if ticks.len() == 8 {
        sample.machine_total = ticks.iter().sum();
        // Idle and I/O wait are not busy.
        sample.machine_busy = sample.machine_total - ticks[3] - ticks[4];
    }
    sample
}

/// What PostgreSQL's backends were doing, from `pg_stat_activity` sampled every 100 ms over the load.
struct PgActivity {
    samples: usize,
    /// How many times the database was analysed during the load (KARAVAN_BENCH_ANALYZE_SECONDS).
    analyzed: usize,
    /// Per backend: the statements it was seen on (active or not) and how often.
    by_backend: HashMap<u32, HashMap<String, usize>>,
    /// Active statements by wait event (`running` for none: on a CPU or waiting for one) and how often.
    active: HashMap<String, usize>,
}

const WAITING: u8 = 0;
const SAMPLING: u8 = 1;
const STOPPED: u8 = 2;

/// Samples `pg_stat_activity` on a thread of its own (the synchronous client may not run on the
/// runtime's), from when `state` says SAMPLING until it says STOPPED; with `analyze_every`, it also
/// runs `ANALYZE` on the database that often, standing in for autovacuum's auto-analyze where the
/// server runs without autovacuum: without statistics, PostgreSQL may plan the publish path's lookups
/// for an empty table long after the table has grown.
struct PgSampler {
    state: Arc<std::sync::atomic::AtomicU8>,
    thread: std::thread::JoinHandle<PgActivity>,
}

impl PgSampler {
    fn start(database: &Database, analyze_every: Option<Duration>) -> PgSampler {
        let state = Arc::new(std::sync::atomic::AtomicU8::new(WAITING));
        let (watched, url, database) = (Arc::clone(&state), database.url.clone(), database.name.clone());
        let thread = std::thread::spawn(move || {
            let mut activity =
                PgActivity { samples: 0, analyzed: 0, by_backend: HashMap::new(), active: HashMap::new() };
            let mut client = postgres::Client::connect(&postgres_server(), postgres::NoTls).unwrap();
            let mut analyzer = analyze_every.map(|_| postgres::Client::connect(&url, postgres::NoTls).unwrap());
            let mut analyzed_at = Instant::now();
            let statement = client
                .prepare(
                    "SELECT pid, state, coalesce(wait_event_type || ':' || wait_event, 'running'), \
                     left(regexp_replace(query, '\\s+', ' ', 'g'), 90) \
                     FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                )
                .unwrap();
            loop {
                match watched.load(Ordering::Relaxed) {
                    WAITING => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    STOPPED => return activity,
                    _ => {}
                }
                if let (Some(analyzer), Some(every)) = (&mut analyzer, analyze_every)
                    && analyzed_at.elapsed() >= every
                {
                    analyzer.batch_execute("ANALYZE").unwrap();
                    analyzed_at = Instant::now();
                    activity.analyzed += 1;
                }
                activity.samples += 1;
                for row in client.query(&statement, &[&database]).unwrap_or_default() {
                    let (pid, state, wait, query): (i32, Option<String>, String, Option<String>) =
                        (row.get(0), row.get(1), row.get(2), row.get(3));
                    let query = query.unwrap_or_default();
                    *activity.by_backend.entry(pid as u32).or_default().entry(query.clone()).or_default() += 1;
                    if state.as_deref() == Some("active") {
                        *activity.active.entry(format!("{wait} | {query}")).or_default() += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        PgSampler { state, thread }
    }

    fn finish(self) -> PgActivity {
        self.state.store(STOPPED, Ordering::Relaxed);
        self.thread.join().expect("the sampler ran")
    }
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

struct Config {
    label: &'static str,
    short: &'static str,
    postgres: bool,
    nodes: usize,
}

const CONFIGS: [Config; 3] = [
    Config { label: "SQLite, 1 node", short: "sqlite1", postgres: false, nodes: 1 },
    Config { label: "PostgreSQL + NATS, 1 node", short: "pg1", postgres: true, nodes: 1 },
    Config { label: "PostgreSQL + NATS, 3 nodes", short: "pg3", postgres: true, nodes: 3 },
];

/// What one configuration measured.
struct Outcome {
    elapsed: Duration,
    /// Publish latencies of the load, microseconds, sorted.
    latencies: Vec<u64>,
    /// When each publish of the load was acknowledged, microseconds after the load began, sorted.
    acknowledged_at: Vec<u64>,
    failures: usize,
    /// Publish → searchable on the publishing node, and on every node (the slowest), microseconds, sorted.
    searchable_here: Vec<u64>,
    searchable_everywhere: Vec<u64>,
    /// Probes not found on every node within 30 s.
    probes_timed_out: usize,
    peak_rss: Vec<Option<f64>>,
    cpu_before: CpuSample,
    cpu_after: CpuSample,
    troubles: Vec<Vec<String>>,
    /// What PostgreSQL's backends were doing during the load (PostgreSQL configurations only).
    pg_activity: Option<PgActivity>,
}

fn run_config(config: &Config, bodies: &Arc<Vec<Vec<u8>>>, concurrency: usize) -> Outcome {
    let dirs: Vec<tempfile::TempDir> = (0..config.nodes).map(|_| tempfile::tempdir().unwrap()).collect();
    let database = config.postgres.then(|| Database::create(&format!("bench_{}", config.short)));
    let global: Vec<&str> = match &database {
        Some(database) => vec!["--database", database.url.as_str()],
        None => vec![],
    };
    let on = |args: &[&str]| cli(dirs[0].path(), &[&global[..], args].concat());
    let member = on(&["member", "add", "--name", "Bench Agency", "--country", "KZ", "--languages", "kk,ru"]);
    let key = on(&["key", "create", "--member", &member, "--role", "editor"]);
    let nats = nats_server();
    let names: Vec<String> = (1..=config.nodes).map(|n| format!("node-{n}")).collect();
    let mut nodes: Vec<Node> = dirs
        .iter()
        .zip(&names)
        .map(|(dir, name)| match &database {
            Some(database) => Node::start(dir.path(), &["--database", &database.url, "--nats", &nats, "--node", name]),
            None => Node::start(dir.path(), &[]),
        })
        .collect();
    let bases: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.base.clone()).collect());
    let pids: Vec<u32> = nodes.iter().map(|n| n.child.id()).collect();

    let analyze_every = match setting("KARAVAN_BENCH_ANALYZE_SECONDS", 0) {
        0 => None,
        seconds => Some(Duration::from_secs(seconds as u64)),
    };
    let sampler = database.as_ref().map(|database| PgSampler::start(database, analyze_every));
    // One client thread, so that the servers keep most of the machine.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut outcome = runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
        for base in bases.iter() {
            wait_healthy(&client, base).await;
        }
        let cpu_before = cpu_sample(&pids);
        if let Some(sampler) = &sampler {
            sampler.state.store(SAMPLING, Ordering::Relaxed);
        }
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..concurrency {
            // Client c talks to node c mod N: the clients are spread round-robin over the nodes.
            let base = bases[c % bases.len()].clone();
            let (client, key, next, bodies) = (client.clone(), key.clone(), Arc::clone(&next), Arc::clone(bodies));
            tasks.push(tokio::spawn(async move {
                let (mut latencies, mut acknowledged_at) = (Vec::new(), Vec::new());
                let mut failures = 0usize;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= bodies.len() {
                        return (latencies, acknowledged_at, failures);
                    }
                    let sent = Instant::now();
                    let response = client
                        .post(format!("{base}/v1/items"))
                        .bearer_auth(&key)
                        .header("content-type", "application/json")
                        .body(bodies[n].clone())
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status().as_u16() == 201 => {
                            let _ = r.bytes().await;
                            latencies.push(sent.elapsed().as_micros() as u64);
                            acknowledged_at.push(started.elapsed().as_micros() as u64);
                        }
                        _ => failures += 1,
                    }
                }
            }));
        }
        // Meanwhile a probe publishes one item every 100 ms on the first node and polls search on
        // every node until each finds it: publish → searchable, here and everywhere, under the load.
        let done = Arc::new(AtomicBool::new(false));
        let probe = {
            let (client, bases, key, done) = (client.clone(), Arc::clone(&bases), key.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                let (mut here, mut everywhere, mut timed_out) = (Vec::new(), Vec::new(), 0usize);
                let mut n = 0usize;
                while !done.load(Ordering::Relaxed) {
                    // A word no other item has: letters only, so that every analyzer keeps it whole.
                    let word: String = format!("zq{n:08}")
                        .chars()
                        .map(|c| if c.is_ascii_digit() { (b'a' + c as u8 - b'0') as char } else { c })
                        .collect();
                    n += 1;
                    let item = serde_json::json!({
                        "uri": format!("urn:probe:{n}"), "type": "text", "language": "en",
                        "headlines": [{ "value": format!("Freshness probe {word}") }],
                    });
                    let sent = Instant::now();
                    let response =
                        client.post(format!("{}/v1/items", bases[0])).bearer_auth(&key).json(&item).send().await;
                    if !response.is_ok_and(|r| r.status().as_u16() == 201) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    // One poller per node, so that a slow answer from one does not delay the others.
                    let pollers: Vec<_> = bases
                        .iter()
                        .map(|base| {
                            let url = format!("{base}/v1/search?q={word}&limit=1");
                            let (client, key) = (client.clone(), key.clone());
                            tokio::spawn(async move {
                                loop {
                                    let found = match client.get(&url).bearer_auth(&key).send().await {
                                        Ok(r) => {
                                            r.json::<serde_json::Value>().await.ok().and_then(|b| b["total"].as_u64())
                                        }
                                        Err(_) => None,
                                    };
                                    if found.unwrap_or(0) >= 1 {
                                        return Some(sent.elapsed().as_micros() as u64);
                                    }
                                    if sent.elapsed() > Duration::from_secs(30) {
                                        return None;
                                    }
                                    tokio::time::sleep(Duration::from_millis(5)).await;
                                }
                            })
                        })
                        .collect();
                    let mut found = Vec::new();
                    for poller in pollers {
                        found.push(poller.await.unwrap());
                    }
                    match (found[0], found.iter().copied().collect::<Option<Vec<u64>>>()) {
                        (Some(first), Some(all)) => {
                            here.push(first);
                            everywhere.push(all.into_iter().max().unwrap());
                        }
                        (first, _) => {
                            here.extend(first);
                            timed_out += 1;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                (here, everywhere, timed_out)
            })
        };
        let (mut latencies, mut acknowledged_at) = (Vec::with_capacity(bodies.len()), Vec::new());
        let mut failures = 0;
        for task in tasks {
            let (some, at, failed) = task.await.unwrap();
            latencies.extend(some);
            acknowledged_at.extend(at);
            failures += failed;
        }
        let elapsed = started.elapsed();
        let cpu_after = cpu_sample(&pids);
        if let Some(sampler) = &sampler {
            sampler.state.store(STOPPED, Ordering::Relaxed);
        }
        done.store(true, Ordering::Relaxed);
        let (searchable_here, searchable_everywhere, probes_timed_out) = probe.await.unwrap();
        Outcome {
            elapsed,
            latencies,
            acknowledged_at,
            failures,
            searchable_here,
            searchable_everywhere,
            probes_timed_out,
            peak_rss: pids.iter().map(|pid| peak_rss_mib(*pid)).collect(),
            cpu_before,
            cpu_after,
            troubles: Vec::new(),
            pg_activity: None,
        }
    });
    outcome.pg_activity = sampler.map(PgSampler::finish);
    outcome.latencies.sort_unstable();
    outcome.acknowledged_at.sort_unstable();
    outcome.searchable_here.sort_unstable();
    outcome.searchable_everywhere.sort_unstable();
    for node in &mut nodes {
        node.stop();
    }
    outcome.troubles = nodes.iter().map(|n| n.troubles.lock().unwrap().clone()).collect();
    drop(nodes);
    if let Some(database) = database {
        let identity = database.identity();
        runtime.block_on(async {
            match karavan_server::cluster::NatsBus::connect(&nats, &identity, "bench").await {
                Ok(bus) => {
                    if let Err(error) = bus.delete_stream().await {
                        eprintln!("the NATS stream of {identity} was not deleted: {error}");
                    }
                }
                Err(error) => eprintln!("the NATS stream of {identity} was not deleted: {error}"),
            }
        });
        drop(runtime);
        drop(database);
    }
    outcome
}

fn main() {
    let items = setting("KARAVAN_BENCH_ITEMS", 20_000);
    let concurrency = setting("KARAVAN_BENCH_CONCURRENCY", 32);
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..items).map(|n| serde_json::to_vec(&realistic_item(&format!("urn:bench:{n}"), n)).unwrap()).collect(),
    );
    let mean_size = bodies.iter().map(Vec::len).sum::<usize>() / items.max(1);
    let ticks = clock_ticks_per_second();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "cluster bench: {items} items of {mean_size} bytes, {concurrency} concurrent clients (round-robin over \
         the nodes), {cores} cores"
    );

    let (autovacuum, version) = off_runtime(|| {
        let mut admin = postgres::Client::connect(&postgres_server(), postgres::NoTls).expect("PostgreSQL answers");
        let setting: String = admin.query_one("SHOW autovacuum", &[]).unwrap().get(0);
        let version: String = admin.query_one("SHOW server_version", &[]).unwrap().get(0);
        (setting, version)
    });
    println!(
        "PostgreSQL {version}, autovacuum {autovacuum}; ANALYZE during the load: {}",
        match setting("KARAVAN_BENCH_ANALYZE_SECONDS", 0) {
            0 => "never".to_string(),
            seconds => format!("every {seconds} s"),
        }
    );

    let mut outcomes = Vec::new();
    for config in &CONFIGS {
        eprintln!("running {} …", config.label);
        let outcome = run_config(config, &bodies, concurrency);
        eprintln!(
            "  {} items/s in {:.1} s",
            (outcome.latencies.len() as f64 / outcome.elapsed.as_secs_f64()).round(),
            outcome.elapsed.as_secs_f64()
        );
        outcomes.push(outcome);
    }

    println!();
    println!(
        "| configuration | items/s | load time | p50 | p99 | p99.9 | max | failures | searchable on the publishing \
         node p50 / p99 | searchable on every node p50 / p99 / max | probes | peak RSS per node |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (config, o) in CONFIGS.iter().zip(&outcomes) {
        let rss: Vec<String> =
            o.peak_rss.iter().map(|r| r.map_or("?".to_string(), |r| format!("{r:.0} MiB"))).collect();
        let timed_out =
            if o.probes_timed_out > 0 { format!(", {} timed out", o.probes_timed_out) } else { String::new() };
        println!(
            "| {} | {:.0} | {:.1} s | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {} | {:.1} / {:.1} ms | {:.1} / {:.1} / \
             {:.1} ms | {}{timed_out} | {} |",
            config.label,
            o.latencies.len() as f64 / o.elapsed.as_secs_f64(),
            o.elapsed.as_secs_f64(),
            percentile(&o.latencies, 0.50),
            percentile(&o.latencies, 0.99),
            percentile(&o.latencies, 0.999),
            percentile(&o.latencies, 1.0),
            o.failures,
            percentile(&o.searchable_here, 0.50),
            percentile(&o.searchable_here, 0.99),
            percentile(&o.searchable_everywhere, 0.50),
            percentile(&o.searchable_everywhere, 0.99),
            percentile(&o.searchable_everywhere, 1.0),
            o.searchable_everywhere.len(),
            rss.join(", ")
        );
    }

    println!();
    println!("CPU over the load phase (user + system seconds; share of the machine's busy time; CPU ms per item):");
    println!("| configuration | nodes | PostgreSQL | nats-server | bench clients | machine busy |");
    println!("|---|---|---|---|---|---|");
    for (config, o) in CONFIGS.iter().zip(&outcomes) {
        let (before, after) = (&o.cpu_before, &o.cpu_after);
        let published = o.latencies.len().max(1) as f64;
        let busy = (after.machine_busy - before.machine_busy) as f64 / ticks;
        let total = (after.machine_total - before.machine_total) as f64 / ticks;
        let cell = |seconds: f64| {
            format!("{seconds:.1} s ({:.0} %, {:.3} ms/item)", 100.0 * seconds / busy, 1000.0 * seconds / published)
        };
        let per_node: Vec<f64> =
            after.nodes.iter().zip(&before.nodes).map(|(a, b)| a.saturating_sub(*b) as f64 / ticks).collect();
        let nodes_total: f64 = per_node.iter().sum();
        let nodes_cell = if per_node.len() > 1 {
            let each: Vec<String> = per_node.iter().map(|s| format!("{s:.1}")).collect();
            format!("{} [{} s]", cell(nodes_total), each.join(" + "))
        } else {
            cell(nodes_total)
        };
        println!(
            "| {} | {} | {} | {} | {} | {busy:.1} of {total:.1} core-s ({:.0} %) over {:.1} s |",
            config.label,
            nodes_cell,
            cell(after.postgres.saturating_sub(before.postgres) as f64 / ticks),
            cell(after.nats.saturating_sub(before.nats) as f64 / ticks),
            cell(after.clients.saturating_sub(before.clients) as f64 / ticks),
            100.0 * busy / total.max(f64::EPSILON),
            o.elapsed.as_secs_f64()
        );
    }

    println!();
    println!("Throughput over the load, by quarter of the items (items/s):");
    for (config, o) in CONFIGS.iter().zip(&outcomes) {
        let quarters: Vec<String> = (1..=4)
            .map(|q| {
                let acknowledged = &o.acknowledged_at;
                let (from, to) = ((acknowledged.len() * (q - 1)) / 4, (acknowledged.len() * q) / 4);
                let begun = if from == 0 { 0 } else { acknowledged[from - 1] };
                let ended = acknowledged.get(to.saturating_sub(1)).copied().unwrap_or(0);
                format!("{:.0}", (to - from) as f64 / ((ended.saturating_sub(begun)).max(1) as f64 / 1e6))
            })
            .collect();
        println!("  {}: {}", config.label, quarters.join(" → "));
    }

    for (config, o) in CONFIGS.iter().zip(&outcomes) {
        let Some(activity) = &o.pg_activity else { continue };
        println!();
        println!(
            "{}: PostgreSQL backends by CPU over the load (the statement each was seen on most, of {} samples of \
             pg_stat_activity; ANALYZE run {} times):",
            config.label, activity.samples, activity.analyzed
        );
        let mut backends: Vec<(u32, f64)> = o
            .cpu_after
            .postgres_by_pid
            .iter()
            .map(|(pid, after)| {
                let before = o.cpu_before.postgres_by_pid.get(pid).copied().unwrap_or(0);
                (*pid, after.saturating_sub(before) as f64 / ticks)
            })
            .collect();
        backends.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (pid, seconds) in backends.iter().take(8) {
            let seen = activity
                .by_backend
                .get(pid)
                .and_then(|queries| queries.iter().max_by_key(|(_, count)| **count))
                .map_or_else(
                    || {
                        // Not a backend of this database: the postmaster, the WAL writer, the checkpointer, …
                        let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                        format!("[{}]", String::from_utf8_lossy(&title).replace('\0', " ").trim())
                    },
                    |(query, _)| query.clone(),
                );
            println!("  pid {pid}: {seconds:.1} s  {seen}");
        }
        println!("{}: active statements, share of samples:", config.label);
        let mut active: Vec<(&String, &usize)> = activity.active.iter().collect();
        active.sort_by(|a, b| b.1.cmp(a.1));
        let total: usize = active.iter().map(|(_, n)| **n).sum();
        for (statement, count) in active.iter().take(8) {
            println!("  {:>5.1} %  {statement}", 100.0 * **count as f64 / total.max(1) as f64);
        }
    }

    println!();
    println!("Warnings and errors in the nodes' logs, by message (with the first such line):");
    for (config, o) in CONFIGS.iter().zip(&outcomes) {
        for (n, troubles) in o.troubles.iter().enumerate() {
            let mut counts: Vec<(String, usize, &String)> = Vec::new();
            for line in troubles {
                let key = log_message(line);
                match counts.iter_mut().find(|(k, _, _)| *k == key) {
                    Some((_, count, _)) => *count += 1,
                    None => counts.push((key, 1, line)),
                }
            }
            for (message, count, first) in counts {
                println!("  {}, node {}: {count} × {message}", config.label, n + 1);
                println!("      {first}");
            }
        }
    }
}

/// A log line's level, target and message, without its time and fields.
fn log_message(line: &str) -> String {
    line.split_whitespace().skip(1).take_while(|word| !word.contains('=')).collect::<Vec<_>>().join(" ")
}
