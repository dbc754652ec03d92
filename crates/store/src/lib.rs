//! Storage: the only crate with SQL. One schema, two backends — SQLite (the embedded
//! default) and PostgreSQL — through sqlx's `Any` driver, so every statement is written once
//! (`$N` placeholders, `ON CONFLICT`, `RETURNING` run unchanged on both).
//!
//! Reads take any executor (the pool, or a transaction's connection); writes take the
//! connection of a [`Tx`] from [`Store::begin_write`], so every write path is one
//! transaction that the caller commits.

pub mod channels;
pub mod clients;
pub mod documents;
pub mod fulfilment;
pub mod inward;
pub mod keys;
mod migrations;
pub mod orders;
pub mod panel;
pub mod partners;
pub mod pools;
mod rows;
pub mod skus;
pub mod stock;
pub mod warehouses;
pub mod webhooks;

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::error::ErrorKind;
use sqlx::{Any, AnyPool, AssertSqlSafe, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use migrations::MIGRATION_NAMES;
/// A connection inside a [`Tx`], for callers that compose several statements in one
/// transaction.
pub use sqlx::AnyConnection as Conn;

/// A client's id: every client-scoped statement takes one, so no query can forget the wall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://FILE or postgres://…")]
    UnsupportedUrl(String),
    #[error(
        "another oms process is using the SQLite database {path} (lock {path}.lock is held). \
         SQLite serves one process: stop the other one, or run several instances on PostgreSQL"
    )]
    Locked { path: String },
    #[error("could not open the lock file {path}: {source}")]
    LockFile {
        path: String,
        source: std::io::Error,
    },
    /// A unique constraint refused the write: the row exists already.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A foreign key or check constraint refused the write: a bug upstream, or a race.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// Input text the database cannot hold.
    #[error("text the database cannot store: {0}")]
    InvalidText(String),
    /// A guarded write found less in a bucket or line than it needed: nothing was changed.
    #[error("{bucket} holds less than {requested}")]
    Insufficient { bucket: String, requested: i64 },
    /// PostgreSQL aborted the transaction for a serialization failure or deadlock; the
    /// whole transaction may be retried.
    #[error("transaction must be retried: {0}")]
    Retry(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The database cannot be reached, or is shutting down or starting: the connection was
    /// refused, broke, or none came free in time. A write that failed this way may still
    /// have committed (the answer to its COMMIT was lost), so it is not retried blindly.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if code == "40001" || code == "40P01" {
                return StoreError::Retry(db.message().to_owned());
            }
            // Class 08 (connection exception); 57P01–57P03: the server is shutting down,
            // crashed, or is still starting (recovery after a crash).
            if code.starts_with("08") || matches!(code.as_str(), "57P01" | "57P02" | "57P03") {
                return StoreError::Unavailable(db.message().to_owned());
            }
            // Text PostgreSQL cannot store (a NUL byte, invalid encoding): the input's fault.
            if code == "22021" || code == "22P05" {
                return StoreError::InvalidText(db.message().to_owned());
            }
            match db.kind() {
                ErrorKind::UniqueViolation => return StoreError::Conflict(db.message().to_owned()),
                ErrorKind::ForeignKeyViolation
                | ErrorKind::CheckViolation
                | ErrorKind::NotNullViolation => {
                    return StoreError::Constraint(db.message().to_owned());
                }
                _ => {}
            }
        }
        if let sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed = &error
        {
            return StoreError::Unavailable(error.to_string());
        }
        if let sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) = &error {
            return StoreError::Corrupt(error.to_string());
        }
        StoreError::Database(error)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Pool sizes and timeouts, passed explicitly rather than left to library defaults.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Take the SQLite process lock: set for `serve` and `migrate`, not for read-only
    /// commands such as `check`.
    pub exclusive: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            exclusive: true,
        }
    }
}

/// The database: a pool, which backend it is, and on SQLite the in-process write gate.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// On SQLite, the one connection every writing transaction runs on, behind the write
    /// gate; on PostgreSQL writes take a connection from the pool.
    writer: Option<Arc<Mutex<Writer>>>,
    /// On SQLite, the CPU the writer's thread is kept on (see [`Store::keep_beside_writer`]).
    writer_cpu: Option<core_affinity::CoreId>,
    /// Held for the life of the store: the OS releases it when the process ends.
    _process_lock: Option<Arc<File>>,
    /// On SQLite, when the checkpoint task keeps the log (rather than SQLite's own
    /// checkpoints after commits): the log's file, which the writer watches too.
    log_file: Option<Arc<std::path::PathBuf>>,
    /// While any handle lives, the SQLite checkpoint task runs.
    _alive: Arc<()>,
    /// Tables whose planner statistics wait to be refreshed (PostgreSQL).
    stale: Arc<StaleStatistics>,
}

/// Tables waiting for `ANALYZE`, and whether a task is analyzing: at most one at a time,
/// so a burst of uploads holds one connection, not one each (a second `ANALYZE` of a table
/// waits for the first). A table named while the task runs is analyzed in its next round,
/// so every bulk load is counted by a refresh that began after it committed.
#[derive(Default)]
struct StaleStatistics {
    state: std::sync::Mutex<(std::collections::BTreeSet<&'static str>, bool)>,
}

impl StaleStatistics {
    /// Notes `tables`; answers whether the caller must start the task (none is running).
    fn note(&self, tables: &[&'static str]) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0.extend(tables.iter().copied());
        !std::mem::replace(&mut state.1, true)
    }

    /// The tables of the task's next round; none, and the task ends, when no table waits.
    fn next_round(&self) -> Option<Vec<&'static str>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0.is_empty() {
            state.1 = false;
            return None;
        }
        Some(std::mem::take(&mut state.0).into_iter().collect())
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://FILE` or `postgres://…`). A missing SQLite
    /// file is created.
    pub async fn connect(url: &str, options: &StoreOptions) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let (url, process_lock, log_file) = match backend {
            Backend::Sqlite => {
                let (url, path) = sqlite_url(url);
                let (lock, log) = match (&path, options.exclusive) {
                    (Some(path), true) => (
                        Some(Arc::new(take_process_lock(path)?)),
                        Some(Arc::new(std::path::PathBuf::from(format!("{path}-wal")))),
                    ),
                    _ => (None, None),
                };
                (url, lock, log)
            }
            Backend::Postgres => (url.to_owned(), None, None),
        };
        let pool = pool_options(backend, options.max_connections, options)
            .connect(&url)
            .await?;
        let writer_cpu = match backend {
            Backend::Sqlite => writer_cpu(),
            Backend::Postgres => None,
        };
        let writer = match backend {
            Backend::Sqlite => Some(Arc::new(Mutex::new(
                Writer::open(&url, options.exclusive, writer_cpu).await?,
            ))),
            Backend::Postgres => None,
        };
        let alive = Arc::new(());
        if let (Some(writer), true) = (&writer, options.exclusive) {
            spawn_checkpoints(pool.clone(), writer.clone(), Arc::downgrade(&alive));
        }
        Ok(Store {
            pool,
            backend,
            writer,
            writer_cpu,
            _process_lock: process_lock,
            log_file,
            _alive: alive,
            stale: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Keeps the calling thread on the CPU of SQLite's writer thread, and answers whether
    /// it did (not on PostgreSQL, nor on a single CPU). For a thread that drives the writer
    /// statement after statement, each waiting for the other: every statement is a hand-off
    /// to the writer's thread and back, and a hand-off between CPUs — one thread waking
    /// another on an idle or busy CPU — cost ~90 µs on this project's 2-CPU VM where the
    /// same CPU took ~14 µs, and ~0.5–1 ms under load (a `BEGIN` measured from the intake).
    pub fn keep_beside_writer(&self) -> bool {
        self.writer_cpu.is_some_and(core_affinity::set_for_current)
    }

    /// The pool, for reads outside a transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies every pending migration; concurrent runs on PostgreSQL are serialised.
    pub async fn migrate(&self) -> StoreResult<()> {
        migrations::migrator(self.backend).run(&self.pool).await?;
        Ok(())
    }

    /// Begins a writing transaction: `BEGIN IMMEDIATE` on SQLite, so the write lock is taken
    /// up front and a transaction never fails half-way on an upgrade.
    pub async fn begin_write(&self) -> StoreResult<Tx> {
        let Some(writer) = &self.writer else {
            return Ok(Tx {
                inner: Some(TxConn::Pooled(self.pool.begin().await?)),
            });
        };
        let mut writer = writer.clone().lock_owned().await;
        if let Some(log) = &self.log_file {
            restart_a_long_log(&mut writer, log).await?;
        }
        writer.begin().await?;
        Ok(Tx {
            inner: Some(TxConn::Writer(writer)),
        })
    }

    /// Begins a read-only transaction that sees one snapshot of the whole database, for
    /// checks that read many tables while others write (`oms check` beside `oms serve`).
    /// Dropped, it rolls back; there is nothing to commit.
    pub async fn begin_snapshot(&self) -> StoreResult<Tx> {
        let inner = match self.backend {
            // A deferred transaction in WAL mode reads one snapshot from its first read on.
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        };
        Ok(Tx {
            inner: Some(TxConn::Pooled(inner)),
        })
    }

    /// Refreshes the query planner's statistics (`ANALYZE`), as after a bulk load.
    pub async fn analyze(&self) -> StoreResult<()> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    /// Refreshes the planner's statistics of `tables` (`ANALYZE`) in the background, on
    /// PostgreSQL, after a bulk load. Until autovacuum's next round, a minute or more
    /// later, the statistics do not count the new rows: a client they do not know yet is
    /// estimated at a row or two, and a lookup by client and a list of 1,000 codes or ids
    /// then reads every row of that client instead of seeking each one (0.2 s instead of
    /// 10 ms per list in a 100,000-row order upload). SQLite plans without statistics
    /// here (see `plan_tests`), so nothing runs there. A failure is only logged:
    /// autovacuum catches up anyway.
    pub fn refresh_statistics(&self, tables: &'static [&'static str]) {
        if self.backend != Backend::Postgres || tables.is_empty() || !self.stale.note(tables) {
            return;
        }
        let pool = self.pool.clone();
        let stale = self.stale.clone();
        tokio::spawn(async move {
            while let Some(tables) = stale.next_round() {
                // Behind a lock that conflicts with it (a vacuum or index build of the same
                // table) it waits 10 s at most, holding its connection meanwhile.
                let sql = format!(
                    "SET LOCAL lock_timeout = '10s'; ANALYZE {}",
                    tables.join(", ")
                );
                let analyzed = async {
                    let mut tx = pool.begin().await?;
                    tx.execute(sqlx::raw_sql(AssertSqlSafe(sql))).await?;
                    tx.commit().await
                };
                if let Err(error) = analyzed.await {
                    tracing::warn!(%error, "refreshing statistics after a bulk load failed");
                }
            }
        });
    }

    /// Answers when the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(writer) = &self.writer {
            writer.lock().await.close().await;
        }
    }
}

