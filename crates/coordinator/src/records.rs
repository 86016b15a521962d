//! The coordinator's durable records. Every durable change is one of these,
//! applied by `Coordinator::replay`, both live and when a restart replays the log.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A classic group's whole durable state (Kafka's GroupMetadataValue).
    Group(GroupRecord),
    /// The group is gone, and its offsets with it.
    GroupTombstone { group_id: String },
    Offset(OffsetRecord),
    OffsetTombstone { group_id: String, topic: String, partition: i32 },
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

    /// The key under which a compacted log keeps only the newest record.
    pub fn key(&self) -> String {
        match self {
            Record::Group(g) => format!("g/{}", g.group_id),
            Record::GroupTombstone { group_id } => format!("g/{group_id}"),
            Record::Offset(o) => format!("o/{}/{}/{}", o.group_id, o.topic, o.partition),
            Record::OffsetTombstone { group_id, topic, partition } => format!("o/{group_id}/{topic}/{partition}"),
        }
    }
}
