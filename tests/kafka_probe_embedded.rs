//! The Kafka probe on the embedded lab's broker (librdkafka's mock cluster). The transform writes
//! dead letters in its transactions; on Kafka each commit leaves a marker offset in the DLQ, but
//! the mock writes none, so there the probe counts the DLQ's offsets as its dead letters without
//! a census reading the stream again. This checks that claim against the mock itself, with
//! records counted by a `read_committed` reader: if a librdkafka update makes the mock write
//! markers, this fails. Needs no service.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bigdata_lab::probes::kafka::{DlqCount, KafkaProbe};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const DEAD_LETTERS: i64 = 5;

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_dlq_count_is_its_dead_letters() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("emb.dlq", 1, 1).unwrap();
    cluster.create_topic("emb.review.clean", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("transactional.id", "emb-test")
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(10)).unwrap();
    // One dead letter and one clean record per transaction, as the transform writes them.
    for i in 0..DEAD_LETTERS {
        producer.begin_transaction().unwrap();
        for topic in ["emb.dlq", "emb.review.clean"] {
            producer
                .send(BaseRecord::<str, str>::to(topic).payload(&format!("r{i}")))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        producer.commit_transaction(Duration::from_secs(10)).unwrap();
    }

    // The dead letters a reader gets, counted by the test's own reader.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "emb-test-reader")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("emb.dlq", 0, Offset::Beginning).unwrap();
    reader.assign(&tpl).unwrap();
    let mut records = 0;
    loop {
        match reader.poll(Duration::from_secs(10)) {
            Some(Ok(_)) => records += 1,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
            other => panic!("reading the DLQ: {other:?}"),
        }
    }
    assert_eq!(records, DEAD_LETTERS);

    let mut probe = KafkaProbe::new(&brokers, "emb").on_embedded_broker(vec!["nobody".into()]);
    let snap = probe.poll().await.detail.unwrap();
    let offsets = snap.topics.iter().find(|t| t.name == "emb.dlq").unwrap().messages;
    assert_eq!(
        offsets, records,
        "the mock now writes transaction markers: the probe needs the census there"
    );
    assert_eq!(snap.dlq_count(), DlqCount::Exact(records));
    assert_eq!(snap.dlq_shown(|n| n.to_string()), records.to_string());
}
