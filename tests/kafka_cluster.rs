//! The Kafka probe on a cluster of three brokers: librdkafka's mock cluster, which answers the
//! real Metadata request with each partition's leader, replicas and in-sync replicas. The probe
//! must give each broker its replicas and leaders, see a partition that loses its leader as
//! offline, and report the leader moves between two polls; `lab status --json` must carry it
//! for scripts. Needs no service: a plain `cargo test` runs it.
//!
//! What the mock cannot show: its ISR always equals the replica list, so under-replicated
//! partitions and ISR shrinks are covered by the unit tests of `probes::kafka_cluster` instead.
#![allow(clippy::unwrap_used)]

mod common;
use common::OutputGuarded;

use bigdata_lab::probes::kafka::KafkaProbe;
use bigdata_lab::probes::kafka_cluster::{NO_LEADER, ReplicaChange};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const TOPIC: &str = "clu.review";

#[tokio::test(flavor = "multi_thread")]
async fn three_brokers_leaders_replicas_offline_partitions_and_moves() {
    // Owned by this thread (a mock cluster must stay on the thread that made it); the test's
    // future runs on it.
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic(TOPIC, 6, 3).unwrap();
    let brokers = cluster.bootstrap_servers();
    // Ten records in each partition, so the watermarks say something.
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    for partition in 0..6 {
        for i in 0..10 {
            producer
                .send(
                    BaseRecord::<str, str>::to(TOPIC)
                        .partition(partition)
                        .payload(&format!("r{i}")),
                )
                .unwrap();
        }
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    // The mock has no ListGroups: read one (absent) group by name instead.
    let mut probe = KafkaProbe::new(&brokers, "clu").on_embedded_broker(vec!["nobody".into()]);

    let first = probe.poll().await.detail.expect("the probe reads the mock cluster");
    assert_eq!(first.brokers.len(), 3, "{:?}", first.brokers);
    let topic = first.topics.iter().find(|t| t.name == TOPIC).unwrap();
    assert_eq!(topic.partitions.len(), 6);
    assert_eq!(topic.messages, 60);
    for p in &topic.partitions {
        assert_eq!(p.replicas.len(), 3, "{p:?}");
        assert!(p.replicas.contains(&p.leader), "{p:?}");
    }
    let c = &first.cluster;
    assert!(c.healthy(), "{c:?}");
    assert_eq!(c.brokers.len(), 3);
    for b in &c.brokers {
        // Replication 3 on 3 brokers: every broker holds a replica of every partition.
        assert!(b.listed);
        assert_eq!((b.replicas, b.in_sync), (6, 6), "{b:?}");
    }
    // Each broker's leader count, as the metadata says, not as the probe assumes.
    for b in &c.brokers {
        let led = topic.partitions.iter().filter(|p| p.leader == b.id).count();
        assert_eq!(b.leaders, led, "{b:?}");
    }
    assert_eq!(c.brokers.iter().map(|b| b.leaders).sum::<usize>(), 6);
    assert!(c.changes.is_empty(), "a first poll has nothing to compare with");

    // Partition 0's leadership moves to another broker; partition 1 loses its leader.
    let p0 = &topic.partitions[0];
    let new_leader = *p0.replicas.iter().find(|&&b| b != p0.leader).unwrap();
    let old_leader = p0.leader;
    let p1_leader = topic.partitions[1].leader;
    cluster.partition_leader(TOPIC, 0, Some(new_leader)).unwrap();
    cluster.partition_leader(TOPIC, 1, None).unwrap();

    let second = probe.poll().await;
    let second_status = second.status.clone();
    let second = second
        .detail
        .unwrap_or_else(|| panic!("one offline partition fails the whole probe: {second_status:?}"));
    let c = &second.cluster;
    let offline: Vec<_> = c.offline.iter().map(|p| (p.topic.as_str(), p.partition)).collect();
    assert_eq!(offline, vec![(TOPIC, 1)]);
    assert!(!c.healthy());
    for (partition, from, to) in [(0, old_leader, new_leader), (1, p1_leader, NO_LEADER)] {
        let moved = ReplicaChange::LeaderMoved {
            topic: TOPIC.into(),
            partition,
            from,
            to,
        };
        assert!(c.changes.contains(&moved), "{moved:?} not among {:?}", c.changes);
    }
    assert_eq!(
        c.brokers.iter().map(|b| b.leaders).sum::<usize>(),
        5,
        "one partition has no leader"
    );
    // Kafka is still up, degraded, saying which partition it cannot read.
    assert_eq!(
        second_status.health,
        bigdata_lab::probes::Health::Degraded,
        "{second_status:?}"
    );
    assert!(
        second_status.reason.contains("clu.review[1]: no leader"),
        "{second_status:?}"
    );
    assert!(
        second_status.reason.contains("1 offline partition"),
        "{second_status:?}"
    );
    // The other partitions' offsets are still read; the offline one's are unknown (0).
    let highs: Vec<i64> = second
        .topics
        .iter()
        .find(|t| t.name == TOPIC)
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.high)
        .collect();
    assert_eq!(highs, vec![10, 0, 10, 10, 10, 10]);

    // The same from the command line, for scripts.
    let state = tempfile::tempdir().unwrap();
    let out = common::lab()
        .args(["status", "--json", "--brokers", &brokers, "--topic-prefix", "clu"])
        .arg("--state-dir")
        .arg(state.path())
        .output_guarded();
    let json = common::json_stdout(&out);
    let cluster_json = &json["services"]["kafka"]["detail"]["cluster"];
    assert_eq!(cluster_json["brokers"].as_array().map(Vec::len), Some(3), "{json:#}");
    assert_eq!(cluster_json["offline"][0]["topic"], TOPIC, "{json:#}");
    assert_eq!(cluster_json["offline"][0]["partition"], 1, "{json:#}");
}
