//! A service going down turns its probe's snapshot Down, and it recovers when the service is
//! back: the scheduler's loop polls PostgreSQL and the Kafka-protocol broker while the test
//! harness's scripts (`tests/services/<svc>.sh stop|start`) stop and restart them.
//! Its own test binary, so no other test uses those services while they are stopped.

mod common;

use std::process::Command;
use std::time::Duration;

use bigdata_lab::probes::kafka::KafkaProbe;
use bigdata_lab::probes::postgres::PostgresProbe;
use bigdata_lab::probes::scheduler::{Probe, run_loop};
use bigdata_lab::probes::{Health, ServiceSnapshot};
use common::service_env;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Upper bound for a state change to show (several poll intervals plus a restart).
const PATIENCE: Duration = Duration::from_secs(90);
const INTERVAL: Duration = Duration::from_millis(300);

fn service_script(svc: &str, action: &str) {
    let dir = service_env("LAB_SERVICES_DIR");
    let script = format!("{}/tests/services/{svc}.sh", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&script)
        .arg(action)
        .env("LAB_SERVICES_DIR", dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} {action} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits for a snapshot with (or without, when `down` is false) health Down.
async fn wait_for(rx: &mut mpsc::Receiver<ServiceSnapshot>, down: bool) -> ServiceSnapshot {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let snap = rx.recv().await.expect("the probe loop stopped");
            if (snap.status().health == Health::Down) == down {
                return snap;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {} snapshot within {PATIENCE:?}", if down { "down" } else { "up" }))
}

async fn outage<P: Probe>(probe: P, svc: &str) {
    let (tx, mut rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run_loop(probe, INTERVAL, tx, cancel.clone()));
    let first = wait_for(&mut rx, false).await;
    assert_ne!(first.status().health, Health::Unknown);
    service_script(svc, "stop");
    let down = wait_for(&mut rx, true).await;
    assert!(!down.status().reason.is_empty(), "a down snapshot says why");
    service_script(svc, "start");
    let back = wait_for(&mut rx, false).await;
    assert!(
        matches!(back.status().health, Health::Up | Health::Degraded),
        "{:?}",
        back.status()
    );
    cancel.cancel();
    task.await.expect("the probe loop ends cleanly");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_services_turn_down_and_recover_when_restarted() {
    let pg = service_env("LAB_TEST_PG_URL");
    let kafka = service_env("LAB_TEST_KAFKA");
    outage(PostgresProbe::new(Some(pg)), "postgres").await;
    outage(KafkaProbe::new(&kafka, "yelp"), "kafka").await;
}
