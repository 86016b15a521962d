//! Kafka's topic configs: names, defaults, types, the broker config each falls
//! back to (its synonym), and the checks Kafka's LogConfig makes, with its
//! messages. The list is Apache Kafka 4.4's, as DescribeConfigs lists it.
//!
//! Cohort enforces cleanup.policy, retention.ms, retention.bytes, segment.bytes, segment.ms,
//! index.interval.bytes, max.message.bytes and the message.timestamp bounds,
//! and changes to them take effect without a restart. The others are checked,
//! stored and reported, so tools that set them work; on a single node whose
//! durability follows the broker's fsync policy they change nothing. Values
//! Cohort cannot honour (compaction, LogAppendTime, tiered storage) are refused
//! with INVALID_CONFIG rather than accepted and ignored. Compaction
//! (cleanup.policy compact, with delete.retention.ms, min.cleanable.dirty.ratio,
//! min/max.compaction.lag.ms) is the log cleaner's (`cleaner`).

/// What values a config takes; the ConfigType DescribeConfigs reports follows.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A comma-separated list whose items are among these.
    ListOf(&'static [&'static str]),
    /// Replica lists for throttling: "", "*", or partition:broker pairs.
    Replicas,
    Int(i64, i64),
    Long(i64),
    Double(f64, f64),
}

struct Def {
    name: &'static str,
    default: &'static str,
    kind: Kind,
    /// The broker config it falls back to, where Kafka has one.
    synonym: Option<&'static str>,
}

const fn def(
    name: &'static str,
    default: &'static str,
    kind: Kind,
    synonym: Option<&'static str>,
) -> Def {
    Def {
        name,
        default,
        kind,
        synonym,
    }
}

const I32: i64 = i32::MAX as i64;
const CODECS: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