/// The writer's own bound on the SQLite log (called holding the write gate, before its
/// transaction begins): past [`LOG_BYTES_WRITER_RESTARTS`] the checkpoint task has fallen
/// behind — starved of the CPU, or its copy slowed by a busy disk — and the writer
/// restarts the log itself before it writes more, waiting for readers as long as any
/// writer would. A 64-writer test run once saw the log pass 64 MiB while the task waited
/// for its turn. One `stat` per writing transaction; in steady ingest the log stays under
/// 12 MB and this never runs.
async fn restart_a_long_log(writer: &mut Writer, log: &std::path::Path) -> StoreResult<()> {
    let length = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    if length > LOG_BYTES_WRITER_RESTARTS {
        writer
            .conn()?
            .execute("PRAGMA wal_checkpoint(RESTART)")
            .await?;
    }
    Ok(())
}

/// SQLite's one writing connection, held by the store for its whole life rather than
/// checked out of a pool: a pool tests a connection when it hands it out and again when
/// it takes it back (two hand-offs to SQLite's thread and back), and takes it back on a
/// task of its own that the next writer waits for — about 1.7 ms before a batch's first
/// statement during 64-client ingest. Kept open, its page cache (the indexes every batch
/// walks) also stays warm: SQLite drops a connection's cache whenever another connection
/// wrote since its last transaction.
pub(crate) struct Writer {
    /// `None` once the store is closed.
    conn: Option<AnyConnection>,
    /// A transaction is open: begun and not yet committed or rolled back — a [`Tx`]
    /// dropped midway whose rollback has not run, or a commit that failed. The next
    /// transaction rolls it back first.
    open: bool,
}

impl Writer {
    /// Opens the writer with the pragmas every connection runs with (see
    /// [`sqlite_pragmas`]), its thread kept on `cpu`.
    async fn open(
        url: &str,
        checkpoints_elsewhere: bool,
        cpu: Option<core_affinity::CoreId>,
    ) -> StoreResult<Writer> {
        let mut conn = match cpu {
            Some(cpu) => connect_on(url, cpu).await?,
            None => {
                use sqlx::Connection;
                AnyConnection::connect(url).await?
            }
        };
        sqlite_pragmas(&mut conn, checkpoints_elsewhere).await?;
        Ok(Writer {
            conn: Some(conn),
            open: false,
        })
    }

    fn conn(&mut self) -> StoreResult<&mut AnyConnection> {
        self.conn
            .as_mut()
            .ok_or_else(|| sqlx::Error::PoolClosed.into())
    }

    async fn begin(&mut self) -> StoreResult<()> {
        if self.open {
            self.rollback().await?;
        }
        self.conn()?.execute("BEGIN IMMEDIATE").await?;
        self.open = true;
        Ok(())
    }

    async fn commit(&mut self) -> StoreResult<()> {
        match self.conn()?.execute("COMMIT").await {
            Ok(_) => {
                self.open = false;
                Ok(())
            }
            Err(error) => {
                // A commit SQLite refused may leave the transaction open, holding the
                // write lock other processes wait for: undo it now, not at the next write.
                let _ = self.rollback().await;
                Err(error.into())
            }
        }
    }

    async fn rollback(&mut self) -> StoreResult<()> {
        match self.conn()?.execute("ROLLBACK").await {
            Ok(_) => {}
            // SQLite already rolled it back itself (after some errors it does).
            Err(sqlx::Error::Database(error))
                if error.message().contains("no transaction is active") => {}
            Err(error) => return Err(error.into()),
        }
        self.open = false;
        Ok(())
    }

    async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            use sqlx::Connection;
            let _ = conn.close().await;
        }
    }
}

/// The CPU SQLite's writer thread is kept on: the last one this process may run on, when
/// it may run on more than one.
fn writer_cpu() -> Option<core_affinity::CoreId> {
    let cpus = core_affinity::get_core_ids()?;
    if cpus.len() < 2 {
        return None;
    }
    cpus.last().copied()
}

/// Connects to SQLite from a thread kept on `cpu`. The driver runs each connection on a
/// thread of its own, started by the connecting thread, and a thread starts on the CPUs
/// of the thread that started it: the connection's thread stays on `cpu` for its life.
async fn connect_on(url: &str, cpu: core_affinity::CoreId) -> StoreResult<AnyConnection> {
    let url = url.to_owned();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("oms-writer-open".into())
        .spawn(move || {
            core_affinity::set_for_current(cpu);
            let connected = tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(sqlx::Error::Io)
                .and_then(|runtime| {
                    use sqlx::Connection;
                    runtime.block_on(AnyConnection::connect(&url))
                });
            let _ = sender.send(connected);
        })
        .map_err(sqlx::Error::Io)?;
    Ok(receiver.await.map_err(|_| sqlx::Error::WorkerCrashed)??)
}

/// One writing transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    /// `None` only once committed.
    inner: Option<TxConn>,
}

