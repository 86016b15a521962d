//! The layouts Kafka 4.4 speaks that `kafka-protocol` 0.18 does not know,
//! written by hand (server half; the sweep's client half is `newer_client`).
//! Each differs from the version before it in a few fields:
//!
//! * ApiVersions v5 request: adds `cluster_id` and `node_id` (KIP-1102), so a
//!   client can notice it reached a different cluster or broker than it meant.
//! * OffsetCommit v10 and OffsetFetch v10: topics are named by id, not name
//!   (KIP-848's topic ids), in requests and answers.
//! * DescribeLogDirs v5 answer: adds `is_cordoned` per log directory (KIP-1066).
//! * DeleteGroups v3 answer: adds a nullable `error_message` per group.
//!
//! Golden bytes written by Kafka 4.4's own message classes pin every layout
//! (tests below).

use crate::wire::{Reader, Result, Writer};
use bytes::{Bytes, BytesMut};
use cohort_types::api::{LogDirDescription, UnknownTopicId};
use cohort_types::group::*;
use cohort_types::{ErrorCode, TopicId, TopicPartition};
use std::collections::HashMap;

/// What an ApiVersions v5 request says beyond v4.
#[derive(Debug, PartialEq)]
pub struct ApiVersionsV5 {
    pub client_software_name: String,
    pub client_software_version: String,
    pub cluster_id: Option<String>,
    pub node_id: i32,
}

pub fn api_versions_request(r: &mut Reader) -> Result<ApiVersionsV5> {
    let out = ApiVersionsV5 {
        client_software_name: r.string()?,
        client_software_version: r.string()?,
        cluster_id: r.nullable_string()?,
        node_id: r.i32()?,
    };
    r.tags()?;
    Ok(out)
}

/// OffsetCommit v10: the request with every topic name empty, and one topic
/// id per offset, in order.
pub fn offset_commit_request(r: &mut Reader) -> Result<(OffsetCommitRequest, Vec<TopicId>)> {
    let group_id = r.string()?;
    let generation_id = r.i32()?;
    let member_id = r.string()?;
    let group_instance_id = r.nullable_string()?;
    let mut offsets = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..r.array()? {
        let id = TopicId(r.uuid()?);
        for _ in 0..r.array()? {
            let partition = r.i32()?;
            offsets.push(OffsetToCommit {
                partition: TopicPartition::new("", partition),
                offset: r.i64()?,
                leader_epoch: r.i32()?,
                metadata: r.nullable_string()?,
                unknown_partition: false,
            });
            ids.push(id);
            r.tags()?;
        }
        r.tags()?;
    }
    r.tags()?;
    let request = OffsetCommitRequest {
        group_id,
        generation_id,
        member_id,
        group_instance_id,
        retention_ms: -1,
        offsets,
        group_id_not_found_supported: true,
    };
    Ok((request, ids))
}

/// OffsetFetch v10: the request with every topic name empty, and one topic id
/// per partition named, group by group, in order.
pub fn offset_fetch_request(r: &mut Reader) -> Result<(OffsetFetchRequest, Vec<TopicId>)> {
    let mut groups = Vec::new();
    let mut members = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..r.array()? {
        let group_id = r.string()?;
        let member_id = r.nullable_string()?;
        let member_epoch = r.i32()?;
        members.push(member_id.map(|m| (m, member_epoch)));
        let topics = match r.nullable_array()? {
            None => None,
            Some(n) => {
                let mut partitions = Vec::new();
                for _ in 0..n {
                    let id = TopicId(r.uuid()?);
                    for _ in 0..r.array()? {
                        partitions.push(TopicPartition::new("", r.i32()?));
                        ids.push(id);
                    }
                    r.tags()?;
                }
                Some(partitions)
            }
        };
        r.tags()?;
        groups.push((group_id, topics));
    }
    let require_stable = r.bool()?;
    r.tags()?;
    Ok((
        OffsetFetchRequest {
            groups,
            require_stable,
            members,
        },
        ids,
    ))
}

/// Partitions grouped by topic id, first-seen order.
fn by_id<T: Clone>(
    items: impl IntoIterator<Item = (TopicId, i32, T)>,
) -> Vec<(TopicId, Vec<(i32, T)>)> {
    let mut out: Vec<(TopicId, Vec<(i32, T)>)> = Vec::new();
    for (id, p, x) in items {
        match out.iter_mut().find(|(t, _)| *t == id) {
            Some((_, v)) => v.push((p, x)),
            None => out.push((id, vec![(p, x)])),
        }
    }
    out
}

/// OffsetCommit v10's answer: the coordinator's per-partition errors under
/// their topics' ids, then the ids no topic has.
pub fn offset_commit_response(
    results: &[(TopicPartition, ErrorCode)],
    ids: &HashMap<String, TopicId>,
    unknown: &[UnknownTopicId],
    buf: &mut BytesMut,
) -> Result<()> {
    let mut items = Vec::new();
    for (tp, code) in results {
        let id = ids
            .get(&tp.topic)
            .ok_or_else(|| format!("no id for topic {}", tp.topic))?;
        items.push((*id, tp.partition, *code));
    }
    for u in unknown {
        items.extend(
            u.partitions
                .iter()
                .map(|&p| (u.topic_id, p, ErrorCode::UNKNOWN_TOPIC_ID)),
        );
    }
    let mut w = Writer::new(buf);
    w.i32(0); // throttle
    let topics = by_id(items);
    w.array(Some(topics.len()));
    for (id, partitions) in &topics {
        w.uuid(&id.0);
        w.array(Some(partitions.len()));
        for (p, code) in partitions {
            w.i32(*p);
            w.i16(code.0);
            w.tags(None);
        }
        w.tags(None);
    }
    w.tags(None);
    Ok(())
}

