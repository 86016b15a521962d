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
