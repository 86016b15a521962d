//! Broker settings. The binary fills these from flags and environment; tests fill
//! them directly.

use std::path::PathBuf;
use std::time::Duration;

/// When appended data is made durable, and when produce is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// acks=1 and acks=-1 are answered only once the batch is on disk; one fsync
    /// covers every batch appended while the previous one ran (group commit).
    /// Consumers see only records that are on disk.
    Always,
    /// Data is synced every interval; produce is answered at once and consumers
    /// see records as soon as they are appended. A crash can lose up to one
    /// interval of acknowledged records.
    Interval(Duration),
    /// Never synced except at clean shutdown; a machine crash can lose anything
    /// the operating system had not yet written back.
    Never,
}

impl FsyncPolicy {
    pub fn parse(s: &str) -> Result<FsyncPolicy, String> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            other => {
                let ms = other
                    .strip_prefix("interval:")
                    .and_then(|v| v.strip_suffix("ms").unwrap_or(v).parse::<u64>().ok())
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| {
                        format!(
                            "fsync policy must be always, never or interval:<ms>, not {other:?}"
                        )
                    })?;
                Ok(FsyncPolicy::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsyncPolicy::Always => write!(f, "always"),
            FsyncPolicy::Never => write!(f, "never"),
            FsyncPolicy::Interval(d) => write!(f, "interval:{}ms", d.as_millis()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub listen: String,
    /// host:port clients are told to connect to.
    pub advertise: String,
    pub data_dir: PathBuf,
    pub fsync: FsyncPolicy,
    pub max_request_size: usize,
    pub auto_create_topics: bool,
    /// Partitions for auto-created topics and CreateTopics with -1 (num.partitions).
    pub default_partitions: i32,
    /// The most partitions this broker holds; creating more is refused with
    /// POLICY_VIOLATION.
    pub max_partitions: usize,
    /// log.retention.ms; -1 keeps forever.
    pub retention_ms: i64,
    /// log.retention.bytes per partition; -1 means no limit.
    pub retention_bytes: i64,
    pub segment_bytes: u64,
    pub segment_ms: i64,
    /// log.message.timestamp.before.max.ms: how far in the past a produced
    /// record's timestamp may be (Kafka 4 default: unbounded).
    pub message_timestamp_before_max_ms: i64,
    /// log.message.timestamp.after.max.ms: how far in the future (Kafka 4
    /// default: one hour).
    pub message_timestamp_after_max_ms: i64,
    pub retention_check_interval: Duration,
    /// How long the log cleaner rests between passes (log.cleaner.backoff.ms).
    pub log_cleaner_backoff: Duration,
    /// Key bytes one cleaning pass may hold in its offset map
    /// (log.cleaner.dedupe.buffer.size).
    pub log_cleaner_dedupe_buffer_size: usize,
    /// How often every log's recovery point is written to
    /// `meta/recovery-points` (Kafka's log.flush.offset.checkpoint.interval.ms).
    /// After a crash, only data written since can be cut as a torn tail.
    pub recovery_point_checkpoint_interval: Duration,
    /// Requests one connection may have in progress before the broker stops
    /// reading from it.
    pub max_in_flight_per_connection: usize,
    /// Bytes all connections' requests may hold in memory together, from the
    /// first byte read to the answer (queued.max.request.bytes); past it,
    /// connections stop reading. None: unbounded.
    pub queued_max_request_bytes: Option<usize>,
    /// A connection with nothing in flight and no traffic for this long is
    /// closed (connections.max.idle.ms).
    pub connections_max_idle: Duration,
    /// A request frame must arrive whole within this long of its first byte,
    /// or the connection is closed (a client that stalls mid-request holds
    /// nothing for long).
    pub frame_read_timeout: Duration,
    /// The group coordinator's settings (group.* and offsets.* configs).
    pub coordinator: cohort_coordinator::CoordinatorConfig,
    /// Rewrite the coordinator log as a snapshot once it holds this many
    /// records and more than twice the live state.
    pub coordinator_compact_after: usize,
}

impl BrokerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> BrokerConfig {
        BrokerConfig {
            node_id: 0,
            listen: "127.0.0.1:9092".into(),
            advertise: "127.0.0.1:9092".into(),
            data_dir: data_dir.into(),
            fsync: FsyncPolicy::Always,
            max_request_size: cohort_protocol::frame::DEFAULT_MAX_REQUEST_SIZE,
            auto_create_topics: true,
            default_partitions: 1,
            max_partitions: 200_000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            retention_check_interval: Duration::from_secs(300),
            log_cleaner_backoff: Duration::from_secs(15),
            log_cleaner_dedupe_buffer_size: 128 << 20,
            recovery_point_checkpoint_interval: Duration::from_secs(5),
            max_in_flight_per_connection: 32,
            queued_max_request_bytes: Some(512 << 20),
            connections_max_idle: Duration::from_secs(600),
            frame_read_timeout: Duration::from_secs(60),
            coordinator: cohort_coordinator::CoordinatorConfig::default(),
            coordinator_compact_after: 10_000,
        }
    }

    /// The advertised address split into host and port.
    pub fn advertised(&self) -> (String, i32) {
        match self.advertise.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_matches(|c| c == '[' || c == ']').to_string(),
                p.parse().unwrap_or(9092),
            ),
            None => (self.advertise.clone(), 9092),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policies_parse_and_print_back() {
        for s in ["always", "never", "interval:50ms"] {
            assert_eq!(FsyncPolicy::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            FsyncPolicy::parse("interval:5").unwrap(),
            FsyncPolicy::Interval(Duration::from_millis(5))
        );
        assert!(FsyncPolicy::parse("sometimes").is_err());
        assert!(FsyncPolicy::parse("interval:0").is_err());
    }
}
