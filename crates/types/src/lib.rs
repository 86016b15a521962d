//! The vocabulary shared by every Cohort crate. No I/O, no wire encoding: the
//! `protocol` crate translates Kafka's wire messages into these types and back.

pub mod api;
pub mod error;
pub mod group;

pub use error::ErrorCode;

/// Milliseconds since the Unix epoch (or any fixed origin the driver chooses).
pub type Millis = i64;

/// A 128-bit topic id as Kafka uses it (Metadata v10+, Fetch v13+). The all-zero
/// id means "no id" on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    pub const ZERO: TopicId = TopicId([0; 16]);
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
    /// Kafka prints topic ids in URL-safe base64 without padding.
    pub fn to_base64(&self) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(22);
        let bytes = &self.0;
        let mut i = 0;
        while i + 3 <= bytes.len() {
            let n = (bytes[i] as u32) << 16 | (bytes[i + 1] as u32) << 8 | bytes[i + 2] as u32;
            for shift in [18, 12, 6, 0] {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            }
            i += 3;
        }
        // 16 bytes = 5 groups of 3 + 1 byte left.
        let n = (bytes[15] as u32) << 16;
        out.push(ALPHABET[((n >> 18) & 63) as usize] as char);
        out.push(ALPHABET[((n >> 12) & 63) as usize] as char);
        out
    }
}

impl std::fmt::Debug for TopicId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TopicId({})", self.to_base64())
    }
}

/// A topic and one of its partitions.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_id_base64_is_22_url_safe_chars() {
        let id = TopicId([0xff; 16]);
        assert_eq!(id.to_base64(), "_____________________w");
        assert_eq!(TopicId::ZERO.to_base64(), "AAAAAAAAAAAAAAAAAAAAAA");
    }
}
