//! The Kafka probe on a busy broker: 300 topics, 50 consumer groups and groups coming and going,
//! polled back to back. Its own test binary, so that the process's thread count and memory are
//! the probe's alone (no other test runs beside it).
// Needs the services tests/services/up.sh starts: `make test` turns this feature on,
// so a plain `cargo test` on a fresh clone skips it.
#![cfg(feature = "service-tests")]
// Helpers outside #[test] functions: a panic there is the test's failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bigdata_lab::probes::Health;
use bigdata_lab::probes::kafka::KafkaProbe;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer};

/// Resident memory and thread count of this test process (Linux /proc).
fn rss_kib_and_threads() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("Threads:"))
}

/// A broker holding 300 topics and 50 consumer groups: every poll answers within the monitor's
/// deadline, and polling back to back for five minutes (with no pause between polls, more than the
/// monitor's 2 s interval makes in that time) leaves the process's threads and memory where they were.
#[tokio::test(flavor = "multi_thread")]
async fn the_kafka_probe_stays_bounded_on_a_broker_with_hundreds_of_topics_and_groups() {
    use bigdata_lab::probes::scheduler::POLL_DEADLINE;
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::{Offset, TopicPartitionList};

    let broker = common::services::OwnBroker::start();
    let brokers = broker.brokers();
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let names: Vec<String> = (0..300).map(|i| format!("many.t{i:03}")).collect();
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|t| NewTopic::new(t, 2, TopicReplication::Fixed(1)))
        .collect();
    for result in admin.create_topics(&new, &AdminOptions::new()).await.unwrap() {
        result.unwrap();
    }
    for t in names.iter().step_by(10) {
        common::produce(&brokers, t, 5).await;
    }
    // 50 groups, each with a commit on a few topics.
    for g in 0..50 {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", format!("many.g{g:02}"))
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for t in names.iter().skip(g).step_by(50) {
            tpl.add_partition_offset(t, 0, Offset::Offset(0)).unwrap();
        }
        c.commit(&tpl, CommitMode::Sync).unwrap();
    }

    let mut probe = KafkaProbe::new(&brokers, "many");
    async fn poll(probe: &mut KafkaProbe) {
        let snap = tokio::time::timeout(POLL_DEADLINE, probe.poll())
            .await
            .expect("a poll answers within the monitor's deadline");
        assert_eq!(snap.status.health, Health::Up, "{:?}", snap.status);
        let k = snap.detail.unwrap();
        assert!(k.topics.len() >= 300, "{} topics", k.topics.len());
        assert!(k.groups.len() >= 50, "{} groups", k.groups.len());
    }
    // Warm up: the first polls create the clients the probe keeps.
    for _ in 0..5 {
        poll(&mut probe).await;
    }
    // Measured once the churn below is in its steady state (two churn groups alive, so two more
    // clients than the 50 groups' own), then again at the end.
    let mut before = None;
    let (mut polls, started) = (0, Instant::now());
    // Groups come and go meanwhile, as a class's do: one new group per poll, the one from two
    // polls before deleted. A probe that kept a client per group ever seen grows threads here.
    let delete = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    while started.elapsed() < Duration::from_secs(300) {
        let group = format!("many.churn{polls}");
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", &group)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&names[polls % 300], 0, Offset::Offset(0))
            .unwrap();
        c.commit(&tpl, CommitMode::Sync).unwrap();
        drop(c);
        if polls >= 2 {
            let old = format!("many.churn{}", polls - 2);
            for r in admin.delete_groups(&[old.as_str()], &delete).await.unwrap() {
                r.unwrap();
            }
        }
        poll(&mut probe).await;
        polls += 1;
        if polls == 5 {
            before = Some(rss_kib_and_threads());
        }
    }
    let (rss_before, threads_before) = before.expect("at least five polls");
    let (rss_after, threads_after) = rss_kib_and_threads();
    // A little slack for tokio's blocking pool, which keeps idle threads for a while.
    assert!(
        threads_after <= threads_before + 4,
        "threads grew from {threads_before} to {threads_after} over {polls} polls"
    );
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB over {polls} polls"
    );
}