enum TxConn {
    /// PostgreSQL, and SQLite's snapshots for reading.
    Pooled(Transaction<'static, Any>),
    /// SQLite's writer, its gate held until the transaction ends.
    Writer(OwnedMutexGuard<Writer>),
}

impl Tx {
    pub fn conn(&mut self) -> &mut AnyConnection {
        match self.inner.as_mut() {
            Some(TxConn::Pooled(tx)) => tx,
            Some(TxConn::Writer(writer)) => writer
                .conn
                .as_mut()
                .expect("a transaction began on an open writer"),
            None => unreachable!("a committed transaction is consumed"),
        }
    }

    pub async fn commit(mut self) -> StoreResult<()> {
        match self.inner.take() {
            Some(TxConn::Pooled(tx)) => tx.commit().await?,
            Some(TxConn::Writer(mut writer)) => writer.commit().await?,
            None => {}
        }
        Ok(())
    }
}

impl Drop for Tx {
    /// A writer's transaction dropped midway is rolled back on a task that holds the
    /// gate until it has run, so the next writer finds the connection idle (and if no
    /// runtime is left to run it, the next writer rolls it back first).
    fn drop(&mut self) {
        if let Some(TxConn::Writer(mut writer)) = self.inner.take()
            && writer.open
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(error) = writer.rollback().await {
                    tracing::warn!(%error, "rolling back a dropped SQLite transaction failed");
                }
            });
        }
    }
}

/// The options of a pool: its size and timeouts, and on SQLite the pragmas every connection
/// runs with.
fn pool_options(backend: Backend, max_connections: u32, options: &StoreOptions) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    sqlite_pragmas(conn, false).await?;
                }
                Ok(())
            })
        })
}

/// What every SQLite connection runs with. `checkpoints_elsewhere`: the writer of a store
/// whose checkpoint task keeps the log.
async fn sqlite_pragmas(conn: &mut AnyConnection, checkpoints_elsewhere: bool) -> sqlx::Result<()> {
    // WAL lets readers run beside the writer; FULL makes each commit durable; the busy
    // timeout covers other processes (`oms check`); a 64 MiB page cache keeps a large
    // pass's indexes in memory; the journals multi-row statements keep (to undo one
    // statement) and temporary sorts stay in memory, not in temporary files.
    conn.execute(sqlx::raw_sql(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;",
    ))
    .await?;
    // The log file is reused from its start when it restarts (see `checkpoint`), and cut
    // back to this size then if a large transaction grew it past it.
    conn.execute(AssertSqlSafe(format!(
        "PRAGMA journal_size_limit = {LOG_BYTES_KEPT}"
    )))
    .await?;
    // Ids a writing transaction drew for rows it writes later (see `orders::draw_ids`);
    // rolled back with the transaction.
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS drawn_ids \
         (name TEXT PRIMARY KEY, last INTEGER NOT NULL)",
    )
    .await?;
    if checkpoints_elsewhere {
        // The writer never copies the log back itself: a commit that did so held the
        // write lock for it. A task does it off its path.
        conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
    }
    Ok(())
}

/// How often the SQLite log is copied back into the database file when the writer does
/// not do it itself.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// Log frames (pages) beyond which a checkpoint also starts the log afresh, waiting for
/// readers only briefly.
const LOG_FRAMES_RESTART: i64 = 1024;
/// Log frames (16 MiB) beyond which the restart waits for readers as long as any writer
/// would (the busy timeout): readers always in the log must not let it grow without end.
const LOG_FRAMES_MAX: i64 = 4096;
/// The size the log file keeps once it restarts (`journal_size_limit`): what steady writing
/// reaches between restarts (ingest: 0–12 MB), so only a large transaction's log is cut.
const LOG_BYTES_KEPT: i64 = 16 * 1024 * 1024;
/// The log file's length past which the writer restarts the log itself (see
/// `Store::restart_a_long_log`): twice what the log keeps.
const LOG_BYTES_WRITER_RESTARTS: u64 = 2 * LOG_BYTES_KEPT as u64;

/// Copies the SQLite log back into the database file every [`CHECKPOINT_EVERY`] until the
/// last handle of the store is dropped or its pool is closed. First `PASSIVE`, from a
/// reading connection beside the writer: it never waits for, nor blocks, it, and does
/// most of the copying. A log copied back that way is never started afresh while a writer
/// keeps committing (the log only restarts when a write begins with every frame copied),
/// so it would grow without end; when the log is longer than [`LOG_FRAMES_RESTART`] frames,
/// the task takes the write gate between two transactions and runs `RESTART`, which copies
/// the rest and waits for readers to leave the log (20 ms at most, or the busy timeout past
/// [`LOG_FRAMES_MAX`]); the next write then starts the log over from the start of the
/// file. Not `TRUNCATE`: emptying the file, under the write gate, then growing it again
/// write by write (the file system allocating blocks for every append) cost the writer
/// more than overwriting the file in place — 64-client ingest p99 49–52 ms with `TRUNCATE`,
/// 39–44 ms with `RESTART`.
fn spawn_checkpoints(pool: AnyPool, write_gate: Arc<Mutex<Writer>>, alive: std::sync::Weak<()>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut restarted_at = None;
        loop {
            tick.tick().await;
            if alive.strong_count() == 0 || pool.is_closed() {
                return;
            }
            if let Err(error) = checkpoint(&pool, &write_gate, &mut restarted_at).await {
                tracing::warn!(%error, "SQLite checkpoint failed; retrying");
            }
        }
    });
}

/// One round of the checkpoint task; answers whether it restarted the log. `restarted_at`
/// is the log's length in frames when it was last restarted: unlike `TRUNCATE`, `RESTART`
/// leaves the length SQLite reports as it was until the next write starts the log over,
/// so a log of that same length has been restarted already and is left alone (an idle
/// database would otherwise take the write gate every round).
async fn checkpoint<W>(
    pool: &AnyPool,
    write_gate: &Mutex<W>,
    restarted_at: &mut Option<i64>,
) -> StoreResult<bool> {
    use sqlx::Row;
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    let log: i64 = row.try_get(1)?;
    let restarted = if log > LOG_FRAMES_RESTART && *restarted_at != Some(log) {
        let mut conn = pool.acquire().await?;
        let _gate = write_gate.lock().await;
        // Waits for readers still in the log only briefly, since writers wait meanwhile: a
        // long reader (an export) just postpones the restart to a later round — until the
        // log passes LOG_FRAMES_MAX.
        let wait = if log > LOG_FRAMES_MAX {
            "PRAGMA busy_timeout = 5000"
        } else {
            "PRAGMA busy_timeout = 20"
        };
        conn.execute(wait).await?;
        let restart = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
            .fetch_one(&mut *conn)
            .await;
        conn.execute("PRAGMA busy_timeout = 5000").await?;
        let restart = restart?;
        // Not done while a reader stayed in the log (busy = 1): the next round tries again.
        let done = restart.try_get::<i64, _>(0)? == 0;
        if done {
            *restarted_at = Some(restart.try_get(1)?);
        }
        done
    } else {
        false
    };
    Ok(restarted)
}

fn backend_of(url: &str) -> StoreResult<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// The SQLite URL with `mode=rwc` (create when missing) unless a mode is given, and the
/// file's path when it is a file.
fn sqlite_url(url: &str) -> (String, Option<String>) {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let url = if query.split('&').any(|p| p.starts_with("mode=")) {
        url.to_owned()
    } else if query.is_empty() {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    };
    let is_file = !path.is_empty() && path != ":memory:";
    (url, is_file.then(|| path.to_owned()))
}

fn take_process_lock(path: &str) -> StoreResult<File> {
    let lock_path = format!("{path}.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StoreError::LockFile {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::LockFile {
            path: lock_path,
            source,
        }),
    }
}

