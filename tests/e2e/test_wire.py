"""Bad input: each case gets the answer Kafka gives, and never takes the broker
down. Requests are built by hand so they can be wrong in exact ways."""

import struct

from kafka_wire import Conn, parse_produce_v3, produce_v3, record_batch

API_VERSIONS, PRODUCE, FETCH, METADATA = 18, 0, 1, 3


def metadata_v1_create(conn, topic):
    conn.request(METADATA, 1, struct.pack(">i", 1) + struct.pack(">h", len(topic)) + topic.encode())
    return conn.read_frame()


def api_versions_v0(conn):
    conn.request(API_VERSIONS, 0, b"")
    frame = conn.read_frame()
    corr, err, n = struct.unpack(">ihi", frame[:10])
    keys = {}
    for i in range(n):
        k, lo, hi = struct.unpack(">hhh", frame[10 + 6 * i:16 + 6 * i])
        keys[k] = (lo, hi)
    return err, keys


def test_api_versions_lists_what_we_translate_with_produce_from_v0(broker):
    c = Conn(broker.bootstrap)
    err, keys = api_versions_v0(c)
    assert err == 0
    assert keys[PRODUCE][0] == 0  # KAFKA-18659: advertised from v0
    assert keys[FETCH] == (4, 18)
    assert keys[API_VERSIONS] == (0, 5)


def test_too_new_api_versions_gets_the_kip_511_downgrade_answer(broker):
    c = Conn(broker.bootstrap)
    corr = c.request(API_VERSIONS, 99, b"\x00garbage-a-future-client-might-send")
    frame = c.read_frame()
    got_corr, err, n = struct.unpack(">ihi", frame[:10])
    assert (got_corr, err, n) == (corr, 35, 1)
    assert struct.unpack(">hhh", frame[10:16]) == (API_VERSIONS, 0, 5)
    # The connection stays usable for the retry at a version we speak.
    assert api_versions_v0(c)[0] == 0


def test_a_malformed_frame_closes_only_its_own_connection(broker):
    healthy = Conn(broker.bootstrap)
    for payload in [struct.pack(">i", -5), struct.pack(">i", 200 * 1024 * 1024), struct.pack(">i", 3) + b"\x00\x12\x00"]:
        bad = Conn(broker.bootstrap)
        bad.send_raw(payload)
        assert bad.closed_by_peer(), payload
    # A known API at a version we do not speak (Fetch v3) closes too, as in Kafka.
    old = Conn(broker.bootstrap)
    old.request(FETCH, 3, b"\x00" * 40)
    assert old.closed_by_peer()
    # A body that does not decode.
    trunc = Conn(broker.bootstrap)
    trunc.request(PRODUCE, 3, b"\x00\x01")
    assert trunc.closed_by_peer()
    assert api_versions_v0(healthy)[0] == 0


def test_a_batch_with_a_bad_crc_gets_corrupt_message_and_is_not_stored(broker):
    c = Conn(broker.bootstrap)
    metadata_v1_create(c, "crc")
    good = record_batch([b"fine"])
    bad = bytearray(record_batch([b"flipped"]))
    bad[-3] ^= 0x40
    c.request(PRODUCE, 3, produce_v3("crc", 0, bytes(bad)))
    assert parse_produce_v3(c.read_frame()) == [("crc", 0, 2, -1)]
    c.request(PRODUCE, 3, produce_v3("crc", 0, good))
    assert parse_produce_v3(c.read_frame()) == [("crc", 0, 0, 0)]


def test_unknown_topics_and_partitions_get_kafkas_codes(broker):
    c = Conn(broker.bootstrap)
    # Produce never creates topics.
    c.request(PRODUCE, 3, produce_v3("never-created", 0, record_batch([b"x"])))
    assert parse_produce_v3(c.read_frame()) == [("never-created", 0, 3, -1)]
    metadata_v1_create(c, "one-partition")
    c.request(PRODUCE, 3, produce_v3("one-partition", 7, record_batch([b"x"])))
    assert parse_produce_v3(c.read_frame()) == [("one-partition", 7, 3, -1)]
    # Two batches in one partition's records: INVALID_RECORD (87), as Kafka.
    c.request(PRODUCE, 3, produce_v3("one-partition", 0, record_batch([b"a"]) + record_batch([b"b"])))
    assert parse_produce_v3(c.read_frame()) == [("one-partition", 0, 87, -1)]
    # acks=2 is not a thing.
    c.request(PRODUCE, 3, produce_v3("one-partition", 0, record_batch([b"a"]), acks=2))
    assert parse_produce_v3(c.read_frame()) == [("one-partition", 0, 21, -1)]


def test_acks_zero_gets_no_answer_but_is_stored_in_order(broker):
    c = Conn(broker.bootstrap)
    metadata_v1_create(c, "fire")
    for i in range(5):
        c.request(PRODUCE, 3, produce_v3("fire", 0, record_batch([str(i).encode()]), acks=0))
    # The next answered request proves the five were processed before it.
    c.request(PRODUCE, 3, produce_v3("fire", 0, record_batch([b"last"])))
    assert parse_produce_v3(c.read_frame()) == [("fire", 0, 0, 5)]


