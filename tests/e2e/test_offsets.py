"""Committed offsets: simple commits, fetch, delete, and survival across
restarts and coordinator-log compaction."""

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def commit_and_fetch(bootstrap, group, offsets):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("offs", p, o) for p, o in offsets.items()], asynchronous=False)
    got = c.committed([TopicPartition("offs", p) for p in offsets], timeout=10)
    c.close()
    return {tp.partition: tp.offset for tp in got}


def committed(bootstrap, group, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    got = c.committed([TopicPartition("offs", p) for p in partitions], timeout=10)
    c.close()
    return {tp.partition: tp.offset for tp in got}


def test_offsets_survive_compaction_and_restart(broker_factory):
    b = broker_factory(["--coordinator-compact-after", "50"]).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("offs", 4, 1)])["offs"].result(timeout=30)
    last = {}
    for i in range(60):
        last = {p: i * 10 + p for p in range(4)}
        assert commit_and_fetch(b.bootstrap, "compacting", last) == last
    # Compaction ran (the log was rewritten as a snapshot).
    logs = sorted((b.data_dir / "coordinator" / "shard-0").glob("log-*"))
    assert logs and logs[-1].name != "log-000000", logs
    assert b.stop() == 0
    b.start()
    assert committed(b.bootstrap, "compacting", range(4)) == last
    # Unknown partitions are refused; unknown groups read as "no offset".
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "other", "enable.auto.commit": False})
    assert committed(b.bootstrap, "never-committed", [0]) == {0: -1001}
    c.close()


def test_list_describe_and_delete_groups(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("offs", 2, 1)])["offs"].result(timeout=30)
    commit_and_fetch(broker.bootstrap, "to-delete", {0: 5})
    listed = admin.list_consumer_groups().result(timeout=10)
    assert "to-delete" in [g.group_id for g in listed.valid]
    desc = admin.describe_consumer_groups(["to-delete"])["to-delete"].result(timeout=10)
    assert desc.state.name == "EMPTY" and desc.members == []
    admin.delete_consumer_groups(["to-delete"])["to-delete"].result(timeout=10)
    assert committed(broker.bootstrap, "to-delete", [0]) == {0: -1001}