/// Escapes `%`, `_` and `\` so user text matches literally inside `LIKE … ESCAPE '\'`.
pub fn like_contains(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_missing_files_unless_a_mode_is_given() {
        assert_eq!(
            sqlite_url("sqlite://oms.db"),
            ("sqlite://oms.db?mode=rwc".into(), Some("oms.db".into()))
        );
        assert_eq!(
            sqlite_url("sqlite:///tmp/x.db?mode=ro"),
            (
                "sqlite:///tmp/x.db?mode=ro".into(),
                Some("/tmp/x.db".into())
            )
        );
        assert_eq!(sqlite_url("sqlite::memory:").1, None);
    }

    #[test]
    fn like_patterns_match_literally() {
        assert_eq!(like_contains("A_b%"), "%a\\_b\\%%");
    }

    /// The bundled SQLite is built without memory statistics (`.cargo/config.toml`): with
    /// them every allocation SQLite makes takes a global mutex.
    #[tokio::test]
    async fn sqlite_keeps_no_memory_statistics() {
        use sqlx::Row;
        let store = Store::connect("sqlite::memory:", &StoreOptions::default())
            .await
            .expect("open");
        let options: Vec<String> = sqlx::query("PRAGMA compile_options")
            .fetch_all(store.pool())
            .await
            .expect("compile options")
            .iter()
            .map(|row| row.try_get(0).expect("option"))
            .collect();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }

    #[test]
    fn only_sqlite_and_postgres_urls_are_accepted() {
        assert_eq!(backend_of("sqlite://x").unwrap(), Backend::Sqlite);
        assert_eq!(backend_of("postgresql://h/db").unwrap(), Backend::Postgres);
        assert!(backend_of("mysql://h/db").is_err());
    }
}

/// How a generated statement numbers its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholders {
    /// `$1, $2, …`: PostgreSQL's only form.
    Numbered,
    /// `?, ?, …`: on SQLite, binding thousands of `$N` parameters costs time quadratic in
    /// their number (each bind looks its name up in a list), anonymous ones cost nothing.
    Anonymous,
}

impl Placeholders {
    fn of(conn: &AnyConnection) -> Placeholders {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Placeholders::Anonymous
        } else {
            Placeholders::Numbered
        }
    }
}

/// `INSERT INTO table (columns…) VALUES ($1, …), (…) ON CONFLICT (key…) DO UPDATE SET` every
/// non-key column to the incoming value, for `rows` rows. Built from constants only.
fn upsert_sql(
    placeholders: Placeholders,
    table: &str,
    columns: &[&str],
    key: &[&str],
    rows: usize,
) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    sql.push_str(&values_rows(placeholders, columns.len(), rows));
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !key.contains(c) && **c != "created_at")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    sql.push_str(&format!(
        " ON CONFLICT ({}) DO UPDATE SET {}",
        key.join(", "),
        updates.join(", ")
    ));
    sql
}

/// `(p, p, …), (…)` for `rows` rows of `columns` parameters, numbered from `$1` on
/// PostgreSQL. (The bulk writes of orders and stock use [`rows::rows_source`].)
fn values_rows(placeholders: Placeholders, columns: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 8);
    let mut parameter = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            parameter += 1;
            match placeholders {
                Placeholders::Numbered => sql.push_str(&format!("${parameter}")),
                Placeholders::Anonymous => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

/// Rows from which a generated statement is kept prepared: bulk work (uploads, a pass over
/// a backlog) repeats its full chunks (500 or 1,000 rows) hundreds of times, and preparing
/// a statement that size each time cost a 100,000-order pass about two seconds.
const KEEP_PREPARED_ROWS: usize = 500;

/// A statement generated for its number of rows (multi-row `VALUES`, `IN` lists). Below
/// [`KEEP_PREPARED_ROWS`] it is run without keeping it prepared: its text changes from one
/// call to the next, so keeping it only pushed the constant statements out of the driver's
/// cache (100 per connection, then prepared again), and on PostgreSQL every eviction cost a
/// round trip of its own.
pub(crate) fn generated<'q>(
    sql: String,
    rows: usize,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    sqlx::query(AssertSqlSafe(sql)).persistent(rows >= KEEP_PREPARED_ROWS)
}

/// `inner` (a `SELECT` whose output columns are named `columns`) answering all its rows
/// as one JSON text, `[[c1, c2, …], …]` in `inner`'s order, for [`fetch_json_rows`].
/// SQLite's driver hands every row, and every value in it, from its own thread to the
/// caller's one by one: a few microseconds a row, several times what SQLite takes to read
/// it. Read as one value, a batch's stock crosses once. PostgreSQL builds the same text.
pub(crate) fn json_rows_sql(placeholders: Placeholders, columns: &[&str], inner: &str) -> String {
    let rows = json_rows_value(placeholders, columns);
    format!("SELECT {rows} AS rows FROM ({inner}) AS q")
}

/// The aggregate that turns rows of `columns` into one JSON text, on each backend.
pub(crate) fn json_rows_value(placeholders: Placeholders, columns: &[&str]) -> String {
    let columns = columns.join(", ");
    match placeholders {
        Placeholders::Anonymous => format!("json_group_array(json_array({columns}))"),
        Placeholders::Numbered => {
            format!("COALESCE(json_agg(json_build_array({columns})), '[]')::text")
        }
    }
}

/// Runs a statement written by [`json_rows_sql`] and decodes its rows, each as `T` from
/// its array of columns (a tuple, or a struct that serde reads from a sequence).
pub(crate) async fn fetch_json_rows<'q, T: serde::de::DeserializeOwned>(
    conn: &mut AnyConnection,
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
) -> StoreResult<Vec<T>> {
    use sqlx::Row;
    let text: String = query.fetch_one(&mut *conn).await?.try_get("rows")?;
    decode_json_rows(&text)
}

pub(crate) fn decode_json_rows<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<Vec<T>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("rows read as JSON: {e}")))
}

/// Runs one statement written by [`json_rows_sql`] per chunk, in order, and decodes every
/// chunk's rows: each chunk's text is decoded while the next chunk's statement runs, so
/// the database (on SQLite its connection's thread) and this thread work at once — a
/// pass reads its backlog's lines, 1,000 orders a statement, and decoding them took
/// about a third as long as reading them.
pub(crate) async fn fetch_json_chunks<'q, T, C>(
    conn: &mut AnyConnection,
    chunks: impl Iterator<Item = C>,
    mut build: impl FnMut(C) -> StoreResult<sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>>,
) -> StoreResult<Vec<T>>
where
    T: serde::de::DeserializeOwned,
{
    let mut read = DecodedBeside::default();
    for chunk in chunks {
        read.fetch(&mut *conn, build(chunk)?).await?;
    }
    read.finish()
}

/// Rows of JSON reads decoded one statement behind: each statement's text is kept until
/// the next statement is sent, then decoded while that one runs.
struct DecodedBeside<T> {
    rows: Vec<T>,
    undecoded: Option<String>,
}

impl<T> Default for DecodedBeside<T> {
    fn default() -> Self {
        DecodedBeside {
            rows: Vec::new(),
            undecoded: None,
        }
    }
}

impl<T: serde::de::DeserializeOwned> DecodedBeside<T> {
    /// Runs `query` (written by [`json_rows_sql`] or [`json_page_sql`]), decoding the text
    /// before it meanwhile, and keeps its `rows`; answers its row for any other column.
    async fn fetch<'q>(
        &mut self,
        conn: &mut AnyConnection,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    ) -> StoreResult<sqlx::any::AnyRow> {
        use sqlx::Row;
        let undecoded = self.undecoded.take();
        // `biased`: the statement is sent on its first poll, before the decoding starts.
        let (read, decoded) = tokio::join!(biased; query.fetch_one(conn), async {
            undecoded.map(|text| decode_json_rows::<T>(&text)).transpose()
        });
        self.rows.extend(decoded?.into_iter().flatten());
        let read = read?;
        self.undecoded = Some(read.try_get("rows")?);
        Ok(read)
    }

    /// Every row read, the last statement's decoded now.
    fn finish(mut self) -> StoreResult<Vec<T>> {
        if let Some(text) = self.undecoded.take() {
            self.rows.extend(decode_json_rows::<T>(&text)?);
        }
        Ok(self.rows)
    }
}

