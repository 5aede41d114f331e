//! What a Kafka cluster adds to a single broker: which broker hosts and leads which partitions,
//! which partitions are under-replicated (fewer in-sync replicas than replicas) or offline (no
//! leader), which brokers the partitions name but the cluster no longer lists, and how in-sync
//! replica sets and leaders move between two polls.
//!
//! Pure: computed from the metadata the Kafka probe reads (each partition's leader, replicas and
//! ISR, as the broker's Metadata response carries them). A broker that is down is absent from the
//! response's broker list while partitions still name it among their replicas, which is how it
//! shows here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::kafka::{Broker, Topic};

/// Where librdkafka's metadata puts a partition without a leader.
pub const NO_LEADER: i32 = -1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterHealth {
    /// Every broker the metadata lists or a partition names, by id.
    pub brokers: Vec<BrokerLoad>,
    /// Partitions whose in-sync replicas are fewer than their replicas.
    pub under_replicated: Vec<PartitionReplicas>,
    /// Partitions without a leader: nobody can read or write them.
    pub offline: Vec<PartitionReplicas>,
    /// Changes since the previous poll (empty on the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ReplicaChange>,
}

impl ClusterHealth {
    /// Nothing under-replicated, nothing offline, no listed broker missing.
    #[must_use]
    pub fn healthy(&self) -> bool {
        self.under_replicated.is_empty() && self.offline.is_empty() && self.unlisted().next().is_none()
    }

    /// Brokers that partitions name but the cluster does not list (down or gone).
    pub fn unlisted(&self) -> impl Iterator<Item = i32> + '_ {
        self.brokers.iter().filter(|b| !b.listed).map(|b| b.id)
    }

    /// A topic's partitions short of in-sync replicas and without a leader.
    #[must_use]
    pub fn topic_trouble(&self, topic: &str) -> (usize, usize) {
        let of = |v: &[PartitionReplicas]| v.iter().filter(|p| p.topic == topic).count();
        (of(&self.under_replicated), of(&self.offline))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerLoad {
    pub id: i32,
    /// In the metadata's broker list; `false`: named by partitions only (down or gone).
    pub listed: bool,
    /// Partition replicas assigned to this broker.
    pub replicas: usize,
    /// Partitions this broker leads.
    pub leaders: usize,
    /// Assigned replicas that are in sync.
    pub in_sync: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionReplicas {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// One partition's replication as one poll saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    leader: i32,
    isr: Vec<i32>,
}

/// Each partition's leader and ISR, to compare the next poll with.
pub type ReplicaMap = HashMap<(String, i32), ReplicaState>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplicaChange {
    /// Replicas left the ISR (a broker down or falling behind).
    IsrShrank {
        topic: String,
        partition: i32,
        from: Vec<i32>,
        to: Vec<i32>,
    },
    /// Replicas caught up and joined the ISR again.
    IsrExpanded {
        topic: String,
        partition: i32,
        from: Vec<i32>,
        to: Vec<i32>,
    },
    /// Leadership moved; `to` is [`NO_LEADER`] when the partition went offline.
    LeaderMoved {
        topic: String,
        partition: i32,
        from: i32,
        to: i32,
    },
}

impl fmt::Display for ReplicaChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn ids(v: &[i32]) -> String {
            if v.is_empty() {
                "none".into()
            } else {
                v.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
            }
        }
        fn leader(id: i32) -> String {
            if id == NO_LEADER { "none".into() } else { id.to_string() }
        }
        match self {
            Self::IsrShrank {
                topic,
                partition,
                from,
                to,
            } => {
                let out: Vec<i32> = from.iter().copied().filter(|b| !to.contains(b)).collect();
                write!(
                    f,
                    "{topic}[{partition}] ISR shrank {} → {} (out: {})",
                    ids(from),
                    ids(to),
                    ids(&out)
                )
            }
            Self::IsrExpanded {
                topic,
                partition,
                from,
                to,
            } => {
                let back: Vec<i32> = to.iter().copied().filter(|b| !from.contains(b)).collect();
                write!(
                    f,
                    "{topic}[{partition}] ISR expanded {} → {} (back: {})",
                    ids(from),
                    ids(to),
                    ids(&back)
                )
            }
            Self::LeaderMoved {
                topic,
                partition,
                from,
                to,
            } if *to == NO_LEADER => {
                write!(f, "{topic}[{partition}] offline: leader {} lost", leader(*from))
            }
            Self::LeaderMoved {
                topic,
                partition,
                from,
                to,
            } => {
                write!(f, "{topic}[{partition}] leader {} → {}", leader(*from), leader(*to))
            }
        }
    }
}

fn sorted(v: &[i32]) -> Vec<i32> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}

