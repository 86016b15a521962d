//! The domain form of the group-coordination requests and their answers: what
//! the `protocol` crate decodes into and what the coordinator answers with.
//! Version-dependent behaviour is resolved into plain flags here (for example
//! `requires_known_member_id`), so the coordinator never sees a version number.

use crate::{ErrorCode, TopicId, TopicPartition};
use bytes::Bytes;

#[derive(Clone, Debug, PartialEq)]
pub enum GroupRequest {
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    ListGroups(ListGroupsRequest),
    DescribeGroups(Vec<String>),
    DeleteGroups(Vec<String>),
    OffsetDelete(OffsetDeleteRequest),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest),
    ConsumerGroupDescribe(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum GroupResponse {
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(ErrorCode),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(Vec<(TopicPartition, ErrorCode)>),
    OffsetFetch(Vec<GroupOffsets>),
    ListGroups(ListGroupsResponse),
    DescribeGroups(Vec<DescribedGroup>),
    DeleteGroups(Vec<(String, ErrorCode)>),
    OffsetDelete(OffsetDeleteResponse),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
    ConsumerGroupDescribe(Vec<DescribedConsumerGroup>),
}

impl GroupResponse {
    /// The same kind of answer, carrying `error` everywhere it has an error code
    /// (for when the coordinator cannot stand behind the answer it computed).
    pub fn with_error(self, error: ErrorCode) -> GroupResponse {
        match self {
            GroupResponse::JoinGroup(j) => {
                GroupResponse::JoinGroup(JoinGroupResponse::error(error, &j.member_id))
            }
            GroupResponse::SyncGroup(_) => {
                GroupResponse::SyncGroup(SyncGroupResponse::error(error))
            }
            GroupResponse::Heartbeat(_) => GroupResponse::Heartbeat(error),
            GroupResponse::LeaveGroup(_) => GroupResponse::LeaveGroup(LeaveGroupResponse {
                error,
                members: vec![],
            }),
            GroupResponse::OffsetCommit(ps) => {
                GroupResponse::OffsetCommit(ps.into_iter().map(|(tp, _)| (tp, error)).collect())
            }
            GroupResponse::OffsetFetch(gs) => GroupResponse::OffsetFetch(
                gs.into_iter()
                    .map(|g| GroupOffsets {
                        error,
                        partitions: vec![],
                        ..g
                    })
                    .collect(),
            ),
            GroupResponse::ListGroups(_) => GroupResponse::ListGroups(ListGroupsResponse {
                error,
                groups: vec![],
            }),
            GroupResponse::DescribeGroups(gs) => GroupResponse::DescribeGroups(
                gs.into_iter()
                    .map(|g| DescribedGroup {
                        error,
                        members: vec![],
                        ..g
                    })
                    .collect(),
            ),
            GroupResponse::DeleteGroups(gs) => {
                GroupResponse::DeleteGroups(gs.into_iter().map(|(g, _)| (g, error)).collect())
            }
            GroupResponse::OffsetDelete(_) => GroupResponse::OffsetDelete(OffsetDeleteResponse {
                error,
                partitions: vec![],
            }),
            GroupResponse::ConsumerGroupHeartbeat(_) => GroupResponse::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatResponse::error(error, None),
            ),
            GroupResponse::ConsumerGroupDescribe(gs) => GroupResponse::ConsumerGroupDescribe(
                gs.into_iter()
                    .map(|g| DescribedConsumerGroup::error(&g.group_id, error))
                    .collect(),
            ),
        }
    }
}