/// Rows per page of a read that has no bound of its own (a client's whole backlog: its
/// open orders, then their lines): one page's JSON text stays far below both backends'
/// limit on one value (1 GB; an order with its trace is ~1 KB).
pub(crate) const JSON_PAGE_ROWS: i64 = 10_000;

/// `inner` (a `SELECT` of at most [`JSON_PAGE_ROWS`] rows whose output columns are named
/// `columns`, one of them the integer `key`) as one page for [`fetch_json_pages`]: its rows
/// as [`json_rows_sql`] answers them, with the page's largest key and its row count, so the
/// next page can be asked for before this one is decoded.
pub(crate) fn json_page_sql(
    placeholders: Placeholders,
    columns: &[&str],
    key: &str,
    inner: &str,
) -> String {
    let rows = json_rows_value(placeholders, columns);
    format!("SELECT {rows} AS rows, MAX(q.{key}) AS last, COUNT(*) AS n FROM ({inner}) AS q")
}

/// Every row of a keyset-paged read, [`JSON_PAGE_ROWS`] at a time: `page(after)` is the
/// statement (written by [`json_page_sql`]) for the next rows after key `after` in key
/// order, starting after `first`. Each page is decoded while the next one is read: a pass
/// reads a backlog of 100,000 orders in ten pages, and decoding one took about a third
/// as long as reading it.
pub(crate) async fn fetch_json_pages<T>(
    conn: &mut AnyConnection,
    first: i64,
    page: impl Fn(i64) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments>,
) -> StoreResult<Vec<T>>
where
    T: serde::de::DeserializeOwned,
{
    use sqlx::Row;
    let mut read = DecodedBeside::default();
    let mut after = first;
    loop {
        let page = read.fetch(&mut *conn, page(after)).await?;
        let count: i64 = page.try_get("n")?;
        match page.try_get::<Option<i64>, _>("last")? {
            Some(last) if count >= JSON_PAGE_ROWS => after = last,
            _ => return read.finish(),
        }
    }
}

/// Ids per `IN (…)` list: well under SQLite's and PostgreSQL's parameter limits.
const IN_LIST_MAX: usize = 1000;

/// A value of a list a statement matches a column against (see [`in_list`]).
pub(crate) trait ListValue: Sized {
    /// The list on PostgreSQL: `= ANY(…)` over `$2`, an array's text holding every value.
    const POSTGRES_MATCH: &'static str;
    /// That one text.
    fn postgres_list(values: &[Self]) -> String;
    /// Binds one value as one parameter (SQLite's form of the list).
    fn bind_to<'q>(
        &self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;
}

/// Ids as an array's text, `{1,2,3}`.
impl ListValue for i64 {
    const POSTGRES_MATCH: &'static str = "= ANY(ARRAY(SELECT unnest(CAST($2 AS BIGINT[]))))";
    fn postgres_list(values: &[i64]) -> String {
        let items: Vec<String> = values.iter().map(i64::to_string).collect();
        format!("{{{}}}", items.join(","))
    }
    fn bind_to<'q>(
        &self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
        query.bind(*self)
    }
}

/// Texts as an array's text, each quoted, `"` and `\` within escaped: `{"a","b \"c\""}`
/// (read faster than the same list as JSON).
impl ListValue for &str {
    const POSTGRES_MATCH: &'static str = "= ANY(ARRAY(SELECT unnest(CAST($2 AS TEXT[]))))";
    fn postgres_list(values: &[&str]) -> String {
        let items: Vec<String> = values
            .iter()
            .map(|value| format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        format!("{{{}}}", items.join(","))
    }
    fn bind_to<'q>(
        &self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
        query.bind((*self).to_owned())
    }
}

/// `IN …` matching a column against a list of `count` values of type `T`, written after
/// the statement's `$1` and bound by [`list_query`]. SQLite: `IN (?, ?, …)`, each value
/// bound. PostgreSQL: `= ANY(…)` over one text holding the list, so the statement's text
/// does not depend on the number of values and is parsed, planned and described once per
/// connection, then kept prepared. A generated `IN ($2, …, $n)` cost all three on every
/// call, the description a round trip of its own: three statements of every ingest batch.
/// The array is built by a subquery the planner cannot see into, so it always looks the
/// values up through the index: over the bare `CAST($2 AS TEXT[])`, a table whose
/// statistics were not yet taken (SKUs just uploaded) was scanned whole, each row compared
/// with every value — 8 s for 1,000 codes among 100,000 SKUs, against 6 ms.
pub(crate) fn in_list<T: ListValue>(placeholders: Placeholders, count: usize) -> String {
    match placeholders {
        Placeholders::Anonymous => format!("IN ({})", vec!["?"; count].join(", ")),
        Placeholders::Numbered => T::POSTGRES_MATCH.to_owned(),
    }
}

/// `sql` — written with `$1` for the client and one [`in_list`] of `values` — with both
/// bound: on SQLite each value, unprepared below [`KEEP_PREPARED_ROWS`] as its text changes
/// with their number; on PostgreSQL one text, and the statement kept prepared.
pub(crate) fn list_query<'q, T: ListValue>(
    placeholders: Placeholders,
    sql: &str,
    client: ClientId,
    values: &[T],
) -> StoreResult<sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>> {
    match placeholders {
        Placeholders::Anonymous => {
            let query = generated(numbered_first(placeholders, sql), values.len()).bind(client.0);
            Ok(values
                .iter()
                .fold(query, |query, value| value.bind_to(query)))
        }
        Placeholders::Numbered => Ok(sqlx::query(AssertSqlSafe(sql.to_owned()))
            .bind(client.0)
            .bind(T::postgres_list(values))),
    }
}

/// A statement written with `$1` ahead of an [`in_list`]: on SQLite every parameter is
/// anonymous and bound in text order, so `$1` becomes `?` too.
fn numbered_first(placeholders: Placeholders, sql: &str) -> String {
    match placeholders {
        Placeholders::Numbered => sql.to_owned(),
        Placeholders::Anonymous => sql.replace("$1", "?"),
    }
}

/// `UPDATE table SET … FROM (rows) AS v WHERE …` for `rows` rows typed `types` (see
/// [`rows::rows_source`]); the values are `v.column1`, `v.column2`, … on both backends.
/// `set` and `condition` are SQL fragments naming them. Built from constants only.
fn update_rows_sql(
    placeholders: Placeholders,
    table: &str,
    set: &str,
    types: &[&str],
    condition: &str,
    rows: usize,
) -> String {
    format!(
        "UPDATE {table} SET {set} FROM ({}) AS v WHERE {condition}",
        rows::rows_source(placeholders, types, rows)
    )
}

/// Whether an insert gives its rows' ids (drawn by `orders::draw_ids`): PostgreSQL's
/// identity columns take a given id only when told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ids {
    Drawn,
    Given,
}

/// `INSERT INTO table (columns…) <rows>` for `rows` rows (see [`rows::rows_source`]),
/// each column named with its type, with `tail` appended (`RETURNING …`, `ON CONFLICT …`).
/// Built from constants only.
fn insert_rows_sql(
    placeholders: Placeholders,
    table: &str,
    columns: &[(&str, &str)],
    ids: Ids,
    tail: &str,
    rows: usize,
) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let types: Vec<&str> = columns.iter().map(|(_, ty)| *ty).collect();
    let source = rows::rows_source(placeholders, &types, rows);
    let source = match (placeholders, ids) {
        // The list's null rows (see `rows::rows_source`) are left out.
        (Placeholders::Anonymous, _) => {
            format!("SELECT * FROM ({source}) WHERE column1 IS NOT NULL")
        }
        (Placeholders::Numbered, Ids::Given) => format!("OVERRIDING SYSTEM VALUE {source}"),
        (Placeholders::Numbered, Ids::Drawn) => source,
    };
    format!("INSERT INTO {table} ({}) {source} {tail}", names.join(", "))
}

