"""The KIP-848 consumer protocol (group.protocol=consumer) with librdkafka and the
Java client: join, graceful leave, kill, partitions 100 -> 1000, a slow member
whose revocation takes seconds while the others keep consuming and committing,
a static member restart, a broker restart under a stable group, and a regex
subscription picking up a new topic. Sequence-numbered records prove nothing is
lost or double-owned. Timings go to target/e2e-figures/consumer.jsonl."""

import time

import pytest
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from groups import Member, SeqProducer, caught_up, check_invariants, record_figures, settled, wait_until

ARGS = [
    "--group-consumer-session-timeout-ms", "6000",
    "--group-consumer-heartbeat-interval-ms", "1000",
]

CASES = [("confluent", "uniform"), ("confluent", "range"), ("java", "uniform"), ("java", "range")]


def record(figures):
    record_figures("consumer", figures)


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=60)


def member(b, group, topic, assignor, name, client, **kw):
    return Member(b.bootstrap, group, topic, assignor, name, client=client, protocol="consumer", **kw)


def stop_all(members):
    for m in members:
        if m.alive():
            m.stop()


@pytest.mark.parametrize("client,assignor", CASES, ids=[f"{c}-{a}" for c, a in CASES])
def test_join_leave_kill_and_grow_to_1000_partitions(broker_factory, client, assignor):
    b = broker_factory(ARGS).start()
    topic, group = "events", f"c-{client}-{assignor}"
    create_topic(b.bootstrap, topic, 100)
    producer = SeqProducer(b.bootstrap, topic, 100, rate=400).start()
    members = []
    figures = {"client": client, "assignor": assignor}
    try:
        for i in range(3):
            t0 = time.time()
            members.append(member(b, group, topic, assignor, f"m{i}", client))
            t1 = wait_until(lambda: settled(members, 100) and members[-1].owned(), 90, f"member {i} to get partitions")
            figures[f"join_{i + 1}_s"] = round(t1 - t0, 2)
        t0 = time.time()
        members[2].stop()
        figures["leave_s"] = round(wait_until(lambda: settled(members, 100), 60, "settle after leave") - t0, 2)
        t0 = time.time()
        members[1].kill()
        figures["kill_s"] = round(wait_until(lambda: settled(members, 100), 60, "settle after kill") - t0, 2)
        # Its kernel closed its connections: removed for that, not for its
        # session timing out.
        assert "reason=connection closed" in b.log(), "the killed member was removed for its closed connection"
        members.append(member(b, group, topic, assignor, "m3", client))
        wait_until(lambda: settled(members, 100) and members[-1].owned(), 90, "a new member to get partitions")
        t0 = time.time()
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_partitions([NewPartitions(topic, 1000)])[topic].result(timeout=60)
        producer.partitions = 1000
        figures["partitions_100_to_1000_s"] = round(wait_until(lambda: settled(members, 1000), 120, "1000 partitions assigned") - t0, 2)
        producer.stop()
        ends = producer.ends()

        wait_until(lambda: caught_up(members, ends), 90, "the live members to consume every record")
    finally:
        producer.stop_event.set()
        stop_all(members)
    summary = check_invariants(members, producer, time.time())
    figures.update(summary)
    record(figures)


@pytest.mark.parametrize("client", ["confluent", "java"])
def test_a_slow_revocation_delays_only_its_own_partitions(broker_factory, client):
    b = broker_factory(ARGS).start()
    topic, group = "slow", f"slow-{client}"
    create_topic(b.bootstrap, topic, 6)
    producer = SeqProducer(b.bootstrap, topic, 6).start()
    # The slow member is librdkafka (its revocation callback sleeps 10 s); the
    # others are the client under test.
    members = [
        member(b, group, topic, "uniform", "slow", "confluent", revoke_sleep=10),
        member(b, group, topic, "uniform", "fast1", client),
    ]
    try:
        wait_until(lambda: settled(members, 6) and all(m.owned() for m in members), 60, "slow and fast1 to share the topic")
        time.sleep(1)
        revoking, revoked = members[0].count("revoking"), members[0].count("revoke")
        members.append(member(b, group, topic, "uniform", "fast2", client))
        t0 = time.time()
        wait_until(lambda: members[0].count("revoking") > revoking, 30, "the slow member to start revoking")
        # While the slow member sits in its callback, the newcomer gets what
        # fast1 released at once, and both fast members keep consuming.
        wait_until(lambda: members[2].owned(), 8, "fast2 to get the partition fast1 released")
        mark = time.time()
        time.sleep(2)
        assert members[0].count("revoke") == revoked, "the slow member is still revoking"
        for m in members[1:]:
            assert any(e["ev"] == "recs" and e["t"] > mark for e in list(m.events)), f"{m.name} kept consuming"
        t1 = wait_until(lambda: members[0].count("revoke") > revoked and settled(members, 6), 60, "the slow revocation to finish and the group to settle")
        record({"client": client, "scenario": "slow_revocation", "fast2_first_partition_s": round(mark - t0, 2), "slow_done_and_settled_s": round(t1 - t0, 2)})
    finally:
        producer.stop()
        stop_all(members)
    check_invariants(members, producer, time.time())


