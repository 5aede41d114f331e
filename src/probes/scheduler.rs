//! Runs every probe on its own task, off the UI thread, and sends each snapshot down one channel.
//!
//! A probe never overlaps itself (its task awaits one poll before sleeping), each request inside a
//! poll has its own ≤ 1 s timeout, and the whole poll is bounded by [`POLL_DEADLINE`] as a last
//! resort. While a service is down its interval doubles up to [`MAX_BACKOFF`], so a dead service is
//! not hammered; the first failure is still reported at the normal interval, so a service going
//! down shows within two refresh intervals.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Health, LabService, ProbeError, Probed, Probes, ServiceSnapshot, Status};

/// Longest a whole poll may take (several requests run in sequence for Kafka).
pub const POLL_DEADLINE: Duration = Duration::from_secs(5);
/// Longest wait between two polls of a service that is down.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Refresh interval per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    pub kafka: Duration,
    pub hdfs: Duration,
    pub spark: Duration,
    pub airflow: Duration,
    pub postgres: Duration,
    pub docker: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            kafka: LabService::Kafka.default_interval(),
            hdfs: LabService::Hdfs.default_interval(),
            spark: LabService::Spark.default_interval(),
            airflow: LabService::Airflow.default_interval(),
            postgres: LabService::Postgres.default_interval(),
            docker: LabService::Docker.default_interval(),
        }
    }
}

/// The wait after a poll: the interval while up, doubling per consecutive failure while down.
#[must_use]
pub fn next_delay(interval: Duration, consecutive_failures: u32) -> Duration {
    if consecutive_failures <= 1 {
        return interval;
    }
    let factor = 1u32 << (consecutive_failures - 1).min(8);
    interval.saturating_mul(factor).min(MAX_BACKOFF.max(interval))
}

/// A probe the scheduler can run: one poll yields one snapshot.
pub trait Probe: Send + 'static {
    const SERVICE: LabService;
    fn poll_snapshot(&mut self) -> impl Future<Output = ServiceSnapshot> + Send;
    /// The snapshot sent when a poll overruns [`POLL_DEADLINE`].
    fn timed_out(status: Status) -> ServiceSnapshot;
}

macro_rules! impl_probe {
    ($ty:ty, $svc:ident) => {
        impl Probe for $ty {
            const SERVICE: LabService = LabService::$svc;
            fn poll_snapshot(&mut self) -> impl Future<Output = ServiceSnapshot> + Send {
                async move { ServiceSnapshot::$svc(self.poll().await) }
            }
            fn timed_out(status: Status) -> ServiceSnapshot {
                ServiceSnapshot::$svc(Probed { status, detail: None })
            }
        }
    };
}
impl_probe!(super::kafka::KafkaProbe, Kafka);
impl_probe!(super::hdfs::HdfsProbe, Hdfs);
impl_probe!(super::spark::SparkProbe, Spark);
impl_probe!(super::airflow::AirflowProbe, Airflow);
impl_probe!(super::postgres::PostgresProbe, Postgres);
impl_probe!(super::docker::DockerProbe, Docker);

impl Probe for super::raw_zone::LocalZoneProbe {
    const SERVICE: LabService = LabService::Hdfs;
    async fn poll_snapshot(&mut self) -> ServiceSnapshot {
        ServiceSnapshot::RawZone(self.poll().await)
    }
    fn timed_out(status: Status) -> ServiceSnapshot {
        ServiceSnapshot::RawZone(Probed { status, detail: None })
    }
}

/// Starts one task per probe; they stop when `cancel` fires or the receiver is dropped.
pub fn spawn(
    probes: Probes,
    intervals: Intervals,
    tx: &mpsc::Sender<ServiceSnapshot>,
    cancel: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    if let Some(raw_zone) = probes.raw_zone {
        // The embedded lab: its broker, its raw zone and its serving store, nothing else.
        return vec![
            tokio::spawn(run_loop(probes.kafka, intervals.kafka, tx.clone(), cancel.clone())),
            tokio::spawn(run_loop(raw_zone, intervals.hdfs, tx.clone(), cancel.clone())),
            tokio::spawn(run_loop(
                probes.postgres,
                intervals.postgres,
                tx.clone(),
                cancel.clone(),
            )),
        ];
    }
    vec![
        tokio::spawn(run_loop(probes.kafka, intervals.kafka, tx.clone(), cancel.clone())),
        tokio::spawn(run_loop(probes.hdfs, intervals.hdfs, tx.clone(), cancel.clone())),
        tokio::spawn(run_loop(probes.spark, intervals.spark, tx.clone(), cancel.clone())),
        tokio::spawn(run_loop(probes.airflow, intervals.airflow, tx.clone(), cancel.clone())),
        tokio::spawn(run_loop(
            probes.postgres,
            intervals.postgres,
            tx.clone(),
            cancel.clone(),
        )),
        tokio::spawn(run_loop(probes.docker, intervals.docker, tx.clone(), cancel.clone())),
    ]
}

/// Polls `probe` until cancelled, sending every snapshot.
pub async fn run_loop<P: Probe>(
    mut probe: P,
    interval: Duration,
    tx: mpsc::Sender<ServiceSnapshot>,
    cancel: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let snap = tokio::select! {
            () = cancel.cancelled() => return,
            r = tokio::time::timeout(POLL_DEADLINE, probe.poll_snapshot()) => match r {
                Ok(snap) => snap,
                Err(_) => P::timed_out(Status::down(
                    &ProbeError::Other {
                        service: P::SERVICE,
                        detail: format!("no complete answer within {} s", POLL_DEADLINE.as_secs()),
                    },
                    started,
                )),
            },
        };
        failures = if snap.status().health == Health::Down {
            failures.saturating_add(1)
        } else {
            0
        };
        if tx.send(snap).await.is_err() {
            return; // nobody listens any more
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(next_delay(interval, failures)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_after_the_first_failure_and_is_capped() {
        let s = Duration::from_secs(2);
        assert_eq!(next_delay(s, 0), s);
        assert_eq!(next_delay(s, 1), s);
        assert_eq!(next_delay(s, 2), Duration::from_secs(4));
        assert_eq!(next_delay(s, 3), Duration::from_secs(8));
        assert_eq!(next_delay(s, 30), MAX_BACKOFF);
        // An interval longer than the cap is never shortened.
        assert_eq!(next_delay(Duration::from_secs(20), 5), Duration::from_secs(20));
    }
}
