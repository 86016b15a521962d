"""Topic configs as Kafka keeps them: DescribeConfigs lists what Apache Kafka 4.4
lists with the same sources and synonyms; IncrementalAlterConfigs and
AlterConfigs change them with Kafka's checks and messages; a change takes effect
without a restart and survives one.

Set KAFKA_BOOTSTRAP=host:port to run the broker-neutral tests against another
broker (an Apache Kafka 4.4, for instance) and compare."""

import os
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

# What Apache Kafka 4.4 lists for a topic (DescribeConfigs v4), with its defaults.
KAFKA_TOPIC_DEFAULTS = {
    "cleanup.policy": "delete", "compression.gzip.level": "-1", "compression.lz4.level": "9",
    "compression.type": "producer", "compression.zstd.level": "3", "delete.retention.ms": "86400000",
    "errors.deadletterqueue.group.enable": "false", "file.delete.delay.ms": "60000",
    "flush.messages": "9223372036854775807", "flush.ms": "9223372036854775807",
    "follower.replication.throttled.replicas": "", "index.interval.bytes": "4096",
    "leader.replication.throttled.replicas": "", "local.retention.bytes": "-2", "local.retention.ms": "-2",
    "max.compaction.lag.ms": "9223372036854775807", "max.decompressed.message.bytes": "2147483639",
    "max.message.bytes": "1048588", "message.timestamp.after.max.ms": "3600000",
    "message.timestamp.before.max.ms": "9223372036854775807", "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": "0.5", "min.compaction.lag.ms": "0", "min.insync.replicas": "1",
    "preallocate": "false", "remote.copy.lag.bytes": "-1", "remote.copy.lag.ms": "0",
    "remote.log.copy.disable": "false", "remote.log.delete.on.disable": "false",
    "remote.storage.enable": "false", "retention.bytes": "-1", "retention.ms": "604800000",
    "segment.bytes": "1073741824", "segment.index.bytes": "10485760", "segment.jitter.ms": "0",
    "segment.ms": "604800000", "unclean.leader.election.enable": "false",
}
DYNAMIC_TOPIC, DEFAULT = 1, 5


def target(broker):
    return os.environ.get("KAFKA_BOOTSTRAP") or broker.bootstrap


def describe(admin, topic):
    r = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([r])[r].result(timeout=10)


def alter(admin, topic, *entries):
    r = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=list(entries))
    return admin.incremental_alter_configs([r])[r].result(timeout=10)


def set_(name, value):
    return ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)


def delete(name):
    return ConfigEntry(name, None, incremental_operation=AlterConfigOpType.DELETE)


def fresh_topic(admin, prefix, config=None):
    name = f"{prefix}-{time.time_ns()}"
    admin.create_topics([NewTopic(name, 1, 1, config=config or {})])[name].result(timeout=30)
    time.sleep(0.3)  # Kafka answers before every broker knows the topic
    return name


def test_describe_lists_kafkas_topic_configs_with_their_sources(broker):
    admin = AdminClient({"bootstrap.servers": target(broker)})
    topic = fresh_topic(admin, "cfg-list", {"retention.ms": "1000"})
    got = describe(admin, topic)
    assert sorted(got) == sorted(KAFKA_TOPIC_DEFAULTS)
    for name, default in KAFKA_TOPIC_DEFAULTS.items():
        e = got[name]
        if name == "retention.ms":
            assert (e.value, e.source) == ("1000", DYNAMIC_TOPIC)
        elif name == "min.insync.replicas":
            # Kafka's storage format sets it as a cluster default (source 3).
            assert e.value == default and e.source in (3, DEFAULT)
        else:
            assert (name, e.value, e.source) == (name, default, DEFAULT)
        assert not e.is_read_only


