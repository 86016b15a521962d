"""Kafka Connect as a real client: a distributed worker (connect-runtime 4.4.0)
starts against Cohort, creates its compacted config, offset and status topics,
forms its group (protocol type "connect"), copies a file end to end with a
file source and a file sink connector, and a second worker joining takes work
over. Kafka's own file connectors (connect-file) are not on Maven Central at
4.4.0, and 4.3.1's do not run on the 4.4 runtime: interop/connect has its own,
which store their source position in Connect's offsets topic as Kafka's do.

Needs Java and `mvn -q -B -f interop/connect/pom.xml compile` (the connectors
in interop/connect/target/classes, the classpath in target/classpath.txt)."""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
CLASSPATH = ROOT / "interop" / "connect" / "target" / "classpath.txt"
CLASSES = ROOT / "interop" / "connect" / "target" / "classes"


def rest(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
        return json.loads(text) if text else None


def wait_for(what, predicate, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            got = predicate()
            if got:
                return got
        except (urllib.error.URLError, ConnectionError, OSError, KeyError, ValueError):
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


class Worker:
    def __init__(self, tmp, bootstrap, name):
        self.port = free_port()
        self.id = f"127.0.0.1:{self.port}"
        props = tmp / f"{name}.properties"
        props.write_text("\n".join([
            f"bootstrap.servers={bootstrap}",
            "group.id=cohort-connect",
            "key.converter=org.apache.kafka.connect.storage.StringConverter",
            "value.converter=org.apache.kafka.connect.storage.StringConverter",
            "config.storage.topic=connect-configs",
            "offset.storage.topic=connect-offsets",
            "status.storage.topic=connect-status",
            "config.storage.replication.factor=1",
            "offset.storage.replication.factor=1",
            "status.storage.replication.factor=1",
            "offset.flush.interval.ms=500",
            f"listeners=http://127.0.0.1:{self.port}",
            f"rest.advertised.host.name=127.0.0.1",
            f"rest.advertised.port={self.port}",
            "",
        ]))
        cp = f"{CLASSES}:{CLASSPATH.read_text().strip()}"
        self.log_path = tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            ["java", "-Xmx512m", "-cp", cp, "org.apache.kafka.connect.cli.ConnectDistributed", str(props)],
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT)

    def log(self):
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def workers_running(port, connector):
    s = rest(port, "GET", f"/connectors/{connector}/status")
    states = [s["connector"]] + s["tasks"]
    return {t["worker_id"] for t in states} if all(t["state"] == "RUNNING" for t in states) and s["tasks"] else None


@pytest.mark.skipif(shutil.which("java") is None or not CLASSPATH.exists(),
                    reason="needs java and `mvn -q -B -f interop/connect/pom.xml compile`")
def test_a_connect_cluster_copies_a_file_and_shares_its_work(broker, tmp_path):
    source_file, sink_file = tmp_path / "in.txt", tmp_path / "out.txt"
    source_file.write_text("".join(f"line {i}\n" for i in range(100)))
    first = Worker(tmp_path, broker.bootstrap, "worker1")
    second = None
    try:
        wait_for("the first worker's REST API", lambda: rest(first.port, "GET", "/"), 90)
        # Its topics exist and are compacted, as Connect insists.
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for topic in ("connect-configs", "connect-offsets", "connect-status"):
            r = ConfigResource(ConfigResource.Type.TOPIC, topic)
            assert admin.describe_configs([r])[r].result(timeout=10)["cleanup.policy"].value == "compact"

        rest(first.port, "POST", "/connectors", {"name": "file-in", "config": {
            "connector.class": "cohort.connect.LinesSourceConnector",
            "tasks.max": "1", "file": str(source_file), "topic": "connect-lines"}})
        rest(first.port, "POST", "/connectors", {"name": "file-out", "config": {
            "connector.class": "cohort.connect.LinesSinkConnector",
            "tasks.max": "1", "file": str(sink_file), "topics": "connect-lines"}})
        expected = [f"line {i}" for i in range(100)]
        wait_for("the file copied end to end",
                 lambda: sink_file.exists() and sink_file.read_text().splitlines() == expected, 90)

        # A second worker joins: the group rebalances and it takes work over.
        second = Worker(tmp_path, broker.bootstrap, "worker2")
        wait_for("the second worker's REST API", lambda: rest(second.port, "GET", "/"), 90)

        def spread():
            ids = set()
            for name in ("file-in", "file-out"):
                running = workers_running(first.port, name)
                if not running:
                    return None
                ids |= running
            return ids if ids == {first.id, second.id} else None

        wait_for("work on both workers", spread, 90)
        with source_file.open("a") as f:
            f.write("".join(f"line {i}\n" for i in range(100, 150)))
        expected += [f"line {i}" for i in range(100, 150)]
        wait_for("the appended lines copied after the rebalance",
                 lambda: sink_file.read_text().splitlines() == expected, 90)
    except Exception:
        print("worker1 log:\n" + first.log())
        if second:
            print("worker2 log:\n" + second.log())
        print("broker log:\n" + broker.log())
        raise
    finally:
        for w in (second, first):
            if w:
                w.stop()
