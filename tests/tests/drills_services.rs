//! `braid drill` scenarios that restart the shared Redis and PostgreSQL: run this binary alone, after the others.
//!
//! `scripts/test` runs it with `--test-threads=1` after every other test binary, because
//! redis-crash kills redis-server and postgres-restart stops PostgreSQL with `-m immediate`:
//! any other test running meanwhile would see its connections cut. One test runs both, in turn.

mod drill_support;

use drill_support::{check, drill, figure};

#[test]
fn redis_crash_then_postgres_restart_lose_nothing() {
    // redis-crash (no persistence), redis-crash-aof (append-only file), then postgres-restart.
    for var in ["BRAID_SERVICES_SCRIPT", "BRAID_SERVICES_DIR"] {
        assert!(std::env::var_os(var).is_some(), "{var} must be set (scripts/services start exports it)");
    }
    let r = drill("redis-crash");
    assert_eq!(check(&r, "no-restart")["status"], "PASS");
    assert!(figure(&r, "stranded_tasks") >= 1, "the crash must strand ready tasks: {:#}", r["figures"]);
    let r = drill("redis-crash-aof");
    assert_eq!(check(&r, "no-restart")["status"], "PASS");
    let r = drill("postgres-restart");
    assert_eq!(check(&r, "no-restart")["status"], "PASS");
    assert_eq!(check(&r, "exactly-once")["status"], "PASS");
}
