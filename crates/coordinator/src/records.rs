//! The coordinator's durable records. Every durable change is one of these,
//! applied by `Coordinator::replay`, both live and when a restart replays the log.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A classic group's whole durable state (Kafka's GroupMetadataValue).
    Group(GroupRecord),
    /// The group is gone, and its offsets with it.
    GroupTombstone {
        group_id: String,
    },
    Offset(OffsetRecord),
    OffsetTombstone {
        group_id: String,
        topic: String,
        partition: i32,
    },
    /// A classic group became a consumer group (the consumer-group records
    /// that follow carry its members, if any): the classic group is gone, its
    /// offsets stay.
    ClassicGroupConverted {
        group_id: String,
    },
    /// A consumer group whose members all speak the classic protocol turned
    /// back into a classic group (the Group record that follows): the
    /// consumer group is gone, its offsets stay.
    ConsumerGroupConverted {
        group_id: String,
    },
    /// A consumer group's epoch and the topic metadata its subscriptions
    /// resolved to when it was bumped: (name, id, partitions).
    ConsumerGroupEpoch {
        group_id: String,
        epoch: i32,
        subscription: Vec<(String, [u8; 16], i32)>,
    },
    ConsumerMember(ConsumerMemberRecord),
    /// The member is gone: its metadata, target and current assignment.
    ConsumerMemberTombstone {
        group_id: String,
        member_id: String,
    },
    ConsumerTarget {
        group_id: String,
        member_id: String,
        assignment: Vec<([u8; 16], Vec<i32>)>,
    },
    ConsumerTargetEpoch {
        group_id: String,
        assignment_epoch: i32,
    },
    ConsumerCurrent(ConsumerCurrentRecord),
    /// The consumer group is gone, and its offsets with it.
    ConsumerGroupTombstone {
        group_id: String,
    },
    /// What a regex some member subscribes with matched when it was last
    /// resolved, and when.
    ConsumerRegex {
        group_id: String,
        regex: String,
        topics: Vec<String>,
        timestamp: i64,
    },
    /// No member uses the regex any more.
    ConsumerRegexTombstone {
        group_id: String,
        regex: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerMemberRecord {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// A member that speaks the classic protocol (JoinGroup, SyncGroup,
    /// Heartbeat) inside a consumer group; absent for a consumer-protocol
    /// member. Present, the record is written at version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classic: Option<ClassicMemberRecord>,
}

/// What a classic member of a consumer group said in its last JoinGroup
/// (Kafka's ClassicMemberMetadata).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicMemberRecord {
    pub session_timeout_ms: i32,
    /// Every protocol (client assignor) it offered, in its order, with the
    /// embedded subscription it sent for each.
    pub protocols: Vec<(String, Vec<u8>)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerCurrentRecord {
    pub group_id: String,
    pub member_id: String,
    /// 0 stable, 1 unrevoked partitions, 2 unreleased partitions.
    pub state: u8,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub assigned: Vec<([u8; 16], Vec<i32>)>,
    pub pending_revocation: Vec<([u8; 16], Vec<i32>)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub group_id: String,
    /// None for a "simple" group that only commits offsets.
    pub protocol_type: Option<String>,
    pub generation: i32,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// True once the leader's assignment for `generation` is stored; false when
    /// written at join completion, before anyone has an assignment.
    pub assigned: bool,
    pub state_timestamp: i64,
    pub members: Vec<MemberRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// Every protocol the member offered, in its order: (name, metadata).
    pub protocols: Vec<(String, Vec<u8>)>,
    pub assignment: Vec<u8>,
    /// The generation a member carried through later rounds was last told
    /// (`classic::follow_up`); absent when it knows the group's. Present, the
    /// Group record is written at version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub told_generation: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetRecord {
    pub group_id: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp: i64,
    /// Set when the commit asked for its own retention (OffsetCommit v2-4).
    pub expire_timestamp: Option<i64>,
}

/// Every record type, by the number written in its key, with the newest
/// value version this broker writes and reads for it. Numbers are never
/// reused; FORMAT.md documents each type's value.
const KINDS: &[(u16, &str, u16)] = &[
    (1, "Group", 1),
    (2, "GroupTombstone", 0),
    (3, "Offset", 0),
    (4, "OffsetTombstone", 0),
    (5, "ClassicGroupConverted", 0),
    (6, "ConsumerGroupEpoch", 0),
    (7, "ConsumerMember", 1),
    (8, "ConsumerMemberTombstone", 0),
    (9, "ConsumerTarget", 0),
    (10, "ConsumerTargetEpoch", 0),
    (11, "ConsumerCurrent", 0),
    (12, "ConsumerGroupTombstone", 0),
    (13, "ConsumerRegex", 0),
    (14, "ConsumerRegexTombstone", 0),
    (15, "ConsumerGroupConverted", 0),
];

impl Record {
    /// The value version this record is written at: the oldest that can
    /// carry everything in it, so a broker that reads only version 0 still
    /// loads logs that never used what came later, and refuses one that did
    /// rather than drop a field it does not know.
    fn version(&self) -> u16 {
        match self {
            Record::ConsumerMember(m) if m.classic.is_some() => 1,
            Record::Group(g) if g.members.iter().any(|m| m.told_generation.is_some()) => 1,
            _ => 0,
        }
    }

    /// The record as written to the coordinator log: a 4-byte key (type u16,
    /// value version u16, big-endian) and a value, the JSON object of the
    /// record's fields.
    pub fn encode(&self) -> ([u8; 4], Vec<u8>) {
        // serde writes an enum as {"Variant":{...fields...}}: the variant is
        // the type (moved to the key), the inner object is the value.
        let tagged = serde_json::to_vec(self).expect("records always serialise");
        let name_end = tagged[2..]
            .iter()
            .position(|&b| b == b'"')
            .expect("a variant name")
            + 2;
        let name = std::str::from_utf8(&tagged[2..name_end]).expect("ascii name");
        let kind = KINDS
            .iter()
            .find(|(_, n, _)| *n == name)
            .expect("every record type has a number")
            .0;
        let mut key = [0u8; 4];
        key[..2].copy_from_slice(&kind.to_be_bytes());
        key[2..].copy_from_slice(&self.version().to_be_bytes());
        (key, tagged[name_end + 2..tagged.len() - 1].to_vec())
    }

    /// Reads a record back. A record without a key is the first format,
    /// before types and versions were written: the value is the whole tagged
    /// JSON. An unknown type, or a version newer than this broker reads, is an
    /// error: the log was written by a newer Cohort.
    pub fn decode(key: Option<&[u8]>, value: &[u8]) -> Result<Record, String> {
        let Some(key) = key else {
            return serde_json::from_slice(value).map_err(|e| e.to_string());
        };
        let [k0, k1, v0, v1] = <[u8; 4]>::try_from(key)
            .map_err(|_| format!("a record key of {} bytes, not 4", key.len()))?;
        let kind = u16::from_be_bytes([k0, k1]);
        let version = u16::from_be_bytes([v0, v1]);
        let &(_, name, newest) = KINDS
            .iter()
            .find(|(k, _, _)| *k == kind)
            .ok_or_else(|| format!("unknown record type {kind} (written by a newer version?)"))?;
        if version > newest {
            return Err(format!(
                "record type {kind} ({name}) version {version} is newer than this version reads ({newest})"
            ));
        }
        let mut tagged = Vec::with_capacity(value.len() + name.len() + 6);
        tagged.extend_from_slice(b"{\"");
        tagged.extend_from_slice(name.as_bytes());
        tagged.extend_from_slice(b"\":");
        tagged.extend_from_slice(value);
        tagged.push(b'}');
        serde_json::from_slice(&tagged).map_err(|e| format!("record type {kind} ({name}): {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        vec![
            Record::GroupTombstone {
                group_id: "g".into(),
            },
            Record::ConsumerTargetEpoch {
                group_id: "g\"{".into(),
                assignment_epoch: 3,
            },
            Record::Offset(OffsetRecord {
                group_id: "g".into(),
                topic: "t".into(),
                partition: 1,
                offset: 42,
                leader_epoch: -1,
                metadata: Some("m".into()),
                commit_timestamp: 7,
                expire_timestamp: None,
            }),
        ]
    }

    #[test]
    fn records_round_trip_with_their_type_and_version_in_the_key() {
        for r in samples() {
            let (key, value) = r.encode();
            assert_eq!(&key[2..], &[0, 0]);
            assert!(
                value.starts_with(b"{"),
                "{}",
                String::from_utf8_lossy(&value)
            );
            assert_eq!(Record::decode(Some(&key), &value).unwrap(), r);
        }
        assert_eq!(
            Record::GroupTombstone {
                group_id: "g".into()
            }
            .encode()
            .0,
            [0, 2, 0, 0]
        );
    }

    #[test]
    fn a_classic_member_of_a_consumer_group_is_written_at_version_1_and_others_stay_at_0() {
        let mut m = ConsumerMemberRecord {
            group_id: "g".into(),
            member_id: "m".into(),
            instance_id: None,
            rack_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            rebalance_timeout_ms: 1,
            subscribed_topic_names: vec!["t".into()],
            subscribed_topic_regex: None,
            server_assignor: None,
            classic: None,
        };
        let (key, value) = Record::ConsumerMember(m.clone()).encode();
        assert_eq!(&key[2..], &[0, 0]);
        assert!(!String::from_utf8_lossy(&value).contains("classic"));
        m.classic = Some(ClassicMemberRecord {
            session_timeout_ms: 45000,
            protocols: vec![("range".into(), vec![0, 1])],
        });
        let r = Record::ConsumerMember(m);
        let (key, value) = r.encode();
        assert_eq!(key, [0, 7, 0, 1]);
        assert_eq!(Record::decode(Some(&key), &value).unwrap(), r);
        assert!(Record::decode(Some(&[0, 7, 0, 2]), &value)
            .unwrap_err()
            .contains("version 2 is newer"));
    }

    #[test]
    fn the_first_format_without_a_key_still_reads() {
        for r in samples() {
            let legacy = serde_json::to_vec(&r).unwrap();
            assert_eq!(Record::decode(None, &legacy).unwrap(), r);
        }
    }

    #[test]
    fn unknown_types_and_newer_versions_are_refused() {
        let (_, value) = samples()[0].encode();
        assert!(Record::decode(Some(&[0, 99, 0, 0]), &value)
            .unwrap_err()
            .contains("unknown record type 99"));
        assert!(Record::decode(Some(&[0, 2, 0, 1]), &value)
            .unwrap_err()
            .contains("version 1 is newer"));
        assert!(Record::decode(Some(&[0, 2]), &value).is_err());
        assert!(
            Record::decode(Some(&[0, 3, 0, 0]), &value).is_err(),
            "a value of another type"
        );
    }

    #[test]
    fn every_type_has_a_distinct_number() {
        let mut kinds: Vec<u16> = KINDS.iter().map(|k| k.0).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), KINDS.len());
    }
}