const DEFS: &[Def] = &[
    def(
        "cleanup.policy",
        "delete",
        Kind::ListOf(&["compact", "delete"]),
        Some("log.cleanup.policy"),
    ),
    def(
        "compression.gzip.level",
        "-1",
        Kind::Int(-1, 9),
        Some("compression.gzip.level"),
    ),
    def(
        "compression.lz4.level",
        "9",
        Kind::Int(1, 17),
        Some("compression.lz4.level"),
    ),
    def(
        "compression.type",
        "producer",
        Kind::OneOf(CODECS),
        Some("compression.type"),
    ),
    def(
        "compression.zstd.level",
        "3",
        Kind::Int(-131072, 22),
        Some("compression.zstd.level"),
    ),
    def(
        "delete.retention.ms",
        "86400000",
        Kind::Long(0),
        Some("log.cleaner.delete.retention.ms"),
    ),
    def(
        "errors.deadletterqueue.group.enable",
        "false",
        Kind::Bool,
        None,
    ),
    def(
        "file.delete.delay.ms",
        "60000",
        Kind::Long(0),
        Some("log.segment.delete.delay.ms"),
    ),
    def(
        "flush.messages",
        "9223372036854775807",
        Kind::Long(1),
        Some("log.flush.interval.messages"),
    ),
    def(
        "flush.ms",
        "9223372036854775807",
        Kind::Long(0),
        Some("log.flush.interval.ms"),
    ),
    def(
        "follower.replication.throttled.replicas",
        "",
        Kind::Replicas,
        None,
    ),
    def(
        "index.interval.bytes",
        "4096",
        Kind::Int(0, I32),
        Some("log.index.interval.bytes"),
    ),
    def(
        "leader.replication.throttled.replicas",
        "",
        Kind::Replicas,
        None,
    ),
    def(
        "local.retention.bytes",
        "-2",
        Kind::Long(-2),
        Some("log.local.retention.bytes"),
    ),
    def(
        "local.retention.ms",
        "-2",
        Kind::Long(-2),
        Some("log.local.retention.ms"),
    ),
    def(
        "max.compaction.lag.ms",
        "9223372036854775807",
        Kind::Long(1),
        Some("log.cleaner.max.compaction.lag.ms"),
    ),
    def(
        "max.decompressed.message.bytes",
        "2147483639",
        Kind::Int(0, I32),
        Some("max.decompressed.message.bytes"),
    ),
    def(
        "max.message.bytes",
        "1048588",
        Kind::Int(0, I32),
        Some("message.max.bytes"),
    ),
    def(
        "message.timestamp.after.max.ms",
        "3600000",
        Kind::Long(0),
        Some("log.message.timestamp.after.max.ms"),
    ),
    def(
        "message.timestamp.before.max.ms",
        "9223372036854775807",
        Kind::Long(0),
        Some("log.message.timestamp.before.max.ms"),
    ),
    def(
        "message.timestamp.type",
        "CreateTime",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        Some("log.message.timestamp.type"),
    ),
    def(
        "min.cleanable.dirty.ratio",
        "0.5",
        Kind::Double(0.0, 1.0),
        Some("log.cleaner.min.cleanable.ratio"),
    ),
    def(
        "min.compaction.lag.ms",
        "0",
        Kind::Long(0),
        Some("log.cleaner.min.compaction.lag.ms"),
    ),
    def(
        "min.insync.replicas",
        "1",
        Kind::Int(1, I32),
        Some("min.insync.replicas"),
    ),
    def("preallocate", "false", Kind::Bool, Some("log.preallocate")),
    def(
        "remote.copy.lag.bytes",
        "-1",
        Kind::Long(-1),
        Some("log.remote.copy.lag.bytes"),
    ),
    def(
        "remote.copy.lag.ms",
        "0",
        Kind::Long(0),
        Some("log.remote.copy.lag.ms"),
    ),
    def("remote.log.copy.disable", "false", Kind::Bool, None),
    def("remote.log.delete.on.disable", "false", Kind::Bool, None),
    def("remote.storage.enable", "false", Kind::Bool, None),
    def(
        "retention.bytes",
        "-1",
        Kind::Long(i64::MIN),
        Some("log.retention.bytes"),
    ),
    def(
        "retention.ms",
        "604800000",
        Kind::Long(-1),
        Some("log.retention.ms"),
    ),
    def(
        "segment.bytes",
        "1073741824",
        Kind::Int(1 << 20, I32),
        Some("log.segment.bytes"),
    ),
    def(
        "segment.index.bytes",
        "10485760",
        Kind::Int(4, I32),
        Some("log.index.size.max.bytes"),
    ),
    def(
        "segment.jitter.ms",
        "0",
        Kind::Long(0),
        Some("log.roll.jitter.ms"),
    ),
    def(
        "segment.ms",
        "604800000",
        Kind::Long(1),
        Some("log.roll.ms"),
    ),
    def(
        "unclean.leader.election.enable",
        "false",
        Kind::Bool,
        Some("unclean.leader.election.enable"),
    ),
];

fn find(name: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.name == name)
}

/// Every topic config name, in Kafka's (alphabetical) order.
pub fn names() -> impl Iterator<Item = &'static str> {
    DEFS.iter().map(|d| d.name)
}

/// Kafka's own default for a topic config.
pub fn kafka_default(name: &str) -> Option<&'static str> {
    find(name).map(|d| d.default)
}

/// The broker config a topic config falls back to.
pub fn synonym(name: &str) -> Option<&'static str> {
    find(name).and_then(|d| d.synonym)
}

/// Kafka's ConfigType number: 1 boolean, 2 string, 3 int, 5 long, 6 double, 7 list.
pub fn config_type(name: &str) -> i8 {
    match find(name).map(|d| d.kind) {
        Some(Kind::Bool) => 1,
        Some(Kind::OneOf(_)) => 2,
        Some(Kind::Int(..)) => 3,
        Some(Kind::Long(_)) => 5,
        Some(Kind::Double(..)) => 6,
        Some(Kind::ListOf(_) | Kind::Replicas) => 7,
        None => 0,
    }
}

/// Whether APPEND and SUBTRACT apply (Kafka allows them on lists only).
pub fn is_list(name: &str) -> bool {
    config_type(name) == 7
}