/// OffsetFetch v10's answer. A committed topic that no longer has an id (it
/// was deleted) is left out, as Kafka leaves it out; the ids no topic has
/// answer UNKNOWN_TOPIC_ID after the group's other topics.
pub fn offset_fetch_response(
    groups: &[GroupOffsets],
    ids: &HashMap<String, TopicId>,
    unknown: &[UnknownTopicId],
    buf: &mut BytesMut,
) -> Result<()> {
    let mut w = Writer::new(buf);
    w.i32(0); // throttle
    w.array(Some(groups.len()));
    for (index, g) in groups.iter().enumerate() {
        w.string(&g.group_id);
        let mut items: Vec<(TopicId, i32, (i64, i32, Option<String>, ErrorCode))> = g
            .partitions
            .iter()
            .filter_map(|f| {
                let id = ids.get(&f.partition.topic)?;
                Some((
                    *id,
                    f.partition.partition,
                    (f.offset, f.leader_epoch, f.metadata.clone(), f.error),
                ))
            })
            .collect();
        for u in unknown.iter().filter(|u| u.group == index) {
            items.extend(u.partitions.iter().map(|&p| {
                (
                    u.topic_id,
                    p,
                    (-1, -1, Some(String::new()), ErrorCode::UNKNOWN_TOPIC_ID),
                )
            }));
        }
        let topics = by_id(items);
        w.array(Some(topics.len()));
        for (id, partitions) in &topics {
            w.uuid(&id.0);
            w.array(Some(partitions.len()));
            for (p, (offset, epoch, metadata, code)) in partitions {
                w.i32(*p);
                w.i64(*offset);
                w.i32(*epoch);
                w.nullable_string(metadata.as_deref());
                w.i16(code.0);
                w.tags(None);
            }
            w.tags(None);
        }
        w.i16(g.error.0);
        w.tags(None);
    }
    w.tags(None);
    Ok(())
}

/// DescribeLogDirs v5's answer: v4 with `is_cordoned` (Cohort never cordons
/// its one log directory).
pub fn describe_log_dirs_response(r: &LogDirDescription, buf: &mut BytesMut) {
    let mut w = Writer::new(buf);
    w.i32(0); // throttle
    w.i16(0); // top-level error
    w.array(Some(1));
    w.i16(r.error.0);
    w.string(&r.path);
    w.array(Some(r.topics.len()));
    for (name, partitions) in &r.topics {
        w.string(name);
        w.array(Some(partitions.len()));
        for &(index, size) in partitions {
            w.i32(index);
            w.i64(size);
            w.i64(0); // offset lag: no future replica
            w.bool(false); // is future key
            w.tags(None);
        }
        w.tags(None);
    }
    w.i64(r.total_bytes);
    w.i64(r.usable_bytes);
    w.bool(false); // is cordoned
    w.tags(None);
    w.tags(None);
}

/// DeleteGroups v3's answer: v2 with an error message per group. Kafka sets
/// one only for streams groups, which Cohort does not have: always null.
pub fn delete_groups_response(results: &[(String, ErrorCode)], buf: &mut BytesMut) {
    let mut w = Writer::new(buf);
    w.i32(0); // throttle
    w.array(Some(results.len()));
    for (group, code) in results {
        w.string(group);
        w.i16(code.0);
        w.nullable_string(None);
        w.tags(None);
    }
    w.tags(None);
}

/// Writes a hand-laid answer (see `versions::hand_response`).
pub fn encode(
    response: &cohort_types::api::Response,
    key: kafka_protocol::messages::ApiKey,
    buf: &mut BytesMut,
) -> Result<()> {
    use cohort_types::api::Response as R;
    match response {
        R::GroupByTopicId {
            response: GroupResponse::OffsetCommit(results),
            ids,
            unknown,
        } => offset_commit_response(results, ids, unknown, buf),
        R::GroupByTopicId {
            response: GroupResponse::OffsetFetch(groups),
            ids,
            unknown,
        } => offset_fetch_response(groups, ids, unknown, buf),
        R::DescribeLogDirs(r) => {
            describe_log_dirs_response(r, buf);
            Ok(())
        }
        R::Group(GroupResponse::DeleteGroups(results)) => {
            delete_groups_response(results, buf);
            Ok(())
        }
        _ => Err(format!("no hand layout answers {key:?} with this response")),
    }
}

/// Reads a request body with `f`. Bytes after it are ignored, as for every
/// other request (see `decode::body`).
pub fn read_body<T>(mut body: Bytes, f: impl FnOnce(&mut Reader) -> Result<T>) -> Result<T> {
    f(&mut Reader::new(&mut body))
}

#[cfg(test)]
mod tests;
