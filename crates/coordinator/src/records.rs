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
    /// An empty classic group became a consumer group: the classic group is
    /// gone, its offsets stay.
    ClassicGroupConverted {
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

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records always serialise")
    }

    pub fn decode(bytes: &[u8]) -> Result<Record, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}