@pytest.mark.parametrize("name,value,message", [
    ("retention.ms", "abc", "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
    ("retention.ms", "-5", "Invalid value -5 for configuration retention.ms: Value must be at least -1"),
    ("segment.bytes", "20000", "Invalid value 20000 for configuration segment.bytes: Value must be at least 1048576"),
    ("no.such.config", "1", "Unknown topic config name: no.such.config"),
    ("compression.type", "brotli", "Invalid value brotli for configuration compression.type: "
                                   "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"),
])
def test_bad_values_get_kafkas_invalid_config(broker, name, value, message):
    admin = AdminClient({"bootstrap.servers": target(broker)})
    topic = fresh_topic(admin, "cfg-bad")
    with pytest.raises(Exception) as e:
        alter(admin, topic, set_(name, value))
    err = e.value.args[0]
    assert (err.code(), err.str()) == (40, message)
    with pytest.raises(Exception) as e:
        admin.create_topics([NewTopic(topic + "-new", 1, 1, config={name: value})], validate_only=True)[
            topic + "-new"].result(timeout=10)
    assert (e.value.args[0].code(), e.value.args[0].str()) == (40, message)


def test_incremental_set_delete_and_list_operations(broker):
    admin = AdminClient({"bootstrap.servers": target(broker)})
    topic = fresh_topic(admin, "cfg-inc", {"segment.ms": "100000"})
    alter(admin, topic, set_("retention.ms", "5000"), set_("max.message.bytes", "2000000"))
    got = describe(admin, topic)
    assert (got["retention.ms"].value, got["retention.ms"].source) == ("5000", DYNAMIC_TOPIC)
    assert got["segment.ms"].value == "100000"  # untouched
    alter(admin, topic, delete("retention.ms"))
    got = describe(admin, topic)
    assert (got["retention.ms"].value, got["retention.ms"].source) == ("604800000", DEFAULT)
    assert got["max.message.bytes"].value == "2000000"
    with pytest.raises(Exception) as e:
        alter(admin, topic, ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND))
    assert e.value.args[0].str() == "Can't APPEND to key retention.ms because its type is not LIST."
    alter(admin, topic, ConfigEntry("leader.replication.throttled.replicas", "0:0",
                                    incremental_operation=AlterConfigOpType.APPEND))
    assert describe(admin, topic)["leader.replication.throttled.replicas"].value == "0:0"
    with pytest.raises(Exception) as e:
        alter(AdminClient({"bootstrap.servers": target(broker)}), "no-such-topic", set_("retention.ms", "1"))
    assert e.value.args[0].code() == 3  # UNKNOWN_TOPIC_OR_PARTITION


def test_a_change_is_in_effect_at_once_and_survives_a_restart(broker_factory):
    """max.message.bytes refuses at once; a smaller segment.bytes with
    retention.bytes drops old segments at the next retention pass; both are
    still there after a restart."""
    b = broker_factory(["--retention-check-interval-ms", "100"]).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("live", 1, 1)])["live"].result(timeout=30)
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5})
    p.produce("live", value=bytes(5000))
    assert p.flush(30) == 0

    alter(admin, "live", set_("max.message.bytes", "1000"))
    errors = []
    p.produce("live", value=bytes(5000), on_delivery=lambda e, m: errors.append(e))
    p.flush(30)
    assert errors and errors[0] is not None and errors[0].code() == 10  # MESSAGE_TOO_LARGE

    alter(admin, "live", set_("max.message.bytes", "1048588"), set_("segment.bytes", str(1 << 20)),
          set_("retention.bytes", str(1 << 20)))
    for _ in range(4000):
        p.produce("live", value=bytes(1000))
        p.poll(0)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "unused"})
    low = 0
    for _ in range(100):  # bounded wait for the retention pass
        low, high = c.get_watermark_offsets(TopicPartition("live", 0), timeout=10)
        if low > 0:
            break
        time.sleep(0.1)
    assert low > 0 and high == 4001
    c.close()

    assert b.stop() == 0
    b.start()
    got = describe(AdminClient({"bootstrap.servers": b.bootstrap}), "live")
    assert got["segment.bytes"].value == str(1 << 20) and got["segment.bytes"].source == DYNAMIC_TOPIC
    assert got["retention.bytes"].value == str(1 << 20)


def test_alter_configs_replaces_every_own_value(broker):
    admin = AdminClient({"bootstrap.servers": target(broker)})
    topic = fresh_topic(admin, "cfg-old", {"retention.ms": "5000", "segment.ms": "100000"})
    r = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"retention.bytes": "123456789"})
    admin.alter_configs([r])[r].result(timeout=10)
    got = describe(admin, topic)
    assert got["retention.bytes"].value == "123456789"
    assert got["retention.ms"].source == DEFAULT and got["segment.ms"].source == DEFAULT


