"""Just enough of Kafka's wire format, by hand, to send what no client would."""

import socket
import struct

_CRC32C = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _CRC32C.append(c)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def varint(v):
    z = (v << 1) ^ (v >> 63)
    out = b""
    while z >= 0x80:
        out += bytes([(z & 0x7F) | 0x80])
        z >>= 7
    return out + bytes([z])


def record_batch(values, ts=1_700_000_000_000):
    records = b""
    for i, v in enumerate(values):
        body = b"\x00" + varint(0) + varint(i) + varint(-1) + varint(len(v)) + v + varint(0)
        records += varint(len(body)) + body
    after_crc = struct.pack(">hiqqqhii", 0, len(values) - 1, ts, ts, -1, -1, -1, len(values)) + records
    crc = crc32c(after_crc)
    head = struct.pack(">iBI", -1, 2, crc)
    batch = head + after_crc
    return struct.pack(">qi", 0, len(batch)) + batch


def string(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class Conn:
    def __init__(self, bootstrap):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.corr = 0

    def send_raw(self, payload):
        self.sock.sendall(payload)

    def request(self, api_key, version, body, client_id="wire-test"):
        """Sends a request with a v1 header (non-flexible versions only)."""
        self.corr += 1
        msg = struct.pack(">hhi", api_key, version, self.corr) + string(client_id) + body
        self.sock.sendall(struct.pack(">i", len(msg)) + msg)
        return self.corr

    def read_frame(self):
        size = struct.unpack(">i", self._exact(4))[0]
        return self._exact(size)

    def _exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed by broker")
            out += chunk
        return out

    def closed_by_peer(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def produce_v3(topic, partition, records, acks=-1):
    return (string(None) + struct.pack(">hi", acks, 30000) + struct.pack(">i", 1) + string(topic)
            + struct.pack(">i", 1) + struct.pack(">ii", partition, len(records)) + records)


def parse_produce_v3(frame):
    """-> [(topic, partition, error, base_offset)]"""
    corr, n_topics = struct.unpack(">ii", frame[:8])
    at = 8
    out = []
    for _ in range(n_topics):
        (ln,) = struct.unpack(">h", frame[at:at + 2])
        name = frame[at + 2:at + 2 + ln].decode()
        at += 2 + ln
        (n_parts,) = struct.unpack(">i", frame[at:at + 4])
        at += 4
        for _ in range(n_parts):
            p, err, base, _ts = struct.unpack(">ihqq", frame[at:at + 22])
            at += 22
            out.append((name, p, err, base))
    return out


def record(i, value, key=None, ts_delta=0):
    """One v2 record at offset delta i."""
    def b(x):
        return varint(-1) if x is None else varint(len(x)) + x
    body = b"\x00" + varint(ts_delta) + varint(i) + b(key) + b(value) + varint(0)
    return varint(len(body)) + body


def raw_batch(payload, count, last_delta=None, ts=1_700_000_000_000, max_ts=None, attributes=0,
              producer=(-1, -1, -1), base_offset=0):
    """A v2 batch around `payload` with every header field as given and a correct CRC."""
    last_delta = count - 1 if last_delta is None else last_delta
    max_ts = ts if max_ts is None else max_ts
    pid, epoch, seq = producer
    after_crc = struct.pack(">hiqqqhii", attributes, last_delta, ts, max_ts, pid, epoch, seq, count) + payload
    batch = struct.pack(">iBI", -1, 2, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", base_offset, len(batch)) + batch


def produce_v8(topic, partition, records, acks=-1):
    """Produce v3-v8 share one request layout."""
    return produce_v3(topic, partition, records, acks)


def parse_produce_v8(frame):
    """-> [(topic, partition, error, base_offset, [(batch_index, message)], error_message)]"""
    def nstring(at):
        (n,) = struct.unpack(">h", frame[at:at + 2])
        if n < 0:
            return None, at + 2
        return frame[at + 2:at + 2 + n].decode(), at + 2 + n
    corr, n_topics = struct.unpack(">ii", frame[:8])
    at = 8
    out = []
    for _ in range(n_topics):
        name, at = nstring(at)
        (n_parts,) = struct.unpack(">i", frame[at:at + 4])
        at += 4
        for _ in range(n_parts):
            p, err, base, _ts, _start = struct.unpack(">ihqqq", frame[at:at + 30])
            at += 30
            (n_errs,) = struct.unpack(">i", frame[at:at + 4])
            at += 4
            errs = []
            for _ in range(n_errs):
                (idx,) = struct.unpack(">i", frame[at:at + 4])
                msg, at = nstring(at + 4)
                errs.append((idx, msg))
            msg, at = nstring(at)
            out.append((name, p, err, base, errs, msg))
    return out


def list_offsets_v4(conn, topic, partition, timestamp=-1):
    """-> (error, offset) of one partition (ListOffsets v4)."""
    body = (struct.pack(">ib", -1, 0) + struct.pack(">i", 1) + string(topic) + struct.pack(">i", 1)
            + struct.pack(">iiq", partition, -1, timestamp))
    conn.request(2, 4, body)
    frame = conn.read_frame()
    at = 4 + 4 + 4  # correlation id, throttle time, topic count
    (n,) = struct.unpack(">h", frame[at:at + 2])
    at += 2 + n + 4
    _p, err, _ts, offset, _epoch = struct.unpack(">ihqqi", frame[at:at + 26])
    return err, offset


def uvarint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def compact_string(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


def list_offsets_flexible(conn, version, topic, partition, timestamp):
    """-> (error, timestamp, offset, leader epoch) of one partition, at a
    flexible ListOffsets version (6 and later)."""
    conn.corr += 1
    header = struct.pack(">hhi", 2, version, conn.corr) + string("wire-test") + b"\x00"
    part = struct.pack(">iiq", partition, -1, timestamp) + b"\x00"
    body = (struct.pack(">ib", -1, 0) + uvarint(2) + compact_string(topic) + uvarint(2) + part + b"\x00"
            + (struct.pack(">i", 5000) if version >= 10 else b"") + b"\x00")
    msg = header + body
    conn.sock.sendall(struct.pack(">i", len(msg)) + msg)
    frame = conn.read_frame()
    # correlation id, header tags, throttle time, topic count (1), name
    at = 4 + 1 + 4 + 1
    n = frame[at] - 1
    at += 1 + n + 1  # name, partition count (1)
    _p, err, ts, offset, epoch = struct.unpack(">ihqqi", frame[at:at + 26])
    return err, ts, offset, epoch
