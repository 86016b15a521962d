"""Clients cannot make the broker hold memory it has not budgeted: frames are
buffered as their bytes arrive (never at their announced size), all requests
together hold at most --queued-max-request-bytes (clients wait, the broker does
not allocate), a frame that stops arriving and an idle connection are closed,
and a client failing in a loop is logged once a minute, not once per attempt."""

import socket
import struct
import threading
import time

from kafka_wire import Conn, produce_v3, parse_produce_v3, record_batch

API_VERSIONS, PRODUCE, METADATA = 18, 0, 3


def rss_kb(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def api_versions_ok(bootstrap):
    c = Conn(bootstrap)
    c.request(API_VERSIONS, 0, b"")
    corr, err = struct.unpack(">ih", c.read_frame()[:6])
    c.close()
    return err == 0


def test_frames_that_stall_hold_no_memory_and_are_closed(broker_factory):
    b = broker_factory(["--frame-read-timeout-ms", "2000"]).start()
    before = rss_kb(b.proc.pid)
    stalled = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", b.port))
        s.sendall(struct.pack(">i", 100_000_000) + b"\x00\x12" + b"\x00" * 8)
        stalled.append(s)
    time.sleep(0.5)
    # Twenty announced 100 MB frames hold their 10 bytes, not 2 GB.
    assert rss_kb(b.proc.pid) - before < 50_000, (before, rss_kb(b.proc.pid))
    assert api_versions_ok(b.bootstrap), "other clients are served meanwhile"
    time.sleep(2.5)
    for s in stalled:
        s.settimeout(5)
        assert s.recv(1) == b"", "closed once the frame stopped arriving"
    assert "did not arrive whole" in b.log()


def test_the_request_budget_makes_clients_wait_instead_of_the_broker_allocating(broker_factory):
    cap = 64 << 20
    b = broker_factory(["--queued-max-request-bytes", str(cap), "--max-request-size", str(20 << 20)]).start()
    c = Conn(b.bootstrap)
    c.request(METADATA, 1, struct.pack(">i", 1) + struct.pack(">h", 3) + b"big")
    c.read_frame()
    time.sleep(0.3)
    payload = produce_v3("big", 0, record_batch([b"v" * (16 << 20)]))
    answers = []
    lock = threading.Lock()

    def client():
        conn = Conn(b.bootstrap)
        conn.sock.settimeout(120)
        for _ in range(2):
            # All but the last bytes of a frame, a pause, then the rest: the
            # broker would hold every client's frame at once if it could.
            msg = struct.pack(">hhi", PRODUCE, 3, 1) + struct.pack(">h", 1) + b"x" + payload
            frame = struct.pack(">i", len(msg)) + msg
            conn.sock.sendall(frame[:-100])
            time.sleep(1)
            conn.sock.sendall(frame[-100:])
            got = parse_produce_v3(conn.read_frame())
            with lock:
                answers.append(got[0][2])
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    # 32 requests of 16 MB (512 MB) went through a 64 MB budget: every one was
    # answered (batches over max.message.bytes: MESSAGE_TOO_LARGE), and the
    # broker's peak memory stayed near the budget, not the total.
    assert answers == [10] * 32
    peak_mb = rss_kb(b.proc.pid, "VmHWM") / 1024
    print("peak MB", peak_mb)
    assert peak_mb < 2 * cap / (1 << 20) + 120, peak_mb


def test_an_idle_connection_is_closed_and_a_busy_one_is_not(broker_factory):
    b = broker_factory(["--connections-max-idle-ms", "1000"]).start()
    idle = Conn(b.bootstrap)
    idle.request(API_VERSIONS, 0, b"")
    idle.read_frame()
    busy = Conn(b.bootstrap)
    for _ in range(10):
        busy.request(API_VERSIONS, 0, b"")
        busy.read_frame()
        time.sleep(0.25)
    assert idle.closed_by_peer(timeout=1)
    busy.request(API_VERSIONS, 0, b"")
    assert struct.unpack(">ih", busy.read_frame()[:6])[1] == 0


def test_a_client_failing_in_a_loop_is_logged_once_a_minute(broker):
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", broker.port))
        s.sendall(struct.pack(">i", -7))
        s.settimeout(5)
        assert s.recv(1) == b""
        s.close()
    assert api_versions_ok(broker.bootstrap)
    lines = [l for l in broker.log().splitlines() if "closing connection" in l]
    assert len(lines) == 1, lines
