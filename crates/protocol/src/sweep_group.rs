//! The version sweep's group requests (see `sweep`). Each version uses its own
//! group, so no request depends on another's answer; the unknown member ids and
//! generations they carry get Kafka's errors, which must still encode.

use crate::sweep::Target;
use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn g(x: &str) -> GroupId {
    GroupId(s(x))
}

pub(crate) fn build(
    key: ApiKey,
    v: i16,
    group: &str,
    t: &Target,
    x: BTreeMap<i32, Bytes>,
) -> Result<RequestKind, String> {
    let topic = TopicName(s(&t.topic));
    Ok(match key {
        ApiKey::JoinGroup => {
            let mut p = join_group_request::JoinGroupRequestProtocol::default();
            p.name = s("range");
            p.metadata = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            let mut r = JoinGroupRequest::default();
            r.group_id = g(group);
            r.session_timeout_ms = 10_000;
            if v >= 1 {
                r.rebalance_timeout_ms = 10_000
            }
            // A member id the group never gave out: answered at once with
            // UNKNOWN_MEMBER_ID, at every version.
            r.member_id = s("never-given-out");
            if v >= 5 {
                r.group_instance_id = None
            }
            r.protocol_type = s("consumer");
            r.protocols = vec![p];
            if v >= 8 {
                r.reason = Some(s("sweep"))
            }
            r.unknown_tagged_fields = x;
            RequestKind::JoinGroup(r)
        }
        ApiKey::SyncGroup => {
            let mut a = sync_group_request::SyncGroupRequestAssignment::default();
            a.member_id = s("m");
            a.assignment = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            let mut r = SyncGroupRequest::default();
            r.group_id = g(group);
            r.generation_id = 1;
            r.member_id = s("m");
            if v >= 3 {
                r.group_instance_id = Some(s("instance-1"))
            }
            if v >= 5 {
                r.protocol_type = Some(s("consumer"));
                r.protocol_name = Some(s("range"))
            }
            r.assignments = vec![a];
            r.unknown_tagged_fields = x;
            RequestKind::SyncGroup(r)
        }
        ApiKey::Heartbeat => {
            let mut r = HeartbeatRequest::default();
            r.group_id = g(group);
            r.generation_id = 1;
            r.member_id = s("m");
            if v >= 3 {
                r.group_instance_id = Some(s("instance-1"))
            }
            r.unknown_tagged_fields = x;
            RequestKind::Heartbeat(r)
        }
        ApiKey::LeaveGroup => {
            let mut r = LeaveGroupRequest::default();
            r.group_id = g(group);
            if v <= 2 {
                r.member_id = s("m");
            } else {
                let mut m = leave_group_request::MemberIdentity::default();
                m.member_id = s("m");
                m.group_instance_id = Some(s("instance-1"));
                if v >= 5 {
                    m.reason = Some(s("sweep"))
                }
                r.members = vec![m];
            }
            r.unknown_tagged_fields = x;
            RequestKind::LeaveGroup(r)
        }
        ApiKey::OffsetCommit => {
            let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
            p.partition_index = 0;
            p.committed_offset = 0;
            if v >= 6 {
                p.committed_leader_epoch = 0
            }
            p.committed_metadata = Some(s("sweep"));
            let mut ct = offset_commit_request::OffsetCommitRequestTopic::default();
            ct.name = topic;
            ct.partitions = vec![p];
            let mut r = OffsetCommitRequest::default();
            r.group_id = g(group);
            // A simple (admin) commit: no generation, no member.
            r.generation_id_or_member_epoch = -1;
            r.member_id = s("");
            if v >= 7 {
                r.group_instance_id = None
            }
            if v <= 4 {
                r.retention_time_ms = -1
            }
            r.topics = vec![ct];
            r.unknown_tagged_fields = x;
            RequestKind::OffsetCommit(r)
        }
        ApiKey::OffsetFetch => {
            let mut r = OffsetFetchRequest::default();
            if v <= 7 {
                let mut ft = offset_fetch_request::OffsetFetchRequestTopic::default();
                ft.name = topic;
                ft.partition_indexes = vec![0, 1];
                r.group_id = g(group);
                r.topics = Some(vec![ft]);
            } else {
                let mut ft = offset_fetch_request::OffsetFetchRequestTopics::default();
                ft.name = topic;
                ft.partition_indexes = vec![0, 1];
                let mut one = offset_fetch_request::OffsetFetchRequestGroup::default();
                one.group_id = g(group);
                one.topics = Some(vec![ft]);
                if v >= 9 {
                    one.member_id = None;
                    one.member_epoch = -1
                }
                let mut all = offset_fetch_request::OffsetFetchRequestGroup::default();
                all.group_id = g(&format!("{group}-all"));
                all.topics = None;
                r.groups = vec![one, all];
            }
            if v >= 7 {
                r.require_stable = true
            }
            r.unknown_tagged_fields = x;
            RequestKind::OffsetFetch(r)
        }
        ApiKey::ListGroups => {
            let mut r = ListGroupsRequest::default();
            if v >= 4 {
                r.states_filter = vec![s("Stable"), s("Empty")]
            }
            if v >= 5 {
                r.types_filter = vec![s("classic"), s("consumer")]
            }
            r.unknown_tagged_fields = x;
            RequestKind::ListGroups(r)
        }
        ApiKey::DescribeGroups => {
            let mut r = DescribeGroupsRequest::default();
            r.groups = vec![g(group), g(&t.group)];
            if v >= 3 {
                r.include_authorized_operations = true
            }
            r.unknown_tagged_fields = x;
            RequestKind::DescribeGroups(r)
        }
        ApiKey::DeleteGroups => {
            let mut r = DeleteGroupsRequest::default();
            r.groups_names = vec![g(group)];
            r.unknown_tagged_fields = x;
            RequestKind::DeleteGroups(r)
        }
        ApiKey::OffsetDelete => {
            let mut p = offset_delete_request::OffsetDeleteRequestPartition::default();
            p.partition_index = 0;
            let mut dt = offset_delete_request::OffsetDeleteRequestTopic::default();
            dt.name = topic;
            dt.partitions = vec![p];
            let mut r = OffsetDeleteRequest::default();
            r.group_id = g(group);
            r.topics = vec![dt];
            RequestKind::OffsetDelete(r)
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let mut r = ConsumerGroupHeartbeatRequest::default();
            r.group_id = g(group);
            r.member_id = s("sweep-member-0123456789");
            r.member_epoch = 0;
            r.instance_id = Some(s("instance-1"));
            r.rack_id = Some(s("rack-a"));
            r.rebalance_timeout_ms = 10_000;
            if v >= 1 {
                r.subscribed_topic_regex = Some(s(&format!("{}.*", t.topic)));
            } else {
                r.subscribed_topic_names = Some(vec![topic]);
            }
            r.server_assignor = Some(s("uniform"));
            r.topic_partitions = Some(vec![]);
            r.unknown_tagged_fields = x;
            RequestKind::ConsumerGroupHeartbeat(r)
        }
        ApiKey::ConsumerGroupDescribe => {
            let mut r = ConsumerGroupDescribeRequest::default();
            r.group_ids = vec![g(group), g(&t.group)];
            r.include_authorized_operations = true;
            r.unknown_tagged_fields = x;
            RequestKind::ConsumerGroupDescribe(r)
        }
        other => return Err(format!("the sweep has no request for {other:?}")),
    })
}
