"""Every command the README shows: each `cohort` subcommand and benchmark it
names takes the flags it is shown with (checked against the binary's --help),
and the cheap ones run here for real, with the README's flags and smaller
numbers. (The quick tour runs as written in test_readme.py; scripts/test is
this suite; the lab and librdkafka's suite have their own tests.)"""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RELEASE = ROOT / "target" / "release"


def readme_commands():
    """(binary, subcommand or None, [flags]) for every cohort or cohort-bench
    command line in the README, in code blocks or inline code."""
    text = (ROOT / "README.md").read_text()
    snippets = re.findall(r"```(?:sh)?\n(.*?)```", text, re.S) + re.findall(r"`([^`\n]+)`", text)
    # Inline commands may wrap across lines inside one backtick pair.
    snippets += [m.replace("\n", " ") for m in re.findall(r"`(cargo run[^`]+)`", text)]
    found = set()
    for snippet in snippets:
        for line in snippet.splitlines():
            line = line.split("#")[0]
            m = re.search(r"cargo run --release -p (cohort(?:-bench)?)(?: --bin ([\w-]+))?(?: --(.*))?", line)
            if m:
                package, binary, rest = m.groups()
                binary = binary or package
            else:
                m = re.search(r"\./target/release/(cohort[\w-]*)(.*)", line)
                if not m:
                    continue
                binary, rest = m.groups()
            words = (rest or "").split()
            # A subcommand path is the words before the first flag (`lab run`).
            sub = []
            for w in words:
                if w.startswith("-") or not re.fullmatch(r"[a-z-]+", w):
                    break
                sub.append(w)
            if binary == "cohort" and not sub:
                continue
            flags = tuple(sorted(set(re.findall(r"(--[a-z][a-z0-9-]*)", rest or ""))))
            found.add((binary, " ".join(sub) if binary == "cohort" else None, flags))
    return sorted(found)


@pytest.fixture(scope="module")
def built():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "cohort", "-p", "cohort-bench"],
                   cwd=ROOT, check=True, timeout=1500)


def test_the_readme_shows_commands_at_all():
    commands = readme_commands()
    binaries = {c[0] for c in commands}
    assert {"cohort", "cohort-bench", "cohort-partitions-bench", "cohort-compaction-bench",
            "cohort-join-bench", "cohort-assignor-bench", "cohort-heartbeat-bench"} <= binaries, commands


def test_every_flag_the_readme_shows_exists(built):
    missing = []
    for binary, sub, flags in readme_commands():
        args = [str(RELEASE / binary)] + (sub.split() if sub else []) + ["--help"]
        out = subprocess.run(args, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, (args, out.stderr)
        missing += [(binary, sub, f) for f in flags if f"{f} " not in out.stdout and f"{f}\n" not in out.stdout
                    and f"{f}=" not in out.stdout and f != "--help"]
    assert not missing, missing


def run(args, timeout=300):
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert out.returncode == 0, (args, out.stdout[-2000:], out.stderr[-2000:])
    return out.stdout


def test_the_simulator_commands_run(built):
    for style in ("eager", "cooperative", "consumer"):
        out = run([str(RELEASE / "cohort"), "sim", "--seeds", "2", "--members", "20", "--partitions", "12",
                   "--style", style])
        seeds = [line for line in out.splitlines() if line.startswith("seed ")]
        assert len(seeds) == 2 and all(": ok in" in line for line in seeds), out
    run([str(RELEASE / "cohort"), "sim", "--seed", "17", "--members", "20", "--partitions", "12",
         "--style", "cooperative"])


def test_the_repair_commands_run_on_a_stopped_broker(broker, built):
    assert broker.stop() == 0
    dry = run([str(RELEASE / "cohort"), "repair", "--data-dir", str(broker.data_dir), "--dry-run"])
    real = run([str(RELEASE / "cohort"), "repair", "--data-dir", str(broker.data_dir)])
    assert dry and real
    broker.start()  # and it still starts


def test_the_benchmarks_run_with_small_numbers(built):
    bench = lambda name: str(RELEASE / name)  # noqa: E731
    assert "produce:" in run([bench("cohort-bench"), "--seconds", "1", "--fsync", "never"])
    assert "partitions created" in run([bench("cohort-partitions-bench"), "--partitions", "200", "--per-topic", "100",
                                        "--fsync", "never"])
    assert "cleaned in" in run([bench("cohort-compaction-bench"), "--megabytes", "4"])
    assert "joined" in run([bench("cohort-join-bench"), "--members", "40", "--step", "20"]).lower()
