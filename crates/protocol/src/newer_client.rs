//! The sweep's client half of `newer`: requests at the versions the codec does
//! not know, and strict readers of their answers.

use crate::sweep::{Answer, Target};
use crate::wire::{read, Reader, Result, Writer};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

/// The unknown tagged field every sweep request carries at the top level.
const FUTURE: Option<(u32, &[u8])> = Some((9_999, b"from-the-future"));

/// An ApiVersions v5 body.
pub fn api_versions_v5(name: &str, version: &str, cluster_id: Option<&str>, node_id: i32) -> Bytes {
    let mut buf = BytesMut::new();
    let mut w = Writer::new(&mut buf);
    w.string(name);
    w.string(version);
    w.nullable_string(cluster_id);
    w.i32(node_id);
    w.tags(FUTURE);
    buf.freeze()
}

/// An OffsetCommit v10 body: one offset per (topic id, partition, offset), as
/// a simple commit (no generation, no member) unless a member is given.
pub fn offset_commit_v10(
    group: &str,
    member: Option<(&str, i32)>,
    offsets: &[([u8; 16], i32, i64)],
) -> Bytes {
    let mut buf = BytesMut::new();
    let mut w = Writer::new(&mut buf);
    w.string(group);
    w.i32(member.map_or(-1, |m| m.1));
    w.string(member.map_or("", |m| m.0));
    w.nullable_string(None);
    w.array(Some(offsets.len()));
    for (id, partition, offset) in offsets {
        w.uuid(id);
        w.array(Some(1));
        w.i32(*partition);
        w.i64(*offset);
        w.i32(0); // leader epoch
        w.nullable_string(Some("sweep"));
        w.tags(None);
        w.tags(None);
    }
    w.tags(FUTURE);
    buf.freeze()
}

/// An OffsetFetch v10 body: per group, None for everything it committed, or
/// (topic id, partitions) to ask for.
pub fn offset_fetch_v10(groups: &[(&str, Option<Vec<([u8; 16], Vec<i32>)>>)]) -> Bytes {
    let mut buf = BytesMut::new();
    let mut w = Writer::new(&mut buf);
    w.array(Some(groups.len()));
    for (group, topics) in groups {
        w.string(group);
        w.nullable_string(None); // member id
        w.i32(-1); // member epoch
        w.array(topics.as_ref().map(|t| t.len()));
        for (id, partitions) in topics.iter().flatten() {
            w.uuid(id);
            w.array(Some(partitions.len()));
            for p in partitions {
                w.i32(*p);
            }
            w.tags(None);
        }
        w.tags(None);
    }
    w.bool(true); // require stable
    w.tags(FUTURE);
    buf.freeze()
}

/// The sweep's request body at a hand-laid version.
pub fn request_body(key: ApiKey, v: i16, t: &Target) -> Result<Bytes> {
    let group = format!("{}-{}-{v}", t.group, key as i16);
    Ok(match key {
        ApiKey::ApiVersions => api_versions_v5("cohort-sweep", "1.0", None, -1),
        ApiKey::OffsetCommit => offset_commit_v10(&group, None, &[(t.topic_id, 0, 0)]),
        ApiKey::OffsetFetch => offset_fetch_v10(&[
            (&group, Some(vec![(t.topic_id, vec![0, 1])])),
            (&format!("{group}-all"), None),
        ]),
        other => return Err(format!("{other:?} v{v} is not laid out by hand")),
    })
}

/// Reads a hand-laid answer strictly (every byte), as `sweep::check_response`.
pub fn check(key: ApiKey, body: Bytes) -> Result<Answer> {
    let mut a = Answer::default();
    match key {
        ApiKey::OffsetCommit => read(body, |r| {
            r.i32()?;
            for _ in 0..r.array()? {
                let id = r.uuid()?;
                for _ in 0..r.array()? {
                    let p = r.i32()?;
                    let e = r.i16()?;
                    r.tags()?;
                    a.data_errors.push(e);
                    a.offsets.push((String::new(), id, p, -1, e));
                }
                r.tags()?;
            }
            r.tags()
        })?,
        ApiKey::OffsetFetch => read(body, |r| {
            r.i32()?;
            for _ in 0..r.array()? {
                let group = r.string()?;
                for _ in 0..r.array()? {
                    let id = r.uuid()?;
                    for _ in 0..r.array()? {
                        let p = r.i32()?;
                        let offset = r.i64()?;
                        r.i32()?;
                        r.nullable_string()?;
                        let e = r.i16()?;
                        r.tags()?;
                        a.offsets.push((group.clone(), id, p, offset, e));
                    }
                    r.tags()?;
                }
                a.data_errors.push(r.i16()?);
                r.tags()?;
            }
            r.tags()
        })?,
        ApiKey::DescribeLogDirs => read(body, |r| {
            r.i32()?;
            a.data_errors.push(r.i16()?);
            let mut sweep_seen = false;
            for _ in 0..r.array()? {
                a.data_errors.push(r.i16()?);
                r.string()?;
                for _ in 0..r.array()? {
                    let name = r.string()?;
                    sweep_seen |= name == "sweep";
                    for _ in 0..r.array()? {
                        let p = r.i32()?;
                        let size = r.i64()?;
                        r.i64()?;
                        r.bool()?;
                        r.tags()?;
                        a.log_dir_sizes.push((name.clone(), p, size));
                    }
                    r.tags()?;
                }
                r.i64()?;
                r.i64()?;
                if r.bool()? {
                    return Err("a log directory is cordoned".into());
                }
                r.tags()?;
            }
            if !sweep_seen {
                a.data_errors.push(-1);
            }
            r.tags()
        })?,
        ApiKey::DeleteGroups => read(body, |r: &mut Reader| {
            r.i32()?;
            for _ in 0..r.array()? {
                let group = r.string()?;
                let e = r.i16()?;
                let message = r.nullable_string()?;
                r.tags()?;
                a.groups.push((group, e, message, String::new()));
            }
            r.tags()
        })?,
        other => return Err(format!("{other:?} answers are not laid out by hand")),
    }
    Ok(a)
}
