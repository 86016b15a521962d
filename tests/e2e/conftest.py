"""Starts a real `cohort serve` process per test on a free loopback port."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("COHORT_BIN", ROOT / "target" / "release" / "cohort"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerProcess:
    def __init__(self, data_dir, extra_args=()):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = self.data_dir.parent / f"cohort-{self.port}.log"

    def start(self):
        assert BIN.exists(), f"{BIN} missing: build it with cargo build --release -p cohort"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--listen", self.bootstrap, "--data-dir", str(self.data_dir), *self.extra_args],
            stdout=log,
            stderr=log,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("broker did not start listening within 30 s")

    def stop(self):
        """SIGTERM, and the clean-shutdown contract: exit 0 within the drain time."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@pytest.fixture
def broker(tmp_path):
    b = BrokerProcess(tmp_path / "data").start()
    yield b
    b.kill()


@pytest.fixture
def broker_factory(tmp_path):
    made = []

    def make(extra_args=()):
        b = BrokerProcess(tmp_path / f"data{len(made)}", extra_args)
        made.append(b)
        return b

    yield make
    for b in made:
        b.kill()
