//! Array-length guard. `kafka-protocol` 0.18 reserves `Vec::with_capacity(n)`
//! for an array's element count before decoding a single element, so a 60-byte
//! request claiming two billion elements asks for hundreds of gigabytes, and a
//! failed allocation aborts the whole broker (found by our fuzz target). Every
//! array element takes at least one byte on the wire, so a count larger than the
//! bytes left is impossible: this module walks each request body's layout (for
//! the versions we accept) and rejects such counts before the codec sees them.

pub struct Walker<'a> {
    data: &'a [u8],
    pos: usize,
    flexible: bool,
}

pub type Result<T> = std::result::Result<T, String>;

impl<'a> Walker<'a> {
    pub fn new(data: &'a [u8], flexible: bool) -> Walker<'a> {
        Walker {
            data,
            pos: 0,
            flexible,
        }
    }

    pub fn consumed(&self) -> usize {
        self.pos
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        if n > self.remaining() {
            return Err(format!(
                "field of {n} bytes at {} runs past the end",
                self.pos
            ));
        }
        self.pos += n;
        Ok(())
    }

    fn int(&mut self, n: usize) -> Result<i64> {
        let at = self.pos;
        self.skip(n)?;
        Ok(self.data[at..at + n]
            .iter()
            .fold(0i64, |acc, b| (acc << 8) | *b as i64))
    }

    fn uvarint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let b = self.int(1)? as u8;
            value |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    pub fn i8(&mut self) -> Result<()> {
        self.skip(1)
    }
    pub fn i16(&mut self) -> Result<()> {
        self.skip(2)
    }
    pub fn i32(&mut self) -> Result<()> {
        self.skip(4)
    }
    pub fn i64(&mut self) -> Result<()> {
        self.skip(8)
    }
    pub fn uuid(&mut self) -> Result<()> {
        self.skip(16)
    }

    /// A (nullable) string or bytes field.
    fn sized(&mut self, wide: bool) -> Result<()> {
        let len = if self.flexible {
            self.uvarint()? as i64 - 1
        } else if wide {
            (self.int(4)? as i32) as i64
        } else {
            (self.int(2)? as i16) as i64
        };
        // Kafka refuses any string longer than an i16 can count, compact ones
        // included ("string field had invalid length"): a member id or regex
        // of megabytes never reaches the coordinator.
        if !wide && len > i16::MAX as i64 {
            return Err(format!(
                "a string of {len} bytes at {}: longer than {}",
                self.pos,
                i16::MAX
            ));
        }
        if len > 0 {
            self.skip(len as usize)?;
        }
        Ok(())
    }

    pub fn string(&mut self) -> Result<()> {
        self.sized(false)
    }
    pub fn bytes(&mut self) -> Result<()> {
        self.sized(true)
    }

    /// Reads an array's element count (0 for null) and checks it can fit.
    pub fn array(&mut self) -> Result<usize> {
        let n = if self.flexible {
            (self.uvarint()? as i64 - 1).max(0) as u64
        } else {
            (self.int(4)? as i32).max(0) as u64
        };
        if n as usize > self.remaining() {
            return Err(format!(
                "array claims {n} elements with {} bytes left",
                self.remaining()
            ));
        }
        Ok(n as usize)
    }

    pub fn each(&mut self, mut element: impl FnMut(&mut Walker<'a>) -> Result<()>) -> Result<()> {
        for _ in 0..self.array()? {
            element(self)?;
        }
        Ok(())
    }

    /// A tagged-field section in which some tags are fields the codec knows:
    /// it reads those by their type, not by their declared size, so a size
    /// that disagrees with the type would make the codec read the rest of the
    /// request from other offsets than this walk did (and meet counts this
    /// walk never checked). Each known tag's walk must consume exactly its
    /// declared size.
    pub fn tags_known(
        &mut self,
        mut known: impl FnMut(u64, &mut Walker<'a>) -> Option<Result<()>>,
    ) -> Result<()> {
        if !self.flexible {
            return Ok(());
        }
        for _ in 0..self.uvarint()? {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let start = self.pos;
            self.skip(size)?;
            let mut field = Walker {
                data: &self.data[..start + size],
                pos: start,
                flexible: true,
            };
            if let Some(walked) = known(tag, &mut field) {
                walked.map_err(|e| format!("tagged field {tag} ({size} bytes declared): {e}"))?;
                if field.pos != start + size {
                    return Err(format!(
                        "tagged field {tag} declares {size} bytes, its type takes {}",
                        field.pos - start
                    ));
                }
            }
        }
        Ok(())
    }

    /// The tagged-field section that ends every structure of a flexible version.
    pub fn tags(&mut self) -> Result<()> {
        if !self.flexible {
            return Ok(());
        }
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.skip(size)?;
        }
        Ok(())
    }
}

/// Walks a request body for `api_key` at `version`; errors on an impossible
/// array count. Returns the bytes the layout covers.
pub fn check(api_key: i16, version: i16, body: &[u8]) -> Result<usize> {
    let v = version;
    let flexible = flexible_from(api_key).is_some_and(|f| v >= f);
    let mut w = Walker::new(body, flexible);
    match api_key {
        0 => produce(&mut w, v)?,
        1 => fetch(&mut w, v)?,
        2 => list_offsets(&mut w, v)?,
        3 => metadata(&mut w, v)?,
        10 => find_coordinator(&mut w, v)?,
        19 => create_topics(&mut w)?,
        20 => delete_topics(&mut w, v)?,
        22 => init_producer_id(&mut w, v)?,
        23 => offset_for_leader_epoch(&mut w, v)?,
        21 => delete_records(&mut w)?,
        35 | 61 => topics_and_partitions(&mut w)?,
        32 => describe_configs(&mut w, v)?,
        33 | 44 => alter_configs(&mut w, api_key == 44)?,
        37 => create_partitions(&mut w)?,
        60 => describe_cluster(&mut w, v)?,
        8..=16 | 42 | 47 | 68 | 69 => crate::guard_group::walk(&mut w, api_key, v)?,
        _ => return Ok(0),
    }
    Ok(w.consumed())
}

/// The first flexible version of each request we walk.
fn flexible_from(api_key: i16) -> Option<i16> {
    Some(match api_key {
        0 => 9,
        1 => 12,
        2 => 6,
        3 => 9,
        10 => 3,
        19 => 5,
        20 => 4,
        22 => 2,
        23 => 4,
        21 => 2,
        35 => 2,
        61 => 0,
        32 => 4,
        33 => 2,
        44 => 1,
        37 => 2,
        60 => 0,
        11 => 6,
        14 => 4,
        12 => 4,
        13 => 4,
        8 => 8,
        9 => 6,
        16 => 3,
        15 => 5,
        42 => 2,
        47 => i16::MAX,
        68 => 0,
        69 => 0,
        _ => return None,
    })
}

fn produce(w: &mut Walker, v: i16) -> Result<()> {
    w.string()?; // transactional id
    w.i16()?;
    w.i32()?;
    w.each(|w| {
        if v <= 12 {
            w.string()?;
        } else {
            w.uuid()?;
        }
        w.each(|w| {
            w.i32()?;
            w.bytes()?;
            w.tags()
        })?;
        w.tags()
    })?;
    w.tags()
}

fn fetch(w: &mut Walker, v: i16) -> Result<()> {
    if v <= 14 {
        w.i32()?; // replica id
    }
    w.i32()?; // max wait
    w.i32()?; // min bytes
    w.i32()?; // max bytes
    w.i8()?; // isolation level
    if v >= 7 {
        w.i32()?; // session id
        w.i32()?; // session epoch
    }
    w.each(|w| {
        if v <= 12 {
            w.string()?;
        } else {
            w.uuid()?;
        }
        w.each(|w| {
            w.i32()?;
            if v >= 9 {
                w.i32()?;
            }
            w.i64()?;
            if v >= 12 {
                w.i32()?;
            }
            if v >= 5 {
                w.i64()?;
            }
            w.i32()?;
            // replica directory id (v17+), high watermark (v18+)
            w.tags_known(|tag, f| match tag {
                0 if v >= 17 => Some(f.uuid()),
                1 if v >= 18 => Some(f.i64()),
                _ => None,
            })
        })?;
        w.tags()
    })?;
    if v >= 7 {
        w.each(|w| {
            if v <= 12 {
                w.string()?;
            } else {
                w.uuid()?;
            }
            w.each(|w| w.i32())?;
            w.tags()
        })?;
    }
    if v >= 11 {
        w.string()?; // rack id
    }
    // cluster id, replica state (v15+: replica id, epoch)
    w.tags_known(|tag, f| match tag {
        0 => Some(f.string()),
        1 if v >= 15 => Some(f.i32().and_then(|_| f.i64()).and_then(|_| f.tags())),
        _ => None,
    })
}

fn list_offsets(w: &mut Walker, v: i16) -> Result<()> {
    w.i32()?; // replica id
    if v >= 2 {
        w.i8()?;
    }
    w.each(|w| {
        w.string()?;
        w.each(|w| {
            w.i32()?;
            if v >= 4 {
                w.i32()?;
            }
            w.i64()?;
            w.tags()
        })?;
        w.tags()
    })?;
    if v >= 10 {
        w.i32()?;
    }
    w.tags()
}

fn metadata(w: &mut Walker, v: i16) -> Result<()> {
    w.each(|w| {
        if v >= 10 {
            w.uuid()?;
        }
        w.string()?;
        w.tags()
    })?;
    if v >= 4 {
        w.i8()?; // allow auto topic creation
    }
    if (8..=10).contains(&v) {
        w.i8()?; // include cluster authorized operations
    }
    if v >= 8 {
        w.i8()?; // include topic authorized operations
    }
    w.tags()
}

fn find_coordinator(w: &mut Walker, v: i16) -> Result<()> {
    if v <= 3 {
        w.string()?;
    }
    if v >= 1 {
        w.i8()?;
    }
    if v >= 4 {
        w.each(|w| w.string())?;
    }
    w.tags()
}

fn create_topics(w: &mut Walker) -> Result<()> {
    w.each(|w| {
        w.string()?;
        w.i32()?;
        w.i16()?;
        w.each(|w| {
            w.i32()?;
            w.each(|w| w.i32())?;
            w.tags()
        })?;
        w.each(|w| {
            w.string()?;
            w.string()?;
            w.tags()
        })?;
        w.tags()
    })?;
    w.i32()?; // timeout
    w.i8()?; // validate only
    w.tags()
}

fn delete_topics(w: &mut Walker, v: i16) -> Result<()> {
    if v >= 6 {
        w.each(|w| {
            w.string()?;
            w.uuid()?;
            w.tags()
        })?;
    } else {
        w.each(|w| w.string())?;
    }
    w.i32()?;
    w.tags()
}

fn init_producer_id(w: &mut Walker, v: i16) -> Result<()> {
    w.string()?;
    w.i32()?;
    if v >= 3 {
        w.i64()?;
        w.i16()?;
    }
    if v >= 6 {
        w.i8()?;
    }
    w.tags()
}

fn offset_for_leader_epoch(w: &mut Walker, v: i16) -> Result<()> {
    if v >= 3 {
        w.i32()?;
    }
    w.each(|w| {
        w.string()?;
        w.each(|w| {
            w.i32()?;
            w.i32()?;
            w.i32()?;
            w.tags()
        })?;
        w.tags()
    })?;
    w.tags()
}

fn describe_configs(w: &mut Walker, v: i16) -> Result<()> {
    w.each(|w| {
        w.i8()?;
        w.string()?;
        w.each(|w| w.string())?;
        w.tags()
    })?;
    w.i8()?; // include synonyms
    if v >= 3 {
        w.i8()?;
    }
    w.tags()
}

/// DescribeLogDirs (a nullable array) and DescribeProducers: topics, each
/// with partition numbers.
fn topics_and_partitions(w: &mut Walker) -> Result<()> {
    w.each(|w| {
        w.string()?;
        w.each(|w| w.i32())?;
        w.tags()
    })?;
    w.tags()
}

fn delete_records(w: &mut Walker) -> Result<()> {
    w.each(|w| {
        w.string()?;
        w.each(|w| {
            w.i32()?;
            w.i64()?;
            w.tags()
        })?;
        w.tags()
    })?;
    w.i32()?; // timeout
    w.tags()
}

/// AlterConfigs and IncrementalAlterConfigs (which adds an operation byte).
fn alter_configs(w: &mut Walker, incremental: bool) -> Result<()> {
    w.each(|w| {
        w.i8()?;
        w.string()?;
        w.each(|w| {
            w.string()?;
            if incremental {
                w.i8()?;
            }
            w.string()?; // value, nullable
            w.tags()
        })?;
        w.tags()
    })?;
    w.i8()?; // validate only
    w.tags()
}

fn create_partitions(w: &mut Walker) -> Result<()> {
    w.each(|w| {
        w.string()?;
        w.i32()?;
        w.each(|w| {
            w.each(|w| w.i32())?;
            w.tags()
        })?;
        w.tags()
    })?;
    w.i32()?;
    w.i8()?;
    w.tags()
}

fn describe_cluster(w: &mut Walker, v: i16) -> Result<()> {
    w.i8()?;
    if v >= 1 {
        w.i8()?;
    }
    if v >= 2 {
        w.i8()?;
    }
    w.tags()
}

#[cfg(test)]
mod tests;