/// Rows per multi-row statement: well under SQLite's 32,766 and PostgreSQL's 65,535
/// parameters for the widest table.
pub const UPSERT_ROWS_MAX: usize = 1000;

/// What the store's own tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use sqlx::Row;

    use crate::{Store, StoreOptions};

    /// Runs a test's setup insert, written out in plain SQL, answering the `id` it returns.
    pub(crate) async fn inserted_id(conn: &mut crate::Conn, sql: String) -> i64 {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(conn)
            .await
            .expect("insert")
            .try_get("id")
            .expect("id")
    }

    /// A fresh SQLite database file in a temporary folder, kept while the folder lives:
    /// the folder and the database's URL.
    pub(crate) fn fresh_sqlite() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("oms.db").display());
        (dir, url)
    }

    /// A fresh, empty database on the suite's PostgreSQL cluster (`OMS_TEST_PG_URL`), so a
    /// test that migrates and writes leaves the cluster's own database alone.
    pub(crate) async fn fresh_postgres() -> String {
        let admin_url = std::env::var("OMS_TEST_PG_URL").expect(
            "OMS_TEST_PG_URL is not set: run the suite with ./scripts/test, which starts a \
             throwaway PostgreSQL cluster",
        );
        let name = format!(
            "oms_store_test_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos()
        );
        let options = StoreOptions {
            max_connections: 1,
            ..StoreOptions::default()
        };
        let admin = Store::connect(&admin_url, &options)
            .await
            .expect("connect to the test cluster");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .expect("create test database");
        admin.close().await;
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("URL ends in a database name");
        format!("{base}/{name}")
    }
}

#[cfg(test)]
mod checkpoint_tests {
    use super::{LOG_FRAMES_RESTART, Store, StoreOptions, checkpoint};

    async fn scratch_table(store: &Store) {
        sqlx::query("CREATE TABLE scratch (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .execute(store.pool())
            .await
            .expect("scratch table");
    }

    /// Writes scratch rows `from..from + rows` in one transaction: rows of 4,000 bytes, a
    /// log frame (page) each.
    async fn write_scratch(store: &Store, from: i64, rows: i64) {
        let mut tx = store.begin_write().await.expect("begin");
        for id in from..from + rows {
            sqlx::query("INSERT INTO scratch (id, body) VALUES (?, ?)")
                .bind(id)
                .bind("x".repeat(4_000))
                .execute(tx.conn())
                .await
                .expect("insert");
        }
        tx.commit().await.expect("commit");
    }

    /// A restarted log is not restarted again until a write has started it over.
    #[tokio::test]
    async fn an_idle_log_is_restarted_once() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        // Not exclusive: no checkpoint task of its own, the test runs the rounds.
        let options = StoreOptions {
            exclusive: false,
            ..StoreOptions::default()
        };
        let store = Store::connect(&url, &options).await.expect("open");
        scratch_table(&store).await;
        let write = |from: i64, rows: i64| write_scratch(&store, from, rows);
        let gate = tokio::sync::Mutex::new(());
        let mut restarted_at = None;
        write(0, 2 * LOG_FRAMES_RESTART).await;
        let pool = store.pool();
        assert!(
            checkpoint(pool, &gate, &mut restarted_at)
                .await
                .expect("round")
        );
        assert!(
            !checkpoint(pool, &gate, &mut restarted_at)
                .await
                .expect("round")
        );
        assert!(
            !checkpoint(pool, &gate, &mut restarted_at)
                .await
                .expect("round")
        );
        // Started over by this write, the log is of another length: restarted again.
        write(1_000_000, 3 * LOG_FRAMES_RESTART).await;
        assert!(
            checkpoint(pool, &gate, &mut restarted_at)
                .await
                .expect("round")
        );
    }

    /// With the checkpoint task absent (as when it is starved of the CPU), the writer
    /// bounds the log itself: a writing transaction that finds the log past
    /// `LOG_BYTES_WRITER_RESTARTS` restarts it first, so its own commit starts the log
    /// over and the file is cut back to `LOG_BYTES_KEPT`.
    #[tokio::test]
    async fn the_writer_restarts_a_log_the_task_let_grow() {
        use super::{LOG_BYTES_KEPT, LOG_BYTES_WRITER_RESTARTS, Writer};
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("oms.db");
        let url = format!("sqlite://{}", path.display());
        let options = StoreOptions {
            exclusive: false,
            ..StoreOptions::default()
        };
        let mut store = Store::connect(&url, &options).await.expect("open");
        // The writer an exclusive store runs — SQLite's own checkpoints off, the log
        // watched — without the task that normally copies the log back.
        store.writer = Some(std::sync::Arc::new(tokio::sync::Mutex::new(
            Writer::open(&super::sqlite_url(&url).0, true, None)
                .await
                .expect("writer"),
        )));
        let log = std::path::PathBuf::from(format!("{}-wal", path.display()));
        store.log_file = Some(std::sync::Arc::new(log.clone()));
        scratch_table(&store).await;
        let write = |from: i64, rows: i64| write_scratch(&store, from, rows);
        let log_bytes = || std::fs::metadata(&log).expect("log file").len();
        // A log frame a row: past the writer's bound.
        let frames = i64::try_from(LOG_BYTES_WRITER_RESTARTS / 4096).expect("frames") + 512;
        write(0, frames).await;
        assert!(log_bytes() > LOG_BYTES_WRITER_RESTARTS, "the log grew");
        // Nobody copied the log back: without the writer's restart this write would
        // append to the long log.
        write(1_000_000, 1).await;
        assert!(
            log_bytes() <= LOG_BYTES_KEPT as u64,
            "the writer restarted the log before writing: {} bytes",
            log_bytes()
        );
        let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM scratch")
            .fetch_one(store.pool())
            .await
            .expect("count");
        assert_eq!(rows, frames + 1, "every row kept");
    }
}

#[cfg(test)]
mod writer_tests {
    use super::{Store, StoreOptions};
    use sqlx::{Connection, Executor};

    async fn open(dir: &tempfile::TempDir) -> (Store, String) {
        let url = format!("sqlite://{}", dir.path().join("oms.db").display());
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .expect("open");
        sqlx::query("CREATE TABLE scratch (id INTEGER PRIMARY KEY)")
            .execute(store.pool())
            .await
            .expect("scratch table");
        (store, url)
    }

    /// A writing transaction dropped midway (a request gone, an error returned early) is
    /// undone at once: its rows are gone, SQLite's write lock is free for other processes
    /// (`oms check`, a second connection), and the next writer goes on.
    #[tokio::test]
    async fn a_write_dropped_midway_is_undone_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, url) = open(&dir).await;
        let mut tx = store.begin_write().await.expect("begin");
        sqlx::query("INSERT INTO scratch (id) VALUES (1)")
            .execute(tx.conn())
            .await
            .expect("insert");
        drop(tx);
        // Another connection takes the write lock within its busy timeout.
        let mut other = sqlx::AnyConnection::connect(&super::sqlite_url(&url).0)
            .await
            .expect("other connection");
        other
            .execute("PRAGMA busy_timeout = 2000")
            .await
            .expect("timeout");
        other
            .execute("BEGIN IMMEDIATE")
            .await
            .expect("the write lock is free");
        other.execute("ROLLBACK").await.expect("rollback");
        let mut tx = store.begin_write().await.expect("begin again");
        sqlx::query("INSERT INTO scratch (id) VALUES (2)")
            .execute(tx.conn())
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM scratch ORDER BY id")
            .fetch_all(store.pool())
            .await
            .expect("ids");
        assert_eq!(ids, vec![(2,)], "only the committed row is kept");
    }

    /// With more than one CPU, SQLite's writer thread stays on one of them, and a thread
    /// that asks to be kept beside it runs on that CPU only.
    #[tokio::test]
    async fn the_writer_and_its_driver_share_one_cpu() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, _) = open(&dir).await;
        let cpus = core_affinity::get_core_ids().expect("CPUs");
        let Some(cpu) = store.writer_cpu else {
            assert_eq!(cpus.len(), 1, "kept on a CPU whenever there is a choice");
            return;
        };
        let driver = store.clone();
        let kept = std::thread::spawn(move || {
            let kept = driver.keep_beside_writer();
            (kept, core_affinity::get_core_ids())
        })
        .join()
        .expect("thread");
        assert_eq!(
            kept,
            (true, Some(vec![cpu])),
            "the driver runs on the writer's CPU"
        );
        // The writer's thread (SQLite's driver names its threads `sqlx-sqlite-worker-N`)
        // may run on that CPU only; the pool's readers go anywhere.
        let only = format!("Cpus_allowed_list:\t{}", cpu.id);
        let pinned = std::fs::read_dir("/proc/self/task")
            .expect("threads")
            .filter_map(|task| {
                let path = task.ok()?.path();
                let name = std::fs::read_to_string(path.join("comm")).ok()?;
                let status = std::fs::read_to_string(path.join("status")).ok()?;
                (name.starts_with("sqlx-sqlite") && status.lines().any(|l| l == only)).then_some(())
            })
            .count();
        assert!(pinned >= 1, "a SQLite thread is kept on CPU {}", cpu.id);
    }
}