def test_an_impossible_array_count_closes_the_connection_without_allocating(broker):
    # The fuzz finding: Fetch v4 whose partition array claims ~2^31 entries. The
    # codec would reserve gigabytes before failing; the broker must refuse it.
    body = bytes([
        0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0xf4, 0, 0, 0, 1, 0, 0x10, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0,
        0, 0, 0, 1, 0, 4, 0, 0, 0, 1, 0, 4, 0x73, 0x65, 0x65, 0x64, 0xff, 0, 0,
    ])
    for _ in range(20):
        c = Conn(broker.bootstrap)
        c.request(FETCH, 4, body)
        assert c.closed_by_peer()
    assert broker.proc.poll() is None
    assert api_versions_v0(Conn(broker.bootstrap))[0] == 0


def test_offset_for_leader_epoch_answers_the_log_end_for_epoch_zero(broker):
    c = Conn(broker.bootstrap)
    metadata_v1_create(c, "epochs")
    for i in range(3):
        c.request(PRODUCE, 3, produce_v3("epochs", 0, record_batch([b"a", b"b"])))
        c.read_frame()
    topic = struct.pack(">h", 6) + b"epochs"
    # v2: topics [name, partitions [partition, current_leader_epoch, leader_epoch]]
    parts = struct.pack(">i", 2) + struct.pack(">iii", 0, 0, 0) + struct.pack(">iii", 5, 0, 0)
    c.request(23, 2, struct.pack(">i", 1) + topic + parts)
    frame = c.read_frame()
    at = 4 + 4 + 4 + 2 + 6  # corr, throttle, topic count, name
    n = struct.unpack(">i", frame[at:at + 4])[0]
    got = [struct.unpack(">hiiq", frame[at + 4 + 18 * i:at + 22 + 18 * i]) for i in range(n)]
    assert got == [(0, 0, 0, 6), (3, 5, -1, -1)]


def test_list_offsets_sentinels_need_their_version_and_nothing_is_tiered(broker):
    """A timestamp sentinel sent at a version before it existed gets
    UNSUPPORTED_VERSION; the tiered ones find nothing to point at. Matches
    Apache Kafka 4.4 (KAFKA_BOOTSTRAP=host:port runs it there)."""
    import os
    import time
    from kafka_wire import list_offsets_flexible, list_offsets_v4

    c = Conn(os.environ.get("KAFKA_BOOTSTRAP") or broker.bootstrap)
    metadata_v1_create(c, "sentinels")
    time.sleep(0.5)
    c.request(PRODUCE, 3, produce_v3("sentinels", 0, record_batch([b"a", b"b"])))
    assert parse_produce_v3(c.read_frame())[0][2] == 0
    assert list_offsets_v4(c, "sentinels", 0, -1) == (0, 2)
    assert list_offsets_v4(c, "sentinels", 0, -3) == (35, -1)  # MAX_TIMESTAMP is v7+
    assert list_offsets_flexible(c, 7, "sentinels", 0, -3)[0] == 0
    assert list_offsets_flexible(c, 8, "sentinels", 0, -5)[0] == 35  # LATEST_TIERED is v9+
    assert list_offsets_flexible(c, 9, "sentinels", 0, -5) == (0, -1, -1, -1)
    assert list_offsets_flexible(c, 10, "sentinels", 0, -6) == (35, -1, -1, -1)  # v11+
    assert list_offsets_flexible(c, 11, "sentinels", 0, -6) == (0, -1, -1, -1)
    assert list_offsets_flexible(c, 11, "sentinels", 0, -1) == (0, -1, 2, 0)
    assert list_offsets_flexible(c, 11, "sentinels", 0, -2) == (0, -1, 0, 0)


def test_a_request_behind_a_fetch_long_poll_ends_the_poll(broker):
    """Answers go out in request order, so a request sent behind a fetch that is
    waiting for data would wait out the whole poll. librdkafka sends a newly
    assigned partition's ListOffsets on the connection it fetches on: the poll
    ends when the request arrives (with what there is), as a held heartbeat
    does."""
    import time

    from kafka_wire import string

    c = Conn(broker.bootstrap)
    metadata_v1_create(c, "polled")

    def fetch_v4(max_wait_ms):
        body = (struct.pack(">iiiib", -1, max_wait_ms, 1_000_000, 1_000_000, 0) + struct.pack(">i", 1)
                + string("polled") + struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1_000_000))
        return c.request(FETCH, 4, body)

    # Alone, the poll runs its course (nothing arrives to fill min_bytes).
    t0 = time.time()
    corr = fetch_v4(1500)
    assert struct.unpack(">i", c.read_frame()[:4])[0] == corr
    alone = time.time() - t0
    assert alone >= 1.4, f"the poll ended after {alone:.2f} s with nothing to send"
    # With a ListOffsets behind it, both are answered at once, in order.
    t0 = time.time()
    fetch = fetch_v4(30_000)
    offsets = c.request(2, 4, struct.pack(">ib", -1, 0) + struct.pack(">i", 1) + string("polled")
                        + struct.pack(">i", 1) + struct.pack(">iiq", 0, -1, -1))
    first, second = c.read_frame(), c.read_frame()
    took = time.time() - t0
    assert [struct.unpack(">i", f[:4])[0] for f in (first, second)] == [fetch, offsets]
    assert took < 5, f"the ListOffsets waited {took:.2f} s behind the fetch"
