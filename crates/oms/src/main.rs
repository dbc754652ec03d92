//! `oms`: the order management system's one binary.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use oms_app::{AppState, Limits};
use oms_store::{Backend, Store, StoreOptions};
use tracing_subscriber::EnvFilter;

mod bench;
mod demo;
mod harness;
mod ingest_bench;
mod search_bench;
mod storm;
mod upload_bench;
mod users;

#[derive(Parser)]
#[command(
    name = "oms",
    version,
    about = "Order management: inventory, orders, allocation, fulfilment"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (migrations run first).
    Serve(ServeArgs),
    /// Apply pending migrations and exit.
    Migrate(DatabaseArgs),
    /// Verify every inventory invariant; print each breach; exit 1 on any.
    Check(DatabaseArgs),
    /// Measure throughput; prints one JSON object per result.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Mixed load on several `oms serve` processes with kills and database restarts, then
    /// proof of no oversell, no lost or duplicated order, every event delivered.
    Storm(StormCli),
    /// Manage panel users.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Load a small realistic data set and print how to see it in the panel.
    Demo(demo::DemoArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// One allocation pass over a backlog of waiting orders.
    Allocate {
        /// Orders in the backlog.
        #[arg(long, default_value_t = 100_000)]
        orders: u64,
        /// SKUs in the catalogue.
        #[arg(long, default_value_t = 10_000)]
        skus: u64,
        /// Warehouses holding every SKU.
        #[arg(long, default_value_t = 5)]
        warehouses: u64,
        /// A database to run on (it gets its own client); a temporary SQLite file when absent.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Order searches (code, phone, name, e-mail, status, no match) over a large order book,
    /// through the API's search on a real server.
    Search {
        /// Orders in the book.
        #[arg(long, default_value_t = 100_000)]
        orders: u64,
        /// Times each search is run.
        #[arg(long, default_value_t = 30)]
        repeats: u64,
        /// A database to run on (it gets its own client); a temporary SQLite file when absent.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// A SKU file and an outward-order file uploaded over HTTP, beside the plain-SQL ceiling.
    Upload {
        /// Rows per file (the order file has three lines per order).
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// A database to run on (it gets its own clients); a temporary SQLite file when absent.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// 3-line B2C orders over HTTP against a real `oms serve`, uniform and Zipf-hot SKUs,
    /// beside the plain-SQL ceiling on the same database.
    Ingest {
        #[arg(long, value_enum, default_value_t = BenchBackend::Sqlite)]
        backend: BenchBackend,
        /// Orders per run (each distribution runs once).
        #[arg(long, default_value_t = 20_000)]
        orders: u64,
        /// Clients sending at once.
        #[arg(long, default_value_t = 64)]
        concurrency: u64,
        #[arg(long, default_value_t = 10_000)]
        skus: u64,
        #[arg(long, default_value_t = 5)]
        warehouses: u64,
        /// A PostgreSQL (or SQLite) database to use; by default a temporary SQLite file or a
        /// throwaway PostgreSQL cluster.
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Args)]
struct StormCli {
    #[arg(long, value_enum, default_value_t = BenchBackend::Postgres)]
    backend: BenchBackend,
    /// A database to use instead of a throwaway PostgreSQL cluster or SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// `oms serve` processes on the one database (always 1 on SQLite).
    #[arg(long, default_value_t = 2)]
    processes: usize,
    /// Clients sending at once.
    #[arg(long, default_value_t = 16)]
    concurrency: u64,
    /// Seconds of load (30 when neither this nor --operations is given).
    #[arg(long)]
    seconds: Option<f64>,
    /// Operations to run (orders, cancellations, WMS updates, receipts, pool moves).
    #[arg(long)]
    operations: Option<u64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 200)]
    skus: u64,
    #[arg(long, default_value_t = 3)]
    warehouses: u64,
    /// Kill -9 a random serving process every SECS seconds and start it again.
    #[arg(long, value_name = "SECS")]
    kill_every: Option<f64>,
    /// Immediate PostgreSQL shutdowns and restarts spread over the load (`--pg-restart` is
    /// one).
    #[arg(long, alias = "pg-restart", num_args = 0..=1, default_missing_value = "1", default_value_t = 0)]
    pg_restarts: u32,
    /// Append the servers' logs here (a temporary file by default).
    #[arg(long)]
    server_log: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchBackend {
    Sqlite,
    Postgres,
}

#[derive(Args, Clone)]
struct DatabaseArgs {
    /// sqlite://FILE (created when missing) or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://oms.db",
        hide_env_values = true
    )]
    database_url: String,
    /// Connections in the pool.
    #[arg(long, env = "OMS_DB_MAX_CONNECTIONS", default_value_t = 16)]
    db_max_connections: u32,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "OMS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The operator token; when absent a random one is made for this run and printed.
    #[arg(long, env = "OMS_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Log lines as text or JSON.
    #[arg(long, env = "OMS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Seconds a request may take before it is answered 408.
    #[arg(long, env = "OMS_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    request_timeout_secs: u64,
    /// Seconds between the allocator's retry rounds when no stock arrival wakes it sooner.
    #[arg(long, env = "OMS_ALLOCATION_INTERVAL_SECS", default_value_t = 30)]
    allocation_interval_secs: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The URL with any password replaced, for logs and messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn open(database: &DatabaseArgs) -> anyhow::Result<Store> {
    open_with(database, true).await
}

/// Opens the database; `exclusive` takes the SQLite process lock (not needed to read).
async fn open_with(database: &DatabaseArgs, exclusive: bool) -> anyhow::Result<Store> {
    let options = StoreOptions {
        max_connections: database.db_max_connections,
        acquire_timeout: Duration::from_secs(10),
        exclusive,
    };
    let store = Store::connect(&database.database_url, &options)
        .await
        .with_context(|| format!("opening {}", redacted(&database.database_url)))?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logs(args.log_format);
    let store = open(&args.database).await?;
    let admin_token = match args.admin_token {
        Some(token) if !token.trim().is_empty() => token,
        _ => {
            let token = oms_app::auth::new_token().map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("OMS_ADMIN_TOKEN is not set; the operator token for this run is:\n  {token}");
            token
        }
    };
    let limits = Limits {
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        allocation_interval: Duration::from_secs(args.allocation_interval_secs.max(1)),
        ..Limits::default()
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener.local_addr()?;
    let backend = match store.backend() {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    tracing::info!(%address, backend, database = %redacted(&args.database.database_url), "oms serving");
    println!("OMS listening on http://{address} ({backend})");
    let state = AppState::new(store.clone(), Some(&admin_token), limits);
    oms_app::serve(listener, state, shutdown_signal()).await?;
    store.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `oms check`: read-only, so it may run beside a serving process.
async fn check(database: &DatabaseArgs) -> anyhow::Result<()> {
    let store = open_with(database, false).await?;
    let report = oms_app::check::run(&store)
        .await
        .context("reading the database")?;
    store.close().await;
    for breach in &report.breaches {
        println!("BREACH {breach}");
    }
    println!(
        "checked {} ledger rows, {} stock keys, {} inward lines, {} order lines: {} breaches",
        report.ledger_rows,
        report.keys,
        report.inward_lines,
        report.order_lines,
        report.breaches.len()
    );
    if report.breaches.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} invariant breaches", report.breaches.len())
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if matches!(cli.command, Command::Bench(_)) && std::env::var_os("RUST_LOG").is_some() {
        // A bench logs only when asked: `RUST_LOG=sqlx::query=debug` times every statement.
        init_logs(LogFormat::Text);
    }
    match cli.command {
        Command::Check(database) => check(&database).await,
        Command::Bench(BenchCommand::Allocate {
            orders,
            skus,
            warehouses,
            database_url,
        }) => {
            bench::allocate(bench::AllocateArgs {
                orders,
                skus,
                warehouses,
                database_url,
            })
            .await
        }
        Command::Bench(BenchCommand::Search {
            orders,
            repeats,
            database_url,
        }) => {
            search_bench::search(search_bench::SearchArgs {
                orders,
                repeats,
                database_url,
            })
            .await
        }
        Command::Bench(BenchCommand::Upload { rows, database_url }) => {
            upload_bench::upload_bench(upload_bench::UploadArgs { rows, database_url }).await
        }
        Command::Bench(BenchCommand::Ingest {
            backend,
            orders,
            concurrency,
            skus,
            warehouses,
            database_url,
        }) => {
            ingest_bench::ingest(ingest_bench::IngestArgs {
                backend: match backend {
                    BenchBackend::Sqlite => oms_store::Backend::Sqlite,
                    BenchBackend::Postgres => oms_store::Backend::Postgres,
                },
                orders,
                concurrency,
                skus,
                warehouses,
                database_url,
            })
            .await
        }
        Command::Storm(args) => {
            storm::run(storm::StormArgs {
                backend: match args.backend {
                    BenchBackend::Sqlite => Backend::Sqlite,
                    BenchBackend::Postgres => Backend::Postgres,
                },
                database_url: args.database_url,
                processes: args.processes,
                concurrency: args.concurrency,
                seconds: args.seconds,
                operations: args.operations,
                seed: args.seed,
                skus: args.skus,
                warehouses: args.warehouses,
                kill_every: args.kill_every,
                pg_restarts: args.pg_restarts,
                server_log: args.server_log,
            })
            .await
        }
        Command::Serve(args) => serve(args).await,
        Command::User(command) => users::run(command).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Migrate(database) => {
            init_logs(LogFormat::Text);
            let store = open(&database).await?;
            store.close().await;
            println!("migrations applied to {}", redacted(&database.database_url));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redacted("postgres://oms:s3cret@db:5432/oms"),
            "postgres://oms:***@db:5432/oms"
        );
        assert_eq!(redacted("postgres://oms@db/oms"), "postgres://oms@db/oms");
        assert_eq!(redacted("sqlite://oms.db"), "sqlite://oms.db");
    }
}