@pytest.mark.parametrize("client", ["confluent", "java"])
def test_a_static_member_restart_keeps_its_partitions_without_a_rebalance(broker_factory, client):
    b = broker_factory(ARGS).start()
    topic, group = "static848", f"static848-{client}"
    create_topic(b.bootstrap, topic, 4)
    producer = SeqProducer(b.bootstrap, topic, 4).start()
    members = [member(b, group, topic, "uniform", f"s{i}", client, instance=f"inst-{i}") for i in range(2)]
    try:
        # Settled and balanced: a member that joined second first reports an
        # empty assignment while the other still owns everything.
        wait_until(lambda: settled(members, 4) and all(len(m.owned()) == 2 for m in members), 60,
                   "the static group to settle, two partitions each")
        time.sleep(1)
        before = members[1].owned()
        other = members[0].count("assign") + members[0].count("revoke")
        # A graceful close of a static member is a temporary leave (epoch -2).
        members[1].stop()
        t0 = time.time()
        again = member(b, group, topic, "uniform", "s1-again", client, instance="inst-1")
        members.append(again)
        t1 = wait_until(lambda: again.owned() == before, 30, "the restarted static member to get its partitions back")
        time.sleep(2)
        assert members[0].count("assign") + members[0].count("revoke") == other, \
            f"the other member saw no rebalance: {[e for e in list(members[0].events) if e['ev'] in ('assign', 'revoke')]}"
        record({"client": client, "scenario": "static_restart", "restart_to_assigned_s": round(t1 - t0, 2)})
    finally:
        producer.stop()
        stop_all(members)
    check_invariants(members, producer, time.time())


def test_a_broker_restart_under_a_stable_consumer_group_changes_nothing(broker_factory):
    b = broker_factory(ARGS).start()
    topic, group = "bounce848", "bounce848"
    create_topic(b.bootstrap, topic, 4)
    producer = SeqProducer(b.bootstrap, topic, 4).start()
    members = [member(b, group, topic, "uniform", f"b{i}", "confluent") for i in range(2)]
    try:
        wait_until(lambda: settled(members, 4), 60, "the group to settle")
        time.sleep(1)
        counts = [m.count("assign") + m.count("revoke") + m.count("lost") for m in members]
        assert b.stop() == 0
        b.start()
        time.sleep(8)
        assert [m.count("assign") + m.count("revoke") + m.count("lost") for m in members] == counts
        n = sum(m.count("recs") for m in members)
        wait_until(lambda: sum(m.count("recs") for m in members) > n, 30, "consumption to continue")
    finally:
        producer.stop()
        stop_all(members)
    check_invariants(members, producer, time.time())


def test_a_regex_subscription_picks_up_a_new_topic(broker_factory):
    b = broker_factory(ARGS).start()
    create_topic(b.bootstrap, "logs-a", 2)
    m = member(b, "regex", "^logs-.*", "uniform", "r0", "confluent")
    try:
        wait_until(lambda: len(m.owned()) == 2, 60, "the regex member to get logs-a")
        t0 = time.time()
        create_topic(b.bootstrap, "logs-b", 3)
        create_topic(b.bootstrap, "other", 3)
        # Partitions are numbered per topic; the member reports partition
        # numbers, so logs-a (0,1) and logs-b (0,1,2) show as {0,1,2} with
        # five assignments in total.
        wait_until(lambda: sum(len(e["parts"]) for e in m.events if e["ev"] == "assign") >= 5, 60, "logs-b to be assigned")
        time.sleep(2)
        assert sum(len(e["parts"]) for e in m.events if e["ev"] == "assign") == 5, "'other' does not match ^logs-.*"
        record({"client": "confluent", "scenario": "regex_new_topic", "new_topic_assigned_s": round(time.time() - t0, 2)})
    finally:
        m.stop()
