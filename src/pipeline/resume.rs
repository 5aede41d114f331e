//! Where the consumer resumes a partition: which incarnation of the topic (which raw-zone
//! [`Epoch`]) its consumer group's committed offset belongs to, and the highest offset of that
//! incarnation already durable in the raw zone.
//!
//! Only records of the same incarnation are ever skipped as "already written". A partition whose
//! group has no commit is a new incarnation (a new topic, a new prefix, a reset broker): it gets a
//! new epoch, its records are all written, and files of earlier incarnations stay untouched. Files
//! the consumer cannot attribute (a commit without an epoch beside existing files) stop it with
//! [`PipelineError::UnknownRawZoneFiles`]: it never guesses.

use std::collections::{BTreeMap, HashMap};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::kafka::QUERY_TIMEOUT;
use super::{PipelineError, Topics};
use crate::dataset::Entity;
use crate::storage::{Epoch, PartFile, RawZone};

/// What the consumer knows about one partition it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PartitionState {
    pub epoch: Epoch,
    /// The highest offset of this epoch already in the raw zone.
    pub durable: Option<i64>,
}

/// Owned partitions by (topic, partition).
pub(super) type Owned = HashMap<(String, i32), PartitionState>;

/// What a partition's committed offset and the raw zone say about its incarnation.
#[derive(Debug, PartialEq, Eq)]
enum Incarnation {
    /// The commit names the epoch whose files belong to this incarnation.
    Known(Epoch),
    /// Nothing in the raw zone belongs to this incarnation yet.
    New,
    /// Files exist, and the commit does not say whether they are this incarnation's.
    Unknown,
}

/// `commit`: the group's committed offset and its metadata, if any. `high`: the partition's high
/// watermark. `has_files`: whether the raw zone holds files of this partition, of any epoch.
fn incarnation(commit: Option<(i64, &str)>, high: i64, has_files: bool) -> Incarnation {
    match commit {
        None => Incarnation::New,
        // A commit past the end of the partition belongs to a topic that was recreated under the
        // same name (the broker kept the group's offsets, the topic restarted at 0).
        Some((offset, _)) if offset > high => Incarnation::New,
        Some((_, metadata)) => match Epoch::from_commit_metadata(metadata) {
            Some(epoch) => Incarnation::Known(epoch),
            None if has_files => Incarnation::Unknown,
            None => Incarnation::New,
        },
    }
}

/// Works out the epoch and durable offset of every partition the consumer owns now, and commits
/// the start position of each new epoch with its tag before anything of it is written: a crash
/// after its first file then resumes in the same epoch instead of writing the records again.
///
/// Blocking librdkafka calls run in `block_in_place`.
pub(super) async fn resume<Z: RawZone, C: ConsumerContext + 'static>(
    zone: &Z,
    consumer: &StreamConsumer<C>,
    watermarks: &BaseConsumer,
    topics: &Topics,
    group: &str,
    brokers: &str,
) -> Result<Owned, PipelineError> {
    let kerr = |action: &'static str| move |e| PipelineError::kafka(action, brokers, e);
    let assignment = consumer.assignment().map_err(kerr("read the assignment"))?;
    if assignment.count() == 0 {
        return Ok(Owned::new());
    }
    let committed = tokio::task::block_in_place(|| consumer.committed_offsets(assignment.clone(), QUERY_TIMEOUT))
        .map_err(kerr("read the group's committed offsets"))?;
    let files = files_by_epoch(zone).await?;
    let mut owned = Owned::new();
    let mut markers = TopicPartitionList::new();
    for elem in assignment.elements() {
        let (topic, partition) = (elem.topic(), elem.partition());
        let Some(entity) = topics.entity_of_clean(topic) else {
            continue;
        };
        let commit = committed
            .find_partition(topic, partition)
            .and_then(|c| match c.offset() {
                Offset::Offset(o) => Some((o, c.metadata().to_string())),
                _ => None,
            });
        let (low, high) = tokio::task::block_in_place(|| watermarks.fetch_watermarks(topic, partition, QUERY_TIMEOUT))
            .map_err(kerr("read the partition's watermarks"))?;
        let on_disk = files.get(&(entity, partition));
        let has_files = on_disk.is_some_and(|epochs| !epochs.is_empty());
        let state = match incarnation(commit.as_ref().map(|(o, m)| (*o, m.as_str())), high, has_files) {
            Incarnation::Known(epoch) => PartitionState {
                epoch,
                durable: on_disk.and_then(|epochs| epochs.get(&epoch)).copied(),
            },
            Incarnation::New => {
                let epoch = Epoch::random();
                let start = commit.as_ref().map_or(low, |(o, _)| if *o <= high { *o } else { low });
                markers
                    .add_partition_offset(topic, partition, Offset::Offset(start))
                    .map_err(kerr("build the offsets to commit"))?;
                if let Some(mut marker) = markers.find_partition(topic, partition) {
                    marker.set_metadata(epoch.commit_metadata());
                }
                if has_files {
                    tracing::warn!(
                        topic,
                        partition,
                        %epoch,
                        earlier = ?on_disk.map(|e| e.keys().map(ToString::to_string).collect::<Vec<_>>()),
                        "the raw zone holds files of an earlier incarnation of this partition; they stay untouched and every record of this one is written"
                    );
                }
                PartitionState { epoch, durable: None }
            }
            Incarnation::Unknown => {
                return Err(PipelineError::UnknownRawZoneFiles {
                    zone: zone.describe(),
                    entity: entity.name().to_string(),
                    topic: topic.to_string(),
                    partition,
                    group: group.to_string(),
                });
            }
        };
        tracing::info!(topic, partition, epoch = %state.epoch, durable = ?state.durable, "partition resumed");
        owned.insert((topic.to_string(), partition), state);
    }
    if markers.count() > 0 {
        // Strict, unlike the other commits: files of an epoch whose marker the broker refused (a
        // rebalance under way) could not be told apart from another incarnation's after a
        // crash. A refusal makes the caller work out the partitions again, with a fresh epoch.
        match tokio::task::block_in_place(|| consumer.commit(&markers, CommitMode::Sync)) {
            Ok(()) => {}
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::FencedInstanceId)) => return Err(PipelineError::Fenced),
            Err(e) => {
                return Err(PipelineError::Kafka {
                    action: "commit the new raw-zone epochs".into(),
                    brokers: brokers.into(),
                    detail: e.to_string(),
                    transient: true,
                });
            }
        }
    }
    Ok(owned)
}

