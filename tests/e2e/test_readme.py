"""The README's quick tour, run as it stands: a first-time user copies it, so
it must work. It needs port 9092 free and the network for pip (as a user's
machine has)."""

import re
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tour_block():
    text = (ROOT / "README.md").read_text()
    section = text.split("## A quick tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the tour is one shell block"
    return blocks[0]


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_the_quick_tour_runs_as_written():
    if not port_free(9092):
        pytest.skip("port 9092 is taken; the tour uses Kafka's default port")
    # `kill %1` needs job control, as in an interactive shell.
    run = subprocess.run(["bash", "-m", "-e", "-c", tour_block()], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    records = [line for line in lines if "hello" in line]
    assert sorted(int(r.split()[-1]) for r in records) == list(range(10)), run.stdout
    offsets = {(int(r.split()[0]), int(r.split()[1])) for r in records}
    assert len(offsets) == 10  # ten distinct (partition, offset) pairs
    low, high = map(int, re.fullmatch(r"\((\d+), (\d+)\)", lines[-1]).groups())
    assert low == 0 and high == sum(1 for p, _ in offsets if p == 0)
