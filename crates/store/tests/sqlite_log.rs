//! The SQLite log (`-wal` file) stays bounded while a writer commits without pause and
//! readers read beside it: the checkpoint task copies it back and starts it afresh, and
//! the writer restarts it itself if the task falls behind (past 32 MiB).

use std::time::{Duration, Instant};

use oms_store::{Store, StoreOptions};

const ROW_BYTES: usize = 4_000;
const ROWS_PER_COMMIT: usize = 64;
/// Written in all: far more than the bound below, so an unbounded log would show.
const WRITTEN_BYTES: usize = 256 * 1024 * 1024;
/// The writer's own bound (32 MiB) and one transaction, with room to spare. (With the
/// task's restarts alone, a loaded test run once saw 64 MiB.)
const LOG_BYTES_MAX: u64 = 40 * 1024 * 1024;

/// A store in a temporary folder (its log is `oms.db-wal` there) with a `scratch` table.
async fn scratch_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("oms.db");
    let store = Store::connect(
        &format!("sqlite://{}", path.display()),
        &StoreOptions::default(),
    )
    .await
    .expect("open");
    store.migrate().await.expect("migrate");
    sqlx::query("CREATE TABLE scratch (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .execute(store.pool())
        .await
        .expect("scratch table");
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_log_stays_bounded_under_continuous_writes() {
    let (dir, store) = scratch_store().await;
    let reading = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut reads = 0u64;
            for _ in 0..100_000 {
                // The writer closes the store when it is done; a read begun after that
                // is refused, which ends the reading.
                let mut tx = match store.begin_snapshot().await {
                    Ok(tx) => tx,
                    Err(_) if store.pool().is_closed() => break,
                    Err(error) => panic!("snapshot: {error}"),
                };
                sqlx::query("SELECT COUNT(*) FROM scratch")
                    .fetch_one(tx.conn())
                    .await
                    .expect("read");
                reads += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
                if store.pool().is_closed() {
                    break;
                }
            }
            reads
        })
    };
    let log = dir.path().join("oms.db-wal");
    let body = "x".repeat(ROW_BYTES);
    let started = Instant::now();
    let (mut written, mut largest, mut next) = (0usize, 0u64, 0i64);
    while written < WRITTEN_BYTES {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "wrote only {written} bytes in 300 s"
        );
        let mut tx = store.begin_write().await.expect("begin");
        for _ in 0..ROWS_PER_COMMIT {
            next += 1;
            sqlx::query("INSERT INTO scratch (id, body) VALUES (?, ?)")
                .bind(next)
                .bind(body.as_str())
                .execute(tx.conn())
                .await
                .expect("insert");
        }
        // The table stays small: the log, not the database, is what would grow.
        sqlx::query("DELETE FROM scratch WHERE id <= ?")
            .bind(next - 4 * ROWS_PER_COMMIT as i64)
            .execute(tx.conn())
            .await
            .expect("delete");
        tx.commit().await.expect("commit");
        written += ROW_BYTES * ROWS_PER_COMMIT;
        largest = largest.max(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0));
    }
    store.close().await;
    println!(
        "wrote {written} bytes in {:?}; the log reached {largest} bytes at most",
        started.elapsed()
    );
    let reads = reading.await.expect("reader");
    assert!(reads > 0);
    assert!(
        largest < LOG_BYTES_MAX,
        "the log reached {largest} bytes after {written} bytes written in {:?}",
        started.elapsed()
    );
}

/// A transaction that writes more than the log keeps does not leave a file that large
/// behind: once the log restarts, its file is cut back (`journal_size_limit`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_transaction_does_not_leave_a_large_log_behind() {
    const KEPT: u64 = 16 * 1024 * 1024;
    let (dir, store) = scratch_store().await;
    let log = dir.path().join("oms.db-wal");
    let body = "x".repeat(ROW_BYTES);
    let mut tx = store.begin_write().await.expect("begin");
    for id in 0..10_000i64 {
        sqlx::query("INSERT INTO scratch (id, body) VALUES (?, ?)")
            .bind(id)
            .bind(body.as_str())
            .execute(tx.conn())
            .await
            .expect("insert");
    }
    tx.commit().await.expect("commit");
    let size = || std::fs::metadata(&log).expect("the log file").len();
    let grown = size();
    assert!(
        grown > 2 * KEPT,
        "the transaction left only {grown} bytes of log"
    );
    // Small writes go on; the checkpoint task restarts the log, and a write resets it.
    let started = Instant::now();
    let mut next = 10_000i64;
    loop {
        let now = size();
        if now <= KEPT {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the log is still {now} bytes"
        );
        next += 1;
        let mut tx = store.begin_write().await.expect("begin");
        sqlx::query("INSERT INTO scratch (id, body) VALUES (?, 'y')")
            .bind(next)
            .execute(tx.conn())
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.close().await;
}