/// The cluster's replication from one poll's brokers and topics (`changes` left empty: see
/// [`changes`]).
#[must_use]
pub fn health(brokers: &[Broker], topics: &[Topic]) -> ClusterHealth {
    let mut load: BTreeMap<i32, BrokerLoad> = brokers
        .iter()
        .map(|b| {
            (
                b.id,
                BrokerLoad {
                    id: b.id,
                    listed: true,
                    replicas: 0,
                    leaders: 0,
                    in_sync: 0,
                },
            )
        })
        .collect();
    let mut under_replicated = Vec::new();
    let mut offline = Vec::new();
    for t in topics {
        for p in &t.partitions {
            for &r in &p.replicas {
                let b = load.entry(r).or_insert(BrokerLoad {
                    id: r,
                    listed: false,
                    replicas: 0,
                    leaders: 0,
                    in_sync: 0,
                });
                b.replicas += 1;
                if p.isr.contains(&r) {
                    b.in_sync += 1;
                }
            }
            if p.leader != NO_LEADER
                && let Some(b) = load.get_mut(&p.leader)
            {
                b.leaders += 1;
            }
            let state = || PartitionReplicas {
                topic: t.name.clone(),
                partition: p.id,
                leader: p.leader,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
            };
            if p.leader == NO_LEADER {
                offline.push(state());
            } else if p.isr.len() < p.replicas.len() {
                under_replicated.push(state());
            }
        }
    }
    ClusterHealth {
        brokers: load.into_values().collect(),
        under_replicated,
        offline,
        changes: Vec::new(),
    }
}

/// Each partition's leader and ISR in this poll.
#[must_use]
pub fn replica_map(topics: &[Topic]) -> ReplicaMap {
    topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    (t.name.clone(), p.id),
                    ReplicaState {
                        leader: p.leader,
                        isr: sorted(&p.isr),
                    },
                )
            })
        })
        .collect()
}

