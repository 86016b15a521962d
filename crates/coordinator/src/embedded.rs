//! The consumer protocol embedded in classic groups: the subscription a
//! member sends in its JoinGroup metadata and the assignment SyncGroup hands
//! it (Kafka's ConsumerProtocolSubscription and ConsumerProtocolAssignment,
//! versions 0-3). The coordinator reads them only to move a group between
//! the classic and the consumer protocol, and writes an assignment only for
//! a classic member of a consumer group, whose partitions the broker picks.
//!
//! Layout (big-endian, never flexible): a version (i16), then
//! - subscription: topics ([string]), user data (nullable bytes); v1+ owned
//!   partitions ([topic string, [i32]]); v2+ generation (i32); v3+ rack
//!   (nullable string);
//! - assignment: partitions ([topic string, [i32]]), user data (nullable bytes).
//!
//! A version newer than 3 is read as 3, as Kafka does: later versions only
//! append fields.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub version: i16,
    pub topics: Vec<String>,
    pub user_data: Option<Vec<u8>>,
    pub owned: Vec<(String, Vec<i32>)>,
    pub generation: i32,
    pub rack: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Assignment {
    pub partitions: Vec<(String, Vec<i32>)>,
    pub user_data: Option<Vec<u8>>,
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len());
        let end = end
            .ok_or_else(|| format!("ends at byte {} inside a field of {n} bytes", self.b.len()))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn nullable_string(&mut self) -> Result<Option<String>, String> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        let s = self.take(n as usize)?;
        String::from_utf8(s.to_vec())
            .map(Some)
            .map_err(|_| "a string that is not UTF-8".to_string())
    }
    fn string(&mut self) -> Result<String, String> {
        self.nullable_string()?
            .ok_or_else(|| "a null string".to_string())
    }
    fn nullable_bytes(&mut self) -> Result<Option<Vec<u8>>, String> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(n as usize)?.to_vec()))
    }
    /// An array's length: a negative one (null) reads as empty.
    fn count(&mut self) -> Result<usize, String> {
        let n = self.i32()?;
        // Each element takes at least two bytes: a longer count is a lie.
        if n > 0 && n as usize > (self.b.len() - self.at) / 2 + 1 {
            return Err(format!(
                "an array of {n} elements in {} bytes",
                self.b.len() - self.at
            ));
        }
        Ok(n.max(0) as usize)
    }
    fn topic_partitions(&mut self) -> Result<Vec<(String, Vec<i32>)>, String> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let topic = self.string()?;
            let k = self.count()?;
            let mut ps = Vec::with_capacity(k);
            for _ in 0..k {
                ps.push(self.i32()?);
            }
            out.push((topic, ps));
        }
        Ok(out)
    }
}

fn version(r: &mut Reader) -> Result<i16, String> {
    let v = r.i16()?;
    if v < 0 {
        return Err(format!("version {v}"));
    }
    Ok(v)
}

pub fn parse_subscription(b: &[u8]) -> Result<Subscription, String> {
    let mut r = Reader { b, at: 0 };
    let v = version(&mut r)?;
    let n = r.count()?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        topics.push(r.string()?);
    }
    let user_data = r.nullable_bytes()?;
    let owned = if v >= 1 {
        r.topic_partitions()?
    } else {
        vec![]
    };
    let generation = if v >= 2 { r.i32()? } else { -1 };
    let rack = if v >= 3 { r.nullable_string()? } else { None };
    Ok(Subscription {
        version: v,
        topics,
        user_data,
        owned,
        generation,
        rack,
    })
}

/// A member that never synced has no assignment bytes: nothing assigned.
pub fn parse_assignment(b: &[u8]) -> Result<Assignment, String> {
    if b.is_empty() {
        return Ok(Assignment::default());
    }
    let mut r = Reader { b, at: 0 };
    version(&mut r)?;
    let partitions = r.topic_partitions()?;
    let user_data = r.nullable_bytes()?;
    Ok(Assignment {
        partitions,
        user_data,
    })
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_topic_partitions(out: &mut Vec<u8>, tps: &[(String, Vec<i32>)]) {
    out.extend_from_slice(&(tps.len() as i32).to_be_bytes());
    for (t, ps) in tps {
        put_string(out, t);
        out.extend_from_slice(&(ps.len() as i32).to_be_bytes());
        for p in ps {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
}

/// An assignment at `version` (the member's subscription version, capped at
/// 3, as Kafka answers), without user data.
pub fn write_assignment(version: i16, partitions: &[(String, Vec<i32>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&version.clamp(0, 3).to_be_bytes());
    put_topic_partitions(&mut out, partitions);
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out
}

/// A subscription at `version` (what a client sends; the simulator and tests
/// build members with it).
pub fn write_subscription(s: &Subscription) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&s.version.to_be_bytes());
    out.extend_from_slice(&(s.topics.len() as i32).to_be_bytes());
    for t in &s.topics {
        put_string(&mut out, t);
    }
    match &s.user_data {
        Some(u) => {
            out.extend_from_slice(&(u.len() as i32).to_be_bytes());
            out.extend_from_slice(u);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
    if s.version >= 1 {
        put_topic_partitions(&mut out, &s.owned);
    }
    if s.version >= 2 {
        out.extend_from_slice(&s.generation.to_be_bytes());
    }
    if s.version >= 3 {
        match &s.rack {
            Some(r) => put_string(&mut out, r),
            None => out.extend_from_slice(&(-1i16).to_be_bytes()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(version: i16) -> Subscription {
        Subscription {
            version,
            topics: vec!["a".into(), "b".into()],
            user_data: Some(vec![0, 0, 0, 7]),
            owned: if version >= 1 {
                vec![("a".into(), vec![0, 2])]
            } else {
                vec![]
            },
            generation: if version >= 2 { 5 } else { -1 },
            rack: if version >= 3 {
                Some("r1".into())
            } else {
                None
            },
        }
    }

    #[test]
    fn subscriptions_of_every_version_round_trip() {
        for v in 0..=3 {
            let s = sample(v);
            assert_eq!(
                parse_subscription(&write_subscription(&s)).unwrap(),
                s,
                "version {v}"
            );
        }
    }

    #[test]
    fn a_newer_version_is_read_as_the_newest_known() {
        let mut b = write_subscription(&sample(3));
        b[1] = 9;
        b.extend_from_slice(&[1, 2, 3]); // fields a later version appends
        let s = parse_subscription(&b).unwrap();
        assert_eq!((s.version, s.rack.as_deref()), (9, Some("r1")));
    }

    #[test]
    fn assignments_round_trip_and_empty_bytes_mean_nothing_assigned() {
        let parts = vec![("a".to_string(), vec![1, 3]), ("b".to_string(), vec![])];
        for v in 0..=3 {
            let a = parse_assignment(&write_assignment(v, &parts)).unwrap();
            assert_eq!(
                a,
                Assignment {
                    partitions: parts.clone(),
                    user_data: None
                }
            );
        }
        assert_eq!(parse_assignment(&[]).unwrap(), Assignment::default());
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_panic() {
        let good = write_subscription(&sample(3));
        for cut in 0..good.len() {
            assert!(parse_subscription(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(
            parse_subscription(&[0xff, 0xff, 0, 0, 0, 0]).is_err(),
            "negative version"
        );
        assert!(
            parse_subscription(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_err(),
            "huge count"
        );
        let a = write_assignment(0, &[("t".into(), vec![1])]);
        for cut in 1..a.len() {
            assert!(parse_assignment(&a[..cut]).is_err(), "cut at {cut}");
        }
    }
}
