//! Domain -> wire for the group-coordination answers, shaped by version.

use cohort_types::group::*;
use cohort_types::{ErrorCode, TopicPartition};
use kafka_protocol::messages::{self as m, GroupId, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

fn sb(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn osb(x: &Option<String>) -> Option<StrBytes> {
    x.as_deref().map(sb)
}

fn e<E: std::fmt::Display>(x: E) -> String {
    x.to_string()
}

/// Groups (topic, partition) pairs by topic, keeping first-seen topic order.
pub(crate) fn by_topic<T: Clone>(items: &[(TopicPartition, T)]) -> Vec<(String, Vec<(i32, T)>)> {
    let mut out: Vec<(String, Vec<(i32, T)>)> = Vec::new();
    for (tp, x) in items {
        match out.iter_mut().find(|(t, _)| *t == tp.topic) {
            Some((_, v)) => v.push((tp.partition, x.clone())),
            None => out.push((tp.topic.clone(), vec![(tp.partition, x.clone())])),
        }
    }
    out
}

/// Encodes `r` at version `v`; the caller frames it.
pub fn encode(r: &GroupResponse, v: i16, buf: &mut bytes::BytesMut) -> Result<(), String> {
    match r {
        GroupResponse::JoinGroup(j) => {
            let mut o = m::JoinGroupResponse::default();
            o.error_code = j.error.0;
            o.generation_id = j.generation_id;
            o.protocol_type = osb(&j.protocol_type);
            // Not nullable before v7: an absent protocol is "".
            o.protocol_name = match (&j.protocol_name, v >= 7) {
                (Some(n), _) => Some(sb(n)),
                (None, true) => None,
                (None, false) => Some(sb("")),
            };
            o.leader = sb(&j.leader);
            o.skip_assignment = j.skip_assignment;
            o.member_id = sb(&j.member_id);
            o.members = j
                .members
                .iter()
                .map(|mm| {
                    let mut x = m::join_group_response::JoinGroupResponseMember::default();
                    x.member_id = sb(&mm.member_id);
                    x.group_instance_id = osb(&mm.group_instance_id);
                    x.metadata = mm.metadata.clone();
                    x
                })
                .collect();
            o.encode(buf, v).map_err(e)
        }
        GroupResponse::SyncGroup(sg) => {
            let mut o = m::SyncGroupResponse::default();
            o.error_code = sg.error.0;
            o.protocol_type = osb(&sg.protocol_type);
            o.protocol_name = osb(&sg.protocol_name);
            o.assignment = sg.assignment.clone();
            o.encode(buf, v).map_err(e)
        }
        GroupResponse::Heartbeat(code) => {
            let mut o = m::HeartbeatResponse::default();
            o.error_code = code.0;
            o.encode(buf, v).map_err(e)
        }
        GroupResponse::LeaveGroup(l) => {
            let mut o = m::LeaveGroupResponse::default();
            if v <= 2 {
                // One member per request before v3: its error is the answer.
                o.error_code = if l.error != ErrorCode::NONE {
                    l.error.0
                } else {
                    l.members
                        .iter()
                        .map(|x| x.2)
                        .find(|c| *c != ErrorCode::NONE)
                        .unwrap_or(ErrorCode::NONE)
                        .0
                };
            } else {
                o.error_code = l.error.0;
                o.members = l
                    .members
                    .iter()
                    .map(|(mid, inst, code)| {
                        let mut x = m::leave_group_response::MemberResponse::default();
                        x.member_id = sb(mid);
                        x.group_instance_id = osb(inst);
                        x.error_code = code.0;
                        x
                    })
                    .collect();
            }
            o.encode(buf, v).map_err(e)
        }
        GroupResponse::OffsetCommit(results) => {
            let mut o = m::OffsetCommitResponse::default();
            o.topics = by_topic(results)
                .into_iter()
                .map(|(t, ps)| {
                    let mut x = m::offset_commit_response::OffsetCommitResponseTopic::default();
                    x.name = TopicName(sb(&t));
                    x.partitions = ps
                        .into_iter()
                        .map(|(p, code)| {
                            let mut y =
                                m::offset_commit_response::OffsetCommitResponsePartition::default();
                            y.partition_index = p;
                            y.error_code = code.0;
                            y
                        })
                        .collect();
                    x
                })
                .collect();
            o.encode(buf, v).map_err(e)
        }
        GroupResponse::OffsetFetch(groups) => offset_fetch(groups, v, buf),
        GroupResponse::ConsumerGroupHeartbeat(h) => {
            let mut o = m::ConsumerGroupHeartbeatResponse::default();
            o.error_code = h.error.0;
            o.error_message = osb(&h.error_message);
            o.member_id = osb(&h.member_id);
            o.member_epoch = h.member_epoch;
            o.heartbeat_interval_ms = h.heartbeat_interval_ms;
            o.assignment = h.assignment.as_ref().map(|a| {
                let mut x = m::consumer_group_heartbeat_response::Assignment::default();
                x.topic_partitions = a
                    .iter()
                    .map(|(id, ps)| {
                        let mut t =
                            m::consumer_group_heartbeat_response::TopicPartitions::default();
                        t.topic_id = uuid::Uuid::from_bytes(id.0);
                        t.partitions = ps.clone();
                        t
                    })
                    .collect();
                x
            });
            o.encode(buf, v).map_err(e)
        }
        GroupResponse::ConsumerGroupDescribe(gs) => {
            let assignment = |a: &[(cohort_types::TopicId, String, Vec<i32>)]| {
                let mut x = m::consumer_group_describe_response::Assignment::default();
                x.topic_partitions = a
                    .iter()
                    .map(|(id, name, ps)| {
                        let mut t = m::consumer_group_describe_response::TopicPartitions::default();
                        t.topic_id = uuid::Uuid::from_bytes(id.0);
                        t.topic_name = TopicName(sb(name));
                        t.partitions = ps.clone();
                        t
                    })
                    .collect();
                x
            };
            let mut o = m::ConsumerGroupDescribeResponse::default();
            o.groups = gs
                .iter()
                .map(|g| {
                    let mut x = m::consumer_group_describe_response::DescribedGroup::default();
                    x.error_code = g.error.0;
                    x.error_message = osb(&g.error_message);
                    x.group_id = GroupId(sb(&g.group_id));
                    x.group_state = sb(&g.state);
                    x.group_epoch = g.epoch;
                    x.assignment_epoch = g.assignment_epoch;
                    x.assignor_name = sb(&g.assignor_name);
                    x.authorized_operations = i32::MIN;
                    x.members = g
                        .members
                        .iter()
                        .map(|mm| {
                            let mut y = m::consumer_group_describe_response::Member::default();
                            y.member_id = sb(&mm.member_id);
                            y.instance_id = osb(&mm.instance_id);
                            y.rack_id = osb(&mm.rack_id);
                            y.member_epoch = mm.member_epoch;
                            y.client_id = sb(&mm.client_id);
                            y.client_host = sb(&mm.client_host);
                            y.subscribed_topic_names = mm
                                .subscribed_topic_names
                                .iter()
                                .map(|n| TopicName(sb(n)))
                                .collect();
                            y.subscribed_topic_regex = osb(&mm.subscribed_topic_regex);
                            y.assignment = assignment(&mm.assignment);
                            y.target_assignment = assignment(&mm.target_assignment);
                            // KIP-1099 (v1): 0 classic, 1 consumer protocol.
                            y.member_type = if mm.classic { 0 } else { 1 };
                            y
                        })
                        .collect();
                    x
                })
                .collect();
            o.encode(buf, v).map_err(e)
        }
        GroupResponse::ListGroups(l) => {
            let mut o = m::ListGroupsResponse::default();
            o.error_code = l.error.0;
            o.groups = l
                .groups
                .iter()
                .map(|g| {
                    let mut x = m::list_groups_response::ListedGroup::default();
                    x.group_id = GroupId(sb(&g.group_id));
                    x.protocol_type = sb(&g.protocol_type);
                    x.group_state = sb(&g.state);
                    x.group_type = sb(&g.group_type);
                    x
                })
                .collect();
            o.encode(buf, v).map_err(e)
        }
        GroupResponse::DescribeGroups(gs) => {
            let mut o = m::DescribeGroupsResponse::default();
            o.groups = gs
                .iter()
                .map(|g| {
                    let mut x = m::describe_groups_response::DescribedGroup::default();
                    // Before v6 a group that cannot be described is only "Dead".
                    if g.error == ErrorCode::GROUP_ID_NOT_FOUND && v < 6 {
                        x.error_code = 0;
                    } else {
                        x.error_code = g.error.0;
                        if v >= 6 {
                            x.error_message = osb(&g.error_message);
                        }
                    }
                    x.group_id = GroupId(sb(&g.group_id));
                    x.group_state = sb(&g.state);
                    x.protocol_type = sb(&g.protocol_type);
                    x.protocol_data = sb(&g.protocol_data);
                    x.authorized_operations = i32::MIN;
                    x.members = g
                        .members
                        .iter()
                        .map(|mm| {
                            let mut y =
                                m::describe_groups_response::DescribedGroupMember::default();
                            y.member_id = sb(&mm.member_id);
                            y.group_instance_id = osb(&mm.group_instance_id);
                            y.client_id = sb(&mm.client_id);
                            y.client_host = sb(&mm.client_host);
                            y.member_metadata = mm.metadata.clone();
                            y.member_assignment = mm.assignment.clone();
                            y
                        })
                        .collect();
                    x
                })
                .collect();
            o.encode(buf, v).map_err(e)
        }
        GroupResponse::DeleteGroups(rs) => {
            let mut o = m::DeleteGroupsResponse::default();
            o.results = rs
                .iter()
                .map(|(g, code)| {
                    let mut x = m::delete_groups_response::DeletableGroupResult::default();
                    x.group_id = GroupId(sb(g));
                    x.error_code = code.0;
                    x
                })
                .collect();
            o.encode(buf, v).map_err(e)
        }
        GroupResponse::OffsetDelete(od) => {
            let mut o = m::OffsetDeleteResponse::default();
            o.error_code = od.error.0;
            o.topics = by_topic(&od.partitions)
                .into_iter()
                .map(|(t, ps)| {
                    let mut x = m::offset_delete_response::OffsetDeleteResponseTopic::default();
                    x.name = TopicName(sb(&t));
                    x.partitions = ps
                        .into_iter()
                        .map(|(p, code)| {
                            let mut y =
                                m::offset_delete_response::OffsetDeleteResponsePartition::default();
                            y.partition_index = p;
                            y.error_code = code.0;
                            y
                        })
                        .collect();
                    x
                })
                .collect();
            o.encode(buf, v).map_err(e)
        }
    }
}

fn offset_fetch(groups: &[GroupOffsets], v: i16, buf: &mut bytes::BytesMut) -> Result<(), String> {
    let mut o = m::OffsetFetchResponse::default();
    let items = |g: &GroupOffsets| -> Vec<(TopicPartition, FetchedOffset)> {
        g.partitions
            .iter()
            .map(|p| (p.partition.clone(), p.clone()))
            .collect()
    };
    if v <= 7 {
        let g = groups.first().ok_or("no group in answer")?;
        // v1 has no top-level error: a group error goes on every partition.
        o.error_code = g.error.0;
        o.topics = by_topic(&items(g))
            .into_iter()
            .map(|(t, ps)| {
                let mut x = m::offset_fetch_response::OffsetFetchResponseTopic::default();
                x.name = TopicName(sb(&t));
                x.partitions = ps
                    .into_iter()
                    .map(|(p, f)| {
                        let mut y =
                            m::offset_fetch_response::OffsetFetchResponsePartition::default();
                        y.partition_index = p;
                        y.committed_offset = f.offset;
                        y.committed_leader_epoch = f.leader_epoch;
                        y.metadata = osb(&f.metadata);
                        y.error_code = if v < 2 && g.error != ErrorCode::NONE {
                            g.error.0
                        } else {
                            f.error.0
                        };
                        y
                    })
                    .collect();
                x
            })
            .collect();
    } else {
        o.groups = groups
            .iter()
            .map(|g| {
                let mut x = m::offset_fetch_response::OffsetFetchResponseGroup::default();
                x.group_id = GroupId(sb(&g.group_id));
                x.error_code = g.error.0;
                x.topics = by_topic(&items(g))
                    .into_iter()
                    .map(|(t, ps)| {
                        let mut y = m::offset_fetch_response::OffsetFetchResponseTopics::default();
                        y.name = TopicName(sb(&t));
                        y.partitions = ps
                            .into_iter()
                            .map(|(p, f)| {
                                let mut z = m::offset_fetch_response::OffsetFetchResponsePartitions::default();
                                z.partition_index = p;
                                z.committed_offset = f.offset;
                                z.committed_leader_epoch = f.leader_epoch;
                                z.metadata = osb(&f.metadata);
                                z.error_code = f.error.0;
                                z
                            })
                            .collect();
                        y
                    })
                    .collect();
                x
            })
            .collect();
    }
    o.encode(buf, v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use crate::{encode_response, RequestHeader};
    use cohort_types::api::Response;
    use cohort_types::group::*;
    use cohort_types::{ErrorCode, TopicId};
    use kafka_protocol::messages::{self as m, ApiKey};
    use kafka_protocol::protocol::Decodable;

    /// KIP-1099: ConsumerGroupDescribe v1 says which members of a mixed group
    /// still speak the classic protocol.
    #[test]
    fn consumer_group_describe_v1_marks_classic_members() {
        let member = |id: &str, classic| DescribedConsumerMember {
            member_id: id.into(),
            instance_id: None,
            rack_id: None,
            member_epoch: 3,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: vec!["t".into()],
            subscribed_topic_regex: None,
            assignment: vec![(TopicId([1; 16]), "t".into(), vec![0])],
            target_assignment: vec![],
            classic,
        };
        let group = DescribedConsumerGroup {
            members: vec![member("old", true), member("new", false)],
            ..DescribedConsumerGroup::error("g", ErrorCode::NONE)
        };
        let header = RequestHeader {
            api_key: ApiKey::ConsumerGroupDescribe as i16,
            api_version: 1,
            correlation_id: 7,
            client_id: None,
        };
        let frame = encode_response(
            &header,
            &Response::Group(GroupResponse::ConsumerGroupDescribe(vec![group])),
        )
        .unwrap();
        let mut body = frame.slice(4..);
        m::ResponseHeader::decode(&mut body, 1).unwrap();
        let r = m::ConsumerGroupDescribeResponse::decode(&mut body, 1).unwrap();
        let types: Vec<i8> = r.groups[0].members.iter().map(|m| m.member_type).collect();
        assert_eq!(types, vec![0, 1]);
    }
}