/// What moved between the previous poll and this one, in topic and partition order. Partitions
/// that are new (a topic created) or gone (deleted) are not changes of replication.
#[must_use]
pub fn changes(before: &ReplicaMap, topics: &[Topic]) -> Vec<ReplicaChange> {
    let mut out = Vec::new();
    let mut names: Vec<&Topic> = topics.iter().collect();
    names.sort_by(|a, b| a.name.cmp(&b.name));
    for t in names {
        let mut parts: Vec<_> = t.partitions.iter().collect();
        parts.sort_by_key(|p| p.id);
        for p in parts {
            let Some(was) = before.get(&(t.name.clone(), p.id)) else {
                continue;
            };
            let (topic, partition) = (t.name.clone(), p.id);
            if was.leader != p.leader {
                out.push(ReplicaChange::LeaderMoved {
                    topic: topic.clone(),
                    partition,
                    from: was.leader,
                    to: p.leader,
                });
            }
            let now = sorted(&p.isr);
            let (a, b): (BTreeSet<i32>, BTreeSet<i32>) =
                (was.isr.iter().copied().collect(), now.iter().copied().collect());
            // Both at once (one replica out, another back) reads as two changes, the loss first.
            if !a.is_subset(&b) {
                let to: Vec<i32> = a.intersection(&b).copied().collect();
                out.push(ReplicaChange::IsrShrank {
                    topic: topic.clone(),
                    partition,
                    from: was.isr.clone(),
                    to: to.clone(),
                });
                if !b.is_subset(&a) {
                    out.push(ReplicaChange::IsrExpanded {
                        topic,
                        partition,
                        from: to,
                        to: now,
                    });
                }
            } else if !b.is_subset(&a) {
                out.push(ReplicaChange::IsrExpanded {
                    topic,
                    partition,
                    from: was.isr.clone(),
                    to: now,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::kafka::Partition;

    fn broker(id: i32) -> Broker {
        Broker {
            id,
            host: format!("kafka-{id}"),
            port: 9092,
        }
    }

    fn part(id: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> Partition {
        Partition {
            id,
            leader,
            low: 0,
            high: 10,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
        }
    }

    fn topic(name: &str, partitions: Vec<Partition>) -> Topic {
        Topic {
            name: name.into(),
            partitions,
            ..Topic::default()
        }
    }

    /// Three brokers, replication 3: broker 2 is down (not listed), so the partitions it led
    /// moved, its replicas are out of every ISR, and partition 2 of the DLQ (replication 1, on
    /// broker 2 only) has no leader.
    fn three_brokers_one_down() -> (Vec<Broker>, Vec<Topic>) {
        let brokers = vec![broker(1), broker(3)];
        let topics = vec![
            topic(
                "yelp.review",
                vec![
                    part(0, 1, &[1, 2, 3], &[1, 3]),
                    part(1, 3, &[2, 3, 1], &[3, 1]),
                    part(2, 3, &[3, 1, 2], &[3, 1]),
                ],
            ),
            topic(
                "yelp.dlq",
                vec![
                    part(0, 1, &[1], &[1]),
                    part(1, 3, &[3], &[3]),
                    part(2, NO_LEADER, &[2], &[]),
                ],
            ),
        ];
        (brokers, topics)
    }

    #[test]
    fn brokers_carry_their_replicas_leaders_and_in_sync_replicas() {
        let (brokers, topics) = three_brokers_one_down();
        let h = health(&brokers, &topics);
        assert_eq!(
            h.brokers,
            vec![
                BrokerLoad {
                    id: 1,
                    listed: true,
                    replicas: 4,
                    leaders: 2,
                    in_sync: 4
                },
                BrokerLoad {
                    id: 2,
                    listed: false,
                    replicas: 4,
                    leaders: 0,
                    in_sync: 0
                },
                BrokerLoad {
                    id: 3,
                    listed: true,
                    replicas: 4,
                    leaders: 3,
                    in_sync: 4
                },
            ]
        );
        let urp: Vec<_> = h
            .under_replicated
            .iter()
            .map(|p| (p.topic.as_str(), p.partition))
            .collect();
        assert_eq!(urp, vec![("yelp.review", 0), ("yelp.review", 1), ("yelp.review", 2)]);
        let off: Vec<_> = h.offline.iter().map(|p| (p.topic.as_str(), p.partition)).collect();
        assert_eq!(off, vec![("yelp.dlq", 2)]);
        assert!(!h.healthy());
    }

    #[test]
    fn a_fully_replicated_cluster_is_healthy() {
        let topics = vec![topic(
            "t",
            vec![part(0, 1, &[1, 2], &[2, 1]), part(1, 2, &[2, 1], &[1, 2])],
        )];
        let h = health(&[broker(1), broker(2)], &topics);
        assert!(h.healthy(), "{h:?}");
        assert_eq!(h.brokers.iter().map(|b| b.leaders).collect::<Vec<_>>(), vec![1, 1]);
        // One broker, replication 1 (the test broker, the embedded one): healthy too.
        let single = vec![topic("t", vec![part(0, 0, &[0], &[0])])];
        assert!(health(&[broker(0)], &single).healthy());
    }

    #[test]
    fn isr_shrink_expand_and_leader_moves_between_polls() {
        let healthy = vec![topic(
            "yelp.review",
            vec![part(0, 2, &[1, 2, 3], &[1, 2, 3]), part(1, 3, &[2, 3, 1], &[2, 3, 1])],
        )];
        let before = replica_map(&healthy);
        assert!(changes(&before, &healthy).is_empty(), "no change, nothing reported");
        // Broker 2 goes down: partition 0's leader moves to 1, both ISRs lose broker 2.
        let down = vec![topic(
            "yelp.review",
            vec![part(0, 1, &[1, 2, 3], &[1, 3]), part(1, 3, &[2, 3, 1], &[3, 1])],
        )];
        let c = changes(&before, &down);
        assert_eq!(
            c,
            vec![
                ReplicaChange::LeaderMoved {
                    topic: "yelp.review".into(),
                    partition: 0,
                    from: 2,
                    to: 1
                },
                ReplicaChange::IsrShrank {
                    topic: "yelp.review".into(),
                    partition: 0,
                    from: vec![1, 2, 3],
                    to: vec![1, 3]
                },
                ReplicaChange::IsrShrank {
                    topic: "yelp.review".into(),
                    partition: 1,
                    from: vec![1, 2, 3],
                    to: vec![1, 3]
                },
            ]
        );
        assert_eq!(c[1].to_string(), "yelp.review[0] ISR shrank 1,2,3 → 1,3 (out: 2)");
        assert_eq!(c[0].to_string(), "yelp.review[0] leader 2 → 1");
        // It comes back and catches up: the ISRs expand again; the leader stays where it is.
        let back = replica_map(&down);
        let c = changes(
            &back,
            &healthy
                .iter()
                .map(|t| {
                    let mut t = t.clone();
                    t.partitions[0].leader = 1;
                    t
                })
                .collect::<Vec<_>>(),
        );
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].to_string(), "yelp.review[0] ISR expanded 1,3 → 1,2,3 (back: 2)");
        // One replica out and another back within one poll: both are told.
        let swapped = vec![topic(
            "yelp.review",
            vec![part(0, 1, &[1, 2, 3], &[1, 2]), part(1, 3, &[2, 3, 1], &[3, 1])],
        )];
        let c = changes(&back, &swapped);
        assert_eq!(
            c.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec![
                "yelp.review[0] ISR shrank 1,3 → 1 (out: 3)".to_string(),
                "yelp.review[0] ISR expanded 1 → 1,2 (back: 2)".to_string(),
            ]
        );
        // A partition losing its leader is offline; new topics are not changes.
        let offline = vec![
            topic(
                "yelp.review",
                vec![part(0, NO_LEADER, &[1, 2, 3], &[]), part(1, 3, &[2, 3, 1], &[3, 1])],
            ),
            topic("new", vec![part(0, 1, &[1], &[1])]),
        ];
        let c = changes(&back, &offline);
        assert_eq!(c[0].to_string(), "yelp.review[0] offline: leader 1 lost");
        assert_eq!(c.len(), 2, "the leader lost and the ISR emptied: {c:?}");
    }
}
