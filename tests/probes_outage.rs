//! A service going down turns its probe's snapshot Down within two refresh intervals, and Up (or
//! Degraded) again soon after the service is back: the scheduler's loop polls PostgreSQL, the
//! Kafka-protocol broker and HDFS while the test harness's scripts (`tests/services/<svc>.sh`)
//! stop them and start them again on the same data.
//!
//! Counted in snapshots, not seconds (the loop backs off while a service is down, and a loaded
//! machine stretches every interval): after a script returns, the snapshots already queued were
//! taken before it, so they are dropped; then the poll that was running when the script returned
//! may still show the old state, and the one after it must show the new one.
//! Its own test binary, so no other test uses those services while they are stopped; a failing
//! test starts again what it stopped.
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]

mod common;

use std::time::Duration;

use bigdata_lab::probes::hdfs::HdfsProbe;
use bigdata_lab::probes::kafka::KafkaProbe;
use bigdata_lab::probes::postgres::PostgresProbe;
use bigdata_lab::probes::scheduler::{Probe, run_loop};
use bigdata_lab::probes::{Health, ServiceSnapshot};
use common::service_env;
use common::services::Stopped;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Hang guard for one snapshot (a poll is bounded by 5 s and the backoff by 8 s), not a timing
/// assertion.
const PATIENCE: Duration = Duration::from_secs(60);
const INTERVAL: Duration = Duration::from_millis(300);
/// After a script returns: the poll already running, then one that must see the change.
const WITHIN: usize = 2;

fn is_up(snap: &ServiceSnapshot) -> bool {
    matches!(snap.status().health, Health::Up | Health::Degraded)
}

fn is_down(snap: &ServiceSnapshot) -> bool {
    snap.status().health == Health::Down
}

async fn next(rx: &mut mpsc::Receiver<ServiceSnapshot>) -> ServiceSnapshot {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no snapshot within {PATIENCE:?}: the probe loop hangs"))
        .expect("the probe loop stopped")
}

/// Drops the snapshots queued so far (taken before now), then returns the first of the next
/// `within` snapshots that satisfies `want`; panics with what it saw instead.
async fn expect_within(
    rx: &mut mpsc::Receiver<ServiceSnapshot>,
    within: usize,
    what: &str,
    want: fn(&ServiceSnapshot) -> bool,
) -> ServiceSnapshot {
    while rx.try_recv().is_ok() {}
    let mut seen = Vec::new();
    for _ in 0..within {
        let snap = next(rx).await;
        if want(&snap) {
            return snap;
        }
        seen.push(format!("{:?} ({})", snap.status().health, snap.status().reason));
    }
    panic!("no {what} snapshot among the next {within}: {seen:?}")
}

/// Stops `svc` under a running probe loop and starts it again; a Down snapshot must come within
/// [`WITHIN`] snapshots of the stop, an Up or Degraded one within [`WITHIN`] of the start.
async fn outage<P: Probe>(probe: P, svc: &'static str, stop: &str, start: &'static str) {
    let (tx, mut rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run_loop(probe, INTERVAL, tx, cancel.clone()));
    let first = next(&mut rx).await;
    assert!(is_up(&first), "{svc} is not up before the test: {:?}", first.status());

    let stopped = Stopped::stop(svc, stop, start);
    let down = expect_within(&mut rx, WITHIN, &format!("{svc} down"), is_down).await;
    assert!(!down.status().reason.is_empty(), "a down snapshot says why");
    // It stays down while stopped (nothing answers from a cache), as the loop backs off.
    for _ in 0..2 {
        let snap = next(&mut rx).await;
        assert!(is_down(&snap), "{svc} is stopped, yet: {:?}", snap.status());
    }

    stopped.start_again();
    expect_within(&mut rx, WITHIN, &format!("{svc} up"), is_up).await;
    cancel.cancel();
    task.await.expect("the probe loop ends cleanly");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_services_turn_down_and_recover_when_restarted() {
    let pg = service_env("LAB_TEST_PG_URL");
    let kafka = service_env("LAB_TEST_KAFKA");
    let hdfs = HdfsProbe::new(
        &service_env("LAB_TEST_HDFS_HTTP"),
        bigdata_lab::probes::hdfs::RAW_ZONE_ROOT,
        "yelp",
    )
    .expect("HDFS probe");
    // The restarts keep the data: later test binaries still find their databases and topics.
    outage(PostgresProbe::new(Some(pg)), "postgres", "stop", "restart").await;
    // The Kafka probe keeps its librdkafka clients across polls; they reconnect on their own
    // backoff (at most 2 s), which the loop's own backoff covers: measured over 20 restarts after
    // outages of 1 to 6 polls, the first poll after the start was always up.
    outage(KafkaProbe::new(&kafka, "yelp"), "kafka", "stop-keep", "restart").await;
    outage(hdfs, "hdfs", "stop", "restart").await;
}