def broker_alter(admin, name, *entries):
    """IncrementalAlterConfigs on a BROKER resource. Name "" (the cluster-wide
    default) is sent by hand (v0): neither Python client allows it."""
    if name != "":
        r = ConfigResource(ConfigResource.Type.BROKER, name, incremental_configs=list(entries))
        return admin.incremental_alter_configs([r])[r].result(timeout=10)
    import struct
    from kafka_wire import Conn, string

    def nullable(v):
        return struct.pack(">h", -1) if v is None else string(v)

    ops = {AlterConfigOpType.SET: 0, AlterConfigOpType.DELETE: 1}
    configs = b"".join(string(e.name) + struct.pack(">b", ops[e.incremental_operation]) + nullable(e.value)
                       for e in entries)
    body = (struct.pack(">i", 1) + struct.pack(">b", 4) + string("") + struct.pack(">i", len(entries)) + configs
            + struct.pack(">b", 0))
    c = Conn(admin._bootstrap_for_wire)
    c.request(44, 0, body)
    frame = c.read_frame()
    (error,) = struct.unpack(">h", frame[12:14])  # correlation id, throttle time, one response
    if error:
        raise RuntimeError(f"IncrementalAlterConfigs on the cluster default: error {error}")


def node_id(admin):
    return str(admin.describe_cluster().result(timeout=10).nodes[0].id)


def test_dynamic_broker_configs_set_topic_defaults(broker):
    """The cluster-wide default ("") and this broker's own value (its id, which
    wins) change what every topic without its own value gets, at once."""
    admin = AdminClient({"bootstrap.servers": target(broker)})
    admin._bootstrap_for_wire = target(broker)
    topic = fresh_topic(admin, "cfg-dyn")
    me = node_id(admin)
    try:
        broker_alter(admin, "", set_("log.retention.ms", "7200000"))
        time.sleep(0.5)  # Kafka applies dynamic configs asynchronously
        got = describe(admin, topic)["retention.ms"]
        assert (got.value, got.source) == ("7200000", 3)  # DYNAMIC_DEFAULT_BROKER_CONFIG
        broker_alter(admin, me, set_("log.retention.ms", "3600000"))
        time.sleep(0.5)
        got = describe(admin, topic)["retention.ms"]
        assert (got.value, got.source) == ("3600000", 2)  # DYNAMIC_BROKER_CONFIG
        with pytest.raises(Exception) as e:
            broker_alter(admin, me, set_("log.retention.ms", "abc"))
        # INVALID_REQUEST for a broker config (a topic's gets INVALID_CONFIG).
        assert (e.value.args[0].code(), e.value.args[0].str()) == (
            42, "Invalid value abc for configuration log.retention.ms: Not a number of type LONG")
        with pytest.raises(Exception) as e:
            broker_alter(admin, me, set_("log.dirs", "/elsewhere"))
        assert (e.value.args[0].code(), e.value.args[0].str()) == (
            42, "Cannot update these configs dynamically: [log.dirs]")
    finally:
        broker_alter(admin, me, delete("log.retention.ms"))
        broker_alter(admin, "", delete("log.retention.ms"))
    time.sleep(0.5)
    got = describe(admin, topic)["retention.ms"]
    assert (got.value, got.source) == ("604800000", DEFAULT)


def test_a_dynamic_broker_config_takes_effect_and_survives_a_restart(broker_factory):
    b = broker_factory().start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("dyn", 1, 1)])["dyn"].result(timeout=30)
    broker_alter(admin, "0", set_("message.max.bytes", "2000"))
    errors = []
    p = Producer({"bootstrap.servers": b.bootstrap, "retries": 0})
    p.produce("dyn", value=bytes(5000), on_delivery=lambda e, m: errors.append(e))
    p.flush(10)
    assert errors[0] is not None and errors[0].code() == 10  # MESSAGE_TOO_LARGE
    assert b.stop() == 0
    b.start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    got = describe(admin, "dyn")["max.message.bytes"]
    assert (got.value, got.source) == ("2000", 2)
    r = ConfigResource(ConfigResource.Type.BROKER, "0")
    assert admin.describe_configs([r])[r].result(timeout=10)["message.max.bytes"].value == "2000"


def test_a_dynamic_cleanup_policy_compacts_topics_without_their_own(broker_factory):
    """log.cleanup.policy=compact as this broker's default: a topic with no
    policy of its own is now compacted, so a keyless record is refused."""
    b = broker_factory().start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("inherits", 1, 1)])["inherits"].result(timeout=30)
    broker_alter(admin, "0", set_("log.cleanup.policy", "compact"))
    assert describe(admin, "inherits")["cleanup.policy"].value == "compact"
    errors = []
    p = Producer({"bootstrap.servers": b.bootstrap, "retries": 0})
    p.produce("inherits", value=b"no key", on_delivery=lambda e, m: errors.append(e))
    p.flush(10)
    assert errors[0] is not None and errors[0].code() == 87  # INVALID_RECORD