/// Checks a value as Kafka does, then refuses what Cohort cannot honour. The
/// error is the message for INVALID_CONFIG.
pub fn check(name: &str, value: &str) -> Result<(), String> {
    let Some(d) = find(name) else {
        return Err(format!("Unknown topic config name: {name}"));
    };
    let invalid = |why: String| {
        Err(format!(
            "Invalid value {value} for configuration {name}: {why}"
        ))
    };
    let v = value.trim();
    match d.kind {
        Kind::Bool => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return invalid("Expected value to be either true or false".into());
            }
        }
        Kind::OneOf(allowed) => {
            if !allowed.contains(&v) {
                return invalid(format!("String must be one of: {}", allowed.join(", ")));
            }
        }
        Kind::ListOf(allowed) => {
            for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                if !allowed.contains(&item) {
                    return invalid(format!(
                        "Invalid value {item}; must be one of: {}",
                        allowed.join(", ")
                    ));
                }
            }
        }
        Kind::Replicas => {
            let ok = v.is_empty()
                || v == "*"
                || v.split(',').map(str::trim).all(|pair| {
                    pair.split_once(':').is_some_and(|(p, b)| {
                        p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                    })
                });
            if !ok {
                return invalid("must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...".into());
            }
        }
        Kind::Int(min, max) => match v.parse::<i64>() {
            Ok(n) if n < i32::MIN as i64 || n > I32 => {
                return invalid("Not a number of type INT".into())
            }
            Ok(n) if n < min => return invalid(format!("Value must be at least {min}")),
            Ok(n) if n > max => return invalid(format!("Value must be no more than {max}")),
            Ok(_) => {}
            Err(_) => return invalid("Not a number of type INT".into()),
        },
        Kind::Long(min) => match v.parse::<i64>() {
            Ok(n) if n < min => return invalid(format!("Value must be at least {min}")),
            Ok(_) => {}
            Err(_) => return invalid("Not a number of type LONG".into()),
        },
        Kind::Double(min, max) => match v.parse::<f64>() {
            Ok(n) if n < min => return invalid(format!("Value must be at least {min}")),
            Ok(n) if n > max => return invalid(format!("Value must be no more than {max}")),
            Ok(_) => {}
            Err(_) => return invalid("Not a number of type DOUBLE".into()),
        },
    }
    match name {
        "message.timestamp.type" if v != "CreateTime" => Err(format!(
            "message.timestamp.type={v} is not supported: Cohort keeps CreateTime"
        )),
        "remote.storage.enable" if v.eq_ignore_ascii_case("true") => Err(
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."
                .into(),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_messages_for_kafkas_checks() {
        // Each message as Apache Kafka 4.4 answered the same CreateTopics.
        let cases = [
            ("segment.bytes", "20000", "Invalid value 20000 for configuration segment.bytes: Value must be at least 1048576"),
            ("retention.ms", "abc", "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
            ("retention.ms", "-5", "Invalid value -5 for configuration retention.ms: Value must be at least -1"),
            ("foo.bar", "1", "Unknown topic config name: foo.bar"),
            ("max.message.bytes", "-1", "Invalid value -1 for configuration max.message.bytes: Value must be at least 0"),
            ("compression.type", "brotli", "Invalid value brotli for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"),
            ("min.cleanable.dirty.ratio", "1.5", "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"),
            ("flush.messages", "0", "Invalid value 0 for configuration flush.messages: Value must be at least 1"),
            ("segment.ms", "0", "Invalid value 0 for configuration segment.ms: Value must be at least 1"),
        ];
        for (name, value, message) in cases {
            assert_eq!(check(name, value).unwrap_err(), message);
        }
        for (name, value) in [
            ("min.insync.replicas", "3"),
            ("retention.ms", "-1"),
            ("cleanup.policy", "delete"),
            ("leader.replication.throttled.replicas", "0:1,1:1"),
            ("preallocate", "TRUE"),
        ] {
            assert_eq!(check(name, value), Ok(()), "{name}={value}");
        }
    }

    #[test]
    fn thirty_seven_configs_with_types_and_defaults_that_pass_their_own_checks() {
        assert_eq!(DEFS.len(), 37);
        let mut sorted: Vec<_> = names().collect();
        sorted.sort();
        assert_eq!(sorted, names().collect::<Vec<_>>());
        for d in DEFS {
            assert_ne!(config_type(d.name), 0);
            assert_eq!(check(d.name, d.default), Ok(()), "{}", d.name);
        }
    }
}
