"""The rebalance lab end to end, small: real librdkafka members against a Cohort the
lab starts itself. Checks what the lab must never get wrong (no acknowledged probe
record lost, no partition owned by two members, a steady group at the end), never
how fast."""

import json
import subprocess

from conftest import BIN


def lab(tmp_path, *args):
    out = tmp_path / "results"
    proc = subprocess.run(
        [str(BIN), "lab", "run", *args, "--members", "3", "--partitions", "6", "--quiet-ms", "3000",
         "--timeout-s", "60", "--check", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    assert (out / "report.html").exists()
    for r in runs:
        svg = (out / f"{slug(r)}.svg").read_text()
        assert svg.startswith("<svg") and "t0" in svg
    return runs, proc.stdout


def slug(r):
    s = r["spec"]
    proto = f"consumer-{s['assignor']}" if s["protocol"] == "consumer" else s["protocol"]
    client = "" if s["client"] == "librdkafka" else f"-{s['client']}"
    return f"{r['broker']}-{proto}-{s['scenario']}{client}"


def check(r, client="librdkafka"):
    f = r["figures"]
    assert r["converged"], r["spec"]
    assert f["missing"] == 0
    assert f["double_ownership"] == 0, f["double_ownership_examples"]
    assert f["produced"] > 0 and f["delivered_unique"] == f["produced"]
    assert f["jts_ms"] is not None
    assert r["client"].startswith({"librdkafka": "librdkafka ", "java": "Java kafka-clients "}[client])


def test_scale_out_with_every_protocol(tmp_path):
    runs, table = lab(tmp_path, "scale-out", "--protocol", "eager,cooperative,consumer")
    assert len(runs) == 3
    for r in runs:
        check(r)
        # The newcomer ended up with partitions.
        names = {m["name"]: m for m in r["timeline"]["members"]}
        assert any(s["state"] == "Consuming" for s in names["member-3"]["segments"])
    assert "| scale-out | cohort | eager |" in table


def test_killed_member_partitions_move_after_its_session_when_disconnects_are_ignored(tmp_path):
    # With the disconnect grace off (-1, Kafka's behaviour) nothing is
    # delivered from a dead member's partitions until its session times out.
    # (With it on, they move after its next heartbeat: test_groups_*.py.)
    runs, _ = lab(tmp_path, "crash", "--protocol", "consumer",
                  "--cohort-arg=--group-consumer-session-timeout-ms=6000",
                  "--cohort-arg=--group-member-disconnect-grace-ms=-1")
    for r in runs:
        check(r)
        assert r["figures"]["worst_gap_ms"] > 3000


def test_slow_revocation(tmp_path):
    runs, _ = lab(tmp_path, "slow", "--protocol", "consumer", "--revoke-ms", "1500")
    for r in runs:
        check(r)
        revoking = [s for m in r["timeline"]["members"] for s in m["segments"] if s["state"] == "Revoking"]
        assert any(s["end_ms"] - s["start_ms"] >= 1400 for s in revoking)
