//! The storm's short form in CI (RELIABILITY.md §6): the built `oms storm` against its own
//! throwaway PostgreSQL cluster (two serving processes, kills, one immediate database
//! restart) and against a temporary SQLite file (one process, a kill). Each must find no
//! violation. Neither touches the suite's shared PostgreSQL cluster (`OMS_TEST_PG_URL`).

use std::process::Command;

use serde_json::Value;

/// Runs `oms storm ARGS`, asserts it succeeded, and returns its JSON report.
fn storm(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_oms"))
        .arg("storm")
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("running oms storm");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "oms storm {args:?} failed:\n{stderr}\n{stdout}"
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON report in {stdout}"));
    let report: Value = serde_json::from_str(line).expect("the report is JSON");
    eprintln!("{report}");
    report
}

fn count(report: &Value, field: &str) -> u64 {
    report[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing from {report}"))
}

#[test]
fn postgres_two_processes_killed_and_a_database_restart_lose_nothing() {
    let report = storm(&[
        "--backend",
        "postgres",
        "--processes",
        "2",
        "--concurrency",
        "4",
        "--seconds",
        "10",
        "--kill-every",
        "3",
        "--pg-restarts",
        "1",
    ]);
    assert_eq!(count(&report, "violations"), 0);
    assert!(count(&report, "operations") > 50, "{report}");
    assert!(count(&report, "orders_acknowledged") > 0, "{report}");
    assert!(count(&report, "kills") >= 1, "{report}");
    assert_eq!(count(&report, "pg_restarts"), 1);
}

#[test]
fn sqlite_killed_mid_load_loses_nothing() {
    let report = storm(&[
        "--backend",
        "sqlite",
        "--concurrency",
        "4",
        "--seconds",
        "6",
        "--kill-every",
        "3",
    ]);
    assert_eq!(count(&report, "violations"), 0);
    assert!(count(&report, "operations") > 50, "{report}");
    assert!(count(&report, "kills") >= 1, "{report}");
}
