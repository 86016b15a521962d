//! Wire -> domain for the group-coordination requests.

use bytes::Bytes;
use cohort_types::group::*;
use cohort_types::{TopicId, TopicPartition};
use kafka_protocol::messages::{self as m, ApiKey};
use kafka_protocol::protocol::{Decodable, StrBytes};

fn s(x: &StrBytes) -> String {
    x.as_str().to_string()
}

fn os(x: &Option<StrBytes>) -> Option<String> {
    x.as_ref().map(s)
}

fn d<T: Decodable>(buf: &mut Bytes, v: i16) -> Result<T, String> {
    T::decode(buf, v).map_err(|e| e.to_string())
}

pub fn decode(key: ApiKey, v: i16, buf: &mut Bytes) -> Result<GroupRequest, String> {
    Ok(match key {
        ApiKey::JoinGroup => {
            let r: m::JoinGroupRequest = d(buf, v)?;
            GroupRequest::JoinGroup(JoinGroupRequest {
                group_id: s(&r.group_id.0),
                session_timeout_ms: r.session_timeout_ms,
                // v0 has no rebalance timeout: the session timeout stands in.
                rebalance_timeout_ms: if v == 0 {
                    r.session_timeout_ms
                } else {
                    r.rebalance_timeout_ms
                },
                member_id: s(&r.member_id),
                group_instance_id: os(&r.group_instance_id),
                protocol_type: s(&r.protocol_type),
                protocols: r
                    .protocols
                    .iter()
                    .map(|p| (s(&p.name), p.metadata.clone()))
                    .collect(),
                reason: os(&r.reason),
                requires_known_member_id: v >= 4,
                supports_skip_assignment: v >= 9,
                // Filled in by the broker from the connection.
                client_id: String::new(),
                client_host: String::new(),
            })
        }
        ApiKey::SyncGroup => {
            let r: m::SyncGroupRequest = d(buf, v)?;
            GroupRequest::SyncGroup(SyncGroupRequest {
                group_id: s(&r.group_id.0),
                generation_id: r.generation_id,
                member_id: s(&r.member_id),
                group_instance_id: os(&r.group_instance_id),
                protocol_type: os(&r.protocol_type),
                protocol_name: os(&r.protocol_name),
                assignments: r
                    .assignments
                    .iter()
                    .map(|a| (s(&a.member_id), a.assignment.clone()))
                    .collect(),
            })
        }
        ApiKey::Heartbeat => {
            let r: m::HeartbeatRequest = d(buf, v)?;
            GroupRequest::Heartbeat(HeartbeatRequest {
                group_id: s(&r.group_id.0),
                generation_id: r.generation_id,
                member_id: s(&r.member_id),
                group_instance_id: os(&r.group_instance_id),
            })
        }
        ApiKey::LeaveGroup => {
            let r: m::LeaveGroupRequest = d(buf, v)?;
            let members = if v <= 2 {
                vec![(s(&r.member_id), None)]
            } else {
                r.members
                    .iter()
                    .map(|m| (s(&m.member_id), os(&m.group_instance_id)))
                    .collect()
            };
            GroupRequest::LeaveGroup(LeaveGroupRequest {
                group_id: s(&r.group_id.0),
                members,
            })
        }
        ApiKey::OffsetCommit => {
            let r: m::OffsetCommitRequest = d(buf, v)?;
            let mut offsets = Vec::new();
            for t in &r.topics {
                for p in &t.partitions {
                    offsets.push(OffsetToCommit {
                        partition: TopicPartition::new(t.name.0.as_str(), p.partition_index),
                        offset: p.committed_offset,
                        leader_epoch: if v >= 6 { p.committed_leader_epoch } else { -1 },
                        metadata: os(&p.committed_metadata),
                        unknown_partition: false,
                    });
                }
            }
            GroupRequest::OffsetCommit(OffsetCommitRequest {
                group_id: s(&r.group_id.0),
                generation_id: r.generation_id_or_member_epoch,
                member_id: s(&r.member_id),
                group_instance_id: os(&r.group_instance_id),
                retention_ms: if v <= 4 { r.retention_time_ms } else { -1 },
                offsets,
                group_id_not_found_supported: v >= 9,
            })
        }
        ApiKey::OffsetFetch => {
            let r: m::OffsetFetchRequest = d(buf, v)?;
            let members = if v >= 9 {
                r.groups
                    .iter()
                    .map(|g| match &g.member_id {
                        Some(m) => Some((s(m), g.member_epoch)),
                        None => None,
                    })
                    .collect()
            } else {
                vec![None; r.groups.len().max(1)]
            };
            let groups = if v <= 7 {
                let topics = r.topics.as_ref().map(|ts| {
                    ts.iter()
                        .flat_map(|t| {
                            t.partition_indexes
                                .iter()
                                .map(|p| TopicPartition::new(t.name.0.as_str(), *p))
                        })
                        .collect()
                });
                vec![(s(&r.group_id.0), topics)]
            } else {
                r.groups
                    .iter()
                    .map(|g| {
                        let topics = g.topics.as_ref().map(|ts| {
                            ts.iter()
                                .flat_map(|t| {
                                    t.partition_indexes
                                        .iter()
                                        .map(|p| TopicPartition::new(t.name.0.as_str(), *p))
                                })
                                .collect()
                        });
                        (s(&g.group_id.0), topics)
                    })
                    .collect()
            };
            GroupRequest::OffsetFetch(OffsetFetchRequest {
                groups,
                require_stable: r.require_stable,
                members,
            })
        }
        ApiKey::ListGroups => {
            let r: m::ListGroupsRequest = d(buf, v)?;
            GroupRequest::ListGroups(ListGroupsRequest {
                states: r
                    .states_filter
                    .iter()
                    .map(|x| s(x).to_lowercase())
                    .collect(),
                types: r.types_filter.iter().map(|x| s(x).to_lowercase()).collect(),
            })
        }
        ApiKey::DescribeGroups => {
            let r: m::DescribeGroupsRequest = d(buf, v)?;
            GroupRequest::DescribeGroups(r.groups.iter().map(|g| s(&g.0)).collect())
        }
        ApiKey::DeleteGroups => {
            let r: m::DeleteGroupsRequest = d(buf, crate::versions::layout(key, v))?;
            GroupRequest::DeleteGroups(r.groups_names.iter().map(|g| s(&g.0)).collect())
        }
        ApiKey::OffsetDelete => {
            let r: m::OffsetDeleteRequest = d(buf, v)?;
            let partitions = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| TopicPartition::new(t.name.0.as_str(), p.partition_index))
                })
                .collect();
            GroupRequest::OffsetDelete(OffsetDeleteRequest {
                group_id: s(&r.group_id.0),
                partitions,
            })
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let r: m::ConsumerGroupHeartbeatRequest = d(buf, v)?;
            GroupRequest::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
                group_id: s(&r.group_id.0),
                member_id: s(&r.member_id),
                member_epoch: r.member_epoch,
                instance_id: os(&r.instance_id),
                rack_id: os(&r.rack_id),
                rebalance_timeout_ms: r.rebalance_timeout_ms,
                subscribed_topic_names: r
                    .subscribed_topic_names
                    .as_ref()
                    .map(|ns| ns.iter().map(|n| s(&n.0)).collect()),
                subscribed_topic_regex: if v >= 1 {
                    os(&r.subscribed_topic_regex)
                } else {
                    None
                },
                server_assignor: os(&r.server_assignor),
                owned: r.topic_partitions.as_ref().map(|tps| {
                    tps.iter()
                        .map(|tp| (TopicId(*tp.topic_id.as_bytes()), tp.partitions.clone()))
                        .collect()
                }),
                server_generates_member_id: v == 0,
                client_id: String::new(),
                client_host: String::new(),
            })
        }
        ApiKey::ConsumerGroupDescribe => {
            let r: m::ConsumerGroupDescribeRequest = d(buf, v)?;
            GroupRequest::ConsumerGroupDescribe(r.group_ids.iter().map(|g| s(&g.0)).collect())
        }
        other => return Err(format!("{other:?} is not a group request")),
    })
}