#[cfg(test)]
mod statistics_tests {
    use super::StaleStatistics;

    #[test]
    fn one_task_analyzes_every_table_named_while_it_runs() {
        let stale = StaleStatistics::default();
        assert!(stale.note(&["skus"]), "the first request starts the task");
        assert!(
            !stale.note(&["orders", "skus"]),
            "a running task takes the rest"
        );
        assert_eq!(stale.next_round(), Some(vec!["orders", "skus"]));
        assert!(
            !stale.note(&["stock"]),
            "still running: its next round takes it"
        );
        assert_eq!(stale.next_round(), Some(vec!["stock"]));
        assert_eq!(stale.next_round(), None);
        assert!(
            stale.note(&["ledger"]),
            "the task ended: a new request starts one"
        );
    }
}

#[cfg(test)]
mod upsert_tests {
    #[test]
    fn upsert_sql_numbers_parameters_and_keeps_created_at() {
        let columns = ["client_id", "code", "name", "created_at"];
        let key = ["client_id", "code"];
        let sql = super::upsert_sql(super::Placeholders::Numbered, "t", &columns, &key, 2);
        assert_eq!(
            sql,
            "INSERT INTO t (client_id, code, name, created_at) VALUES ($1, $2, $3, $4), ($5, $6, $7, $8) \
             ON CONFLICT (client_id, code) DO UPDATE SET name = excluded.name"
        );
        let sql = super::upsert_sql(super::Placeholders::Anonymous, "t", &columns, &key, 1);
        assert!(sql.starts_with(
            "INSERT INTO t (client_id, code, name, created_at) VALUES (?, ?, ?, ?) ON"
        ));
    }

    #[test]
    fn an_unreachable_database_is_unavailable_not_an_internal_error() {
        use super::StoreError;
        let outages = [
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
        ];
        for outage in outages {
            let error = StoreError::from(outage);
            assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        }
        assert!(matches!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::Database(_)
        ));
    }
}

#[cfg(test)]
mod plan_tests {
    use sqlx::Row;

    use super::{Placeholders, Store, StoreOptions, UPSERT_ROWS_MAX, update_rows_sql};

    /// A migrated SQLite database in a temporary folder (kept while the folder lives).
    async fn migrated() -> (tempfile::TempDir, Store) {
        let (dir, url) = crate::test_support::fresh_sqlite();
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        (dir, store)
    }

    /// SQLite's plan for `sql`, with `parameters` placeholders: one step per line.
    async fn plan_of(store: &Store, sql: &str, parameters: usize) -> Vec<String> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        for _ in 0..parameters {
            query = query.bind(1_i64);
        }
        query
            .fetch_all(store.pool())
            .await
            .expect("plan")
            .iter()
            .map(|row| row.try_get("detail").expect("detail"))
            .collect()
    }

    /// SQLite's planner, which has no table statistics here, must look each row of a full
    /// chunk up by its key rather than scan the table once per chunk. (A PostgreSQL plan
    /// follows its statistics; its rows come as JSON, see `rows`.)
    #[tokio::test]
    async fn sqlite_updates_a_full_chunk_row_by_row_through_the_key() {
        let (_dir, store) = migrated().await;
        let updates: [(&str, &str, &[&str], &str); 3] = [
            (
                "orders",
                "status = v.column2",
                &["BIGINT", "TEXT"],
                "orders.id = v.column1",
            ),
            (
                "order_lines",
                "allocated = order_lines.allocated + v.column2",
                &["BIGINT", "BIGINT"],
                "order_lines.id = v.column1",
            ),
            (
                "stock",
                "qty = stock.qty - v.column5",
                &["BIGINT", "BIGINT", "BIGINT", "TEXT", "BIGINT"],
                "stock.client_id = v.column1 AND stock.warehouse_id = v.column2 \
                 AND stock.sku_id = v.column3 AND stock.bucket = v.column4",
            ),
        ];
        for (table, set, types, condition) in updates {
            let sql = update_rows_sql(
                Placeholders::Anonymous,
                table,
                set,
                types,
                condition,
                UPSERT_ROWS_MAX,
            );
            let plan = plan_of(&store, &sql, UPSERT_ROWS_MAX * types.len()).await;
            assert!(
                plan.iter()
                    .any(|step| step.starts_with(&format!("SEARCH {table} "))),
                "{table}: {plan:?}"
            );
            assert!(
                !plan
                    .iter()
                    .any(|step| step.starts_with(&format!("SCAN {table}"))),
                "{table}: {plan:?}"
            );
        }
    }

    /// A batch reads the stock of its SKUs through the stock key, SKU by SKU — not every
    /// row of the client, which a planner without statistics may choose when the key's
    /// leading column alone matches.
    #[tokio::test]
    async fn sqlite_reads_the_stock_of_some_skus_through_their_key() {
        let (_dir, store) = migrated().await;
        let skus = 300;
        let sql = crate::orders::allocatable_stock_of_skus_sql(Placeholders::Anonymous, skus);
        let plan = plan_of(&store, &sql, 1 + skus).await;
        assert!(
            plan.iter()
                .any(|step| step.starts_with("SEARCH stock ") && step.contains("sku_id=?")),
            "{plan:?}"
        );
    }

    /// On PostgreSQL a read matching a list of values is one prepared statement whatever
    /// the list's length, carries any text intact, and finds the values through the index
    /// under a generic plan and a custom one, even before the table has statistics.
    #[tokio::test]
    async fn postgres_keeps_one_statement_for_a_list_of_any_length() {
        let url = crate::test_support::fresh_postgres().await;
        let options = StoreOptions {
            max_connections: 1,
            ..StoreOptions::default()
        };
        let store = Store::connect(&url, &options).await.expect("connect");
        store.migrate().await.expect("migrate");
        let mut conn = store.pool().acquire().await.expect("connection");
        let client = crate::ClientId(1);
        for count in [1_i64, 3, 40] {
            let codes: Vec<String> = (0..count).map(|i| format!("SKU-{i}")).collect();
            let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
            let found = crate::skus::ids_by_code(&mut conn, client, &codes)
                .await
                .expect("SKUs by code");
            assert!(found.is_empty(), "{found:?}");
            let skus: Vec<i64> = (1..=count).collect();
            let stock = crate::orders::allocatable_stock(&mut conn, client, Some(&skus))
                .await
                .expect("stock of SKUs");
            assert!(stock.is_empty(), "{stock:?}");
        }
        let prepared: Vec<String> = sqlx::query(
            "SELECT statement FROM pg_prepared_statements WHERE strpos(statement, $1) > 0",
        )
        .bind("= ANY(")
        .fetch_all(&mut *conn)
        .await
        .expect("prepared statements")
        .iter()
        .map(|row| row.try_get("statement").expect("statement"))
        .collect();
        assert_eq!(prepared.len(), 2, "one per read: {prepared:#?}");

        // Codes come back as they went in, whatever they hold.
        let codes = [
            "plain",
            "with space",
            "comma,brace{}",
            "quote\"d",
            "back\\slash",
            "NULL",
            "",
            "ünï",
        ];
        let list = <&str as super::ListValue>::postgres_list(&codes);
        let back: Vec<String> = sqlx::query("SELECT unnest(CAST($1 AS TEXT[])) AS code")
            .bind(list)
            .fetch_all(&mut *conn)
            .await
            .expect("the list read back")
            .iter()
            .map(|row| row.try_get("code").expect("code"))
            .collect();
        assert_eq!(back, codes);

        // Many SKUs just written, their statistics not yet taken: still found through the
        // index, whatever plan the statement keeps.
        sqlx::raw_sql(
            "INSERT INTO clients (code, name, settings, created_at, updated_at) \
             VALUES ('LISTS', 'Lists', '{}', 0, 0); \
             INSERT INTO skus (client_id, code, name, mrp_minor, attributes, created_at, updated_at) \
             SELECT c.id, 'SKU-' || g, 'SKU', 100, '{}', 0, 0 \
             FROM clients c, generate_series(1, 50000) AS g WHERE c.code = 'LISTS'",
        )
        .execute(&mut *conn)
        .await
        .expect("SKUs written");
        let lists: i64 = sqlx::query("SELECT id FROM clients WHERE code = 'LISTS'")
            .fetch_one(&mut *conn)
            .await
            .expect("the client")
            .try_get("id")
            .expect("id");
        let codes: Vec<String> = (1..=1000).map(|i| format!("SKU-{}", i * 37)).collect();
        let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
        let found = crate::skus::ids_by_code(&mut conn, crate::ClientId(lists), &codes)
            .await
            .expect("SKUs by code");
        assert_eq!(found.len(), 1000);
        // Read as the statement is kept (a generic plan) and as it is planned for the list
        // in hand (a custom plan, PostgreSQL's first five runs): a list of 1,000 codes and
        // one of 1,000 SKU ids.
        let sku_ids: Vec<String> = (1..=1000).map(|i| (i * 37).to_string()).collect();
        let statements = [
            (
                "skus_by_code",
                crate::skus::ids_by_code_sql(Placeholders::Numbered, 3),
                format!("{{{}}}", codes.join(",")),
            ),
            (
                "stock_of_skus",
                crate::orders::allocatable_stock_of_skus_sql(Placeholders::Numbered, 3),
                format!("{{{}}}", sku_ids.join(",")),
            ),
        ];
        for (name, sql, list) in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "PREPARE {name} (BIGINT, TEXT) AS {sql}"
            )))
            .execute(&mut *conn)
            .await
            .expect("prepare");
            for mode in ["force_generic_plan", "force_custom_plan"] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
                    .execute(&mut *conn)
                    .await
                    .expect("plan mode");
                let plan: Vec<String> = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "EXPLAIN EXECUTE {name} ({lists}, '{list}')"
                )))
                .fetch_all(&mut *conn)
                .await
                .expect("plan")
                .iter()
                .map(|row| row.try_get(0).expect("plan line"))
                .collect();
                assert!(
                    plan.iter()
                        .any(|line| line.contains("Index Cond") && line.contains("= ANY")),
                    "{name}, {mode}: {plan:#?}"
                );
                assert!(
                    !plan.iter().any(|line| line.contains("Seq Scan")),
                    "{name}, {mode}: {plan:#?}"
                );
            }
        }
    }
}