impl GroupRequest {
    /// The answer to this request when no coordinator can take it.
    pub fn refused(&self, error: ErrorCode) -> GroupResponse {
        match self {
            GroupRequest::JoinGroup(r) => {
                GroupResponse::JoinGroup(JoinGroupResponse::error(error, &r.member_id))
            }
            GroupRequest::SyncGroup(_) => GroupResponse::SyncGroup(SyncGroupResponse::error(error)),
            GroupRequest::Heartbeat(_) => GroupResponse::Heartbeat(error),
            GroupRequest::LeaveGroup(_) => GroupResponse::LeaveGroup(LeaveGroupResponse {
                error,
                members: vec![],
            }),
            GroupRequest::OffsetCommit(r) => GroupResponse::OffsetCommit(
                r.offsets
                    .iter()
                    .map(|o| (o.partition.clone(), error))
                    .collect(),
            ),
            GroupRequest::OffsetFetch(r) => GroupResponse::OffsetFetch(
                r.groups
                    .iter()
                    .map(|(g, _)| GroupOffsets {
                        group_id: g.clone(),
                        error,
                        partitions: vec![],
                    })
                    .collect(),
            ),
            GroupRequest::ListGroups(_) => GroupResponse::ListGroups(ListGroupsResponse {
                error,
                groups: vec![],
            }),
            GroupRequest::DescribeGroups(ids) => GroupResponse::DescribeGroups(
                ids.iter()
                    .map(|g| DescribedGroup {
                        error,
                        error_message: None,
                        group_id: g.clone(),
                        state: String::new(),
                        protocol_type: String::new(),
                        protocol_data: String::new(),
                        members: vec![],
                    })
                    .collect(),
            ),
            GroupRequest::DeleteGroups(ids) => {
                GroupResponse::DeleteGroups(ids.iter().map(|g| (g.clone(), error)).collect())
            }
            GroupRequest::OffsetDelete(_) => GroupResponse::OffsetDelete(OffsetDeleteResponse {
                error,
                partitions: vec![],
            }),
            GroupRequest::ConsumerGroupHeartbeat(_) => GroupResponse::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatResponse::error(error, None),
            ),
            GroupRequest::ConsumerGroupDescribe(ids) => GroupResponse::ConsumerGroupDescribe(
                ids.iter()
                    .map(|g| DescribedConsumerGroup::error(g, error))
                    .collect(),
            ),
        }
    }

    /// The group whose coordinator shard must handle this request, if one.
    pub fn group_id(&self) -> Option<&str> {
        match self {
            GroupRequest::JoinGroup(r) => Some(&r.group_id),
            GroupRequest::SyncGroup(r) => Some(&r.group_id),
            GroupRequest::Heartbeat(r) => Some(&r.group_id),
            GroupRequest::LeaveGroup(r) => Some(&r.group_id),
            GroupRequest::OffsetCommit(r) => Some(&r.group_id),
            GroupRequest::OffsetDelete(r) => Some(&r.group_id),
            GroupRequest::ConsumerGroupHeartbeat(r) => Some(&r.group_id),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------- JoinGroup

#[derive(Clone, Debug, PartialEq)]
pub struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    /// v0 has none: the session timeout stands in for it.
    pub rebalance_timeout_ms: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    /// In the member's order of preference, exactly as sent.
    pub protocols: Vec<(String, Bytes)>,
    pub reason: Option<String>,
    /// v4+: an unknown dynamic member first gets MEMBER_ID_REQUIRED (KIP-394).
    pub requires_known_member_id: bool,
    /// v9+: a static leader rejoining without a rebalance gets SkipAssignment.
    pub supports_skip_assignment: bool,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct JoinGroupResponse {
    pub error: ErrorCode,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol; only the leader's
    /// answer carries them.
    pub members: Vec<JoinedMember>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

impl JoinGroupResponse {
    pub fn error(error: ErrorCode, member_id: &str) -> JoinGroupResponse {
        JoinGroupResponse {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: vec![],
        }
    }
}

// ---------------------------------------------------------------- SyncGroup

#[derive(Clone, Debug, PartialEq)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+ must carry both; older versions carry neither.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyncGroupResponse {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncGroupResponse {
    pub fn error(error: ErrorCode) -> SyncGroupResponse {
        SyncGroupResponse {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

// ---------------------------------------------------------------- Heartbeat and LeaveGroup

#[derive(Clone, Debug, PartialEq)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    /// (member id, group instance id); v0-2 carry exactly one, by member id.
    pub members: Vec<(String, Option<String>)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LeaveGroupResponse {
    pub error: ErrorCode,
    pub members: Vec<(String, Option<String>, ErrorCode)>,
}

// ---------------------------------------------------------------- Offsets

#[derive(Clone, Debug, PartialEq)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// Generation (classic) or member epoch (consumer groups); -1 for none.
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// -1 for the broker default (v2-4 only carry it).
    pub retention_ms: i64,
    pub offsets: Vec<OffsetToCommit>,
    /// v9+ answers a missing group with GROUP_ID_NOT_FOUND instead of
    /// ILLEGAL_GENERATION.
    pub group_id_not_found_supported: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OffsetToCommit {
    pub partition: TopicPartition,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    /// Set by the broker before the coordinator sees the request: the topic or
    /// partition does not exist.
    pub unknown_partition: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OffsetFetchRequest {
    /// (group id, partitions or None for all the group has committed).
    pub groups: Vec<(String, Option<Vec<TopicPartition>>)>,
    pub require_stable: bool,
    /// v9+: the member asking, for consumer groups: (member id, member epoch)
    /// per group, in the same order; None when not given.
    pub members: Vec<Option<(String, i32)>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupOffsets {
    pub group_id: String,
    pub error: ErrorCode,
    pub partitions: Vec<FetchedOffset>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FetchedOffset {
    pub partition: TopicPartition,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub error: ErrorCode,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OffsetDeleteRequest {
    pub group_id: String,
    pub partitions: Vec<TopicPartition>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OffsetDeleteResponse {
    pub error: ErrorCode,
    pub partitions: Vec<(TopicPartition, ErrorCode)>,
}

// ---------------------------------------------------------------- Admin

#[derive(Clone, Debug, PartialEq)]
pub struct ListGroupsRequest {
    /// Lower-cased state names; empty means all.
    pub states: Vec<String>,
    /// Lower-cased group types ("classic", "consumer"); empty means all.
    pub types: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ListGroupsResponse {
    pub error: ErrorCode,
    pub groups: Vec<ListedGroup>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
    pub group_type: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DescribedGroup {
    pub error: ErrorCode,
    /// Why, for an error (DescribeGroups v6+ carries it).
    pub error_message: Option<String>,
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol_data: String,
    pub members: Vec<DescribedMember>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

// ---------------------------------------------------------------- KIP-848

/// Topic-id keyed partitions, as ConsumerGroupHeartbeat carries them.
pub type TopicIdPartitions = Vec<(TopicId, Vec<i32>)>;

#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerGroupHeartbeatRequest {
    pub group_id: String,
    pub member_id: String,
    /// 0 join, -1 leave, -2 static temporary leave, >0 current epoch.
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1 when unchanged.
    pub rebalance_timeout_ms: i32,
    /// None when unchanged.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// None when unchanged; "" removes the regex (v1+ only).
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// What the member owns; None when unchanged.
    pub owned: Option<TopicIdPartitions>,
    /// v0: an empty member id on join asks the broker to make one.
    pub server_generates_member_id: bool,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerGroupHeartbeatResponse {
    pub error: ErrorCode,
    pub error_message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// None means "unchanged"; otherwise the member's full assignment.
    pub assignment: Option<TopicIdPartitions>,
}

impl ConsumerGroupHeartbeatResponse {
    /// An error answer carries only the code and message; the other fields
    /// keep the schema's defaults (no member id, epoch 0), as Kafka sends them.
    pub fn error(error: ErrorCode, message: Option<String>) -> Self {
        ConsumerGroupHeartbeatResponse {
            error,
            error_message: message,
            member_id: None,
            member_epoch: 0,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DescribedConsumerGroup {
    pub error: ErrorCode,
    pub error_message: Option<String>,
    pub group_id: String,
    pub state: String,
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub assignor_name: String,
    pub members: Vec<DescribedConsumerMember>,
}

impl DescribedConsumerGroup {
    pub fn error(group_id: &str, error: ErrorCode) -> Self {
        DescribedConsumerGroup {
            error,
            error_message: None,
            group_id: group_id.to_string(),
            state: "Dead".into(),
            epoch: -1,
            assignment_epoch: -1,
            assignor_name: String::new(),
            members: vec![],
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DescribedConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    /// (topic id, topic name, partitions)
    pub assignment: Vec<(TopicId, String, Vec<i32>)>,
    pub target_assignment: Vec<(TopicId, String, Vec<i32>)>,
    /// Speaks the classic protocol inside the consumer group (a mixed group).
    pub classic: bool,
}