/// Per (entity, partition): the highest offset in the raw zone of each epoch.
pub(super) async fn files_by_epoch<Z: RawZone>(
    zone: &Z,
) -> Result<HashMap<(Entity, i32), BTreeMap<Epoch, i64>>, PipelineError> {
    let mut out: HashMap<(Entity, i32), BTreeMap<Epoch, i64>> = HashMap::new();
    for entity in Entity::ALL {
        for path in zone.list_files(entity.name()).await? {
            if let Some(part) = PartFile::parse(&path) {
                let last = out
                    .entry((entity, part.partition))
                    .or_default()
                    .entry(part.epoch)
                    .or_insert(part.last_offset);
                *last = (*last).max(part.last_offset);
            }
        }
    }
    Ok(out)
}

/// `offsets` with each partition's epoch in its commit metadata. Partitions the consumer does not
/// own are left out: a commit without the epoch would make the next owner stop, unable to tell
/// which files are its own.
pub(super) fn tagged(
    offsets: &TopicPartitionList,
    owned: &Owned,
    brokers: &str,
) -> Result<TopicPartitionList, PipelineError> {
    let mut out = TopicPartitionList::new();
    for elem in offsets.elements() {
        let (topic, partition) = (elem.topic(), elem.partition());
        let Some(state) = owned.get(&(topic.to_string(), partition)) else {
            continue;
        };
        out.add_partition_offset(topic, partition, elem.offset())
            .map_err(|e| PipelineError::kafka("build the offsets to commit", brokers, e))?;
        if let Some(mut tagged) = out.find_partition(topic, partition) {
            tagged.set_metadata(state.epoch.commit_metadata());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_with_an_epoch_names_the_incarnation() {
        let e = Epoch::random();
        let tag = e.commit_metadata();
        assert_eq!(incarnation(Some((10, &tag)), 10, true), Incarnation::Known(e));
        assert_eq!(incarnation(Some((10, &tag)), 50, false), Incarnation::Known(e));
    }

    #[test]
    fn no_commit_or_a_commit_past_the_end_is_a_new_incarnation() {
        let tag = Epoch::random().commit_metadata();
        // A new prefix, a new group, a broker reset: whatever files exist are not this topic's.
        assert_eq!(incarnation(None, 100, true), Incarnation::New);
        // The topic was recreated and the broker kept the group's offsets.
        assert_eq!(incarnation(Some((500, &tag)), 100, true), Incarnation::New);
        assert_eq!(incarnation(Some((500, "")), 100, true), Incarnation::New);
    }

    #[test]
    fn files_beside_a_commit_without_an_epoch_cannot_be_attributed() {
        assert_eq!(incarnation(Some((10, "")), 100, true), Incarnation::Unknown);
        assert_eq!(
            incarnation(Some((10, "set by a tool")), 100, true),
            Incarnation::Unknown
        );
        assert_eq!(incarnation(Some((10, "")), 100, false), Incarnation::New);
    }
}