#[cfg(test)]
mod json_read_tests {
    use super::{
        JSON_PAGE_ROWS, Placeholders, Store, StoreError, StoreOptions, fetch_json_chunks,
        fetch_json_pages, json_page_sql, json_rows_sql,
    };

    /// The numbers 1 ..= `count`, each with its double, as a `SELECT` of `id, twice`
    /// (a recursive query: both backends write it the same way).
    fn numbers(count: i64) -> String {
        format!(
            "WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < {count}) \
             SELECT id, id * 2 AS twice FROM n WHERE id <= {count}"
        )
    }

    /// Pages read while the page before is decoded still give every row once, in key
    /// order, whether the last page is full, partial or empty; chunks read the same way
    /// give every chunk's rows in chunk order; a chunk that cannot be built stops the read
    /// with its error.
    async fn reads_decoded_beside_the_next_give_every_row_once_in_order(url: &str) {
        let store = Store::connect(url, &StoreOptions::default())
            .await
            .expect("open");
        let mut conn = store.pool().acquire().await.expect("connection");
        let placeholders = Placeholders::of(&conn);
        let limit = match placeholders {
            Placeholders::Anonymous => "WHERE id > ? ORDER BY id LIMIT ?",
            Placeholders::Numbered => "WHERE id > $1 ORDER BY id LIMIT $2",
        };
        for count in [0, 1, JSON_PAGE_ROWS, 2 * JSON_PAGE_ROWS + 3] {
            let inner = format!(
                "SELECT id, twice FROM ({}) AS all_numbers {limit}",
                numbers(count)
            );
            let sql = json_page_sql(placeholders, &["id", "twice"], "id", &inner);
            let read: Vec<(i64, i64)> = fetch_json_pages(&mut conn, 0, |after| {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(after)
                    .bind(JSON_PAGE_ROWS)
            })
            .await
            .expect("pages");
            let expected: Vec<(i64, i64)> = (1..=count).map(|n| (n, 2 * n)).collect();
            assert_eq!(read.len(), expected.len(), "{count} rows");
            assert!(read == expected, "{count} rows in key order, each once");
        }

        let bounds: Vec<(i64, i64)> = vec![(1, 5), (6, 6), (7, 3_000), (3_001, 3_010)];
        let between = match placeholders {
            Placeholders::Anonymous => "WHERE id BETWEEN ? AND ?",
            Placeholders::Numbered => "WHERE id BETWEEN $1 AND $2",
        };
        let inner = format!(
            "SELECT id, twice FROM ({}) AS all_numbers {between}",
            numbers(3_010)
        );
        let sql = json_rows_sql(placeholders, &["id", "twice"], &inner);
        let read: Vec<(i64, i64)> = fetch_json_chunks(&mut conn, bounds.iter(), |(low, high)| {
            Ok(sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(*low)
                .bind(*high))
        })
        .await
        .expect("chunks");
        let ids: Vec<i64> = read.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, (1..=3_010).collect::<Vec<_>>());
        assert!(read.iter().all(|(id, twice)| *twice == 2 * id));

        let mut built = 0;
        let refused =
            fetch_json_chunks::<(i64, i64), _>(&mut conn, bounds.iter(), |(low, high)| {
                built += 1;
                if *low == 7 {
                    return Err(StoreError::Corrupt("chunk 3 cannot be built".into()));
                }
                Ok(sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(*low)
                    .bind(*high))
            })
            .await;
        assert!(
            matches!(&refused, Err(StoreError::Corrupt(m)) if m == "chunk 3 cannot be built"),
            "{refused:?}"
        );
        assert_eq!(built, 3, "nothing is built after the chunk that failed");
    }

    #[tokio::test]
    async fn sqlite_reads_decoded_beside_the_next_give_every_row_once_in_order() {
        let (_dir, url) = crate::test_support::fresh_sqlite();
        reads_decoded_beside_the_next_give_every_row_once_in_order(&url).await;
    }

    #[tokio::test]
    async fn postgres_reads_decoded_beside_the_next_give_every_row_once_in_order() {
        reads_decoded_beside_the_next_give_every_row_once_in_order(
            &crate::test_support::fresh_postgres().await,
        )
        .await;
    }
}
