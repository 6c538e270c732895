"""``koi live`` (inspector/cli_live.py) through its own parser, as inspector/cli.py
will mount it: the section 6 JSON, the table, streaming, and bad usage."""

from __future__ import annotations

import json
import os
import sys

import pytest

from inspector import cli_live
from inspector.cli import UsageError, _Parser

needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="samples through /proc")


def koi_live(*argv: str) -> int:
    parser = _Parser(prog="koi")
    cli_live.add_parser(parser.add_subparsers(dest="command", required=True))
    return cli_live.run(parser.parse_args(["live", *argv]))


@needs_proc
def test_once_json_is_the_section_6_document(capsys):
    assert koi_live("--once", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"time", "host", "cpus", "processes"}
    assert doc["host"] == "linux" and doc["cpus"] == os.cpu_count()
    me = next(p for p in doc["processes"] if p["pid"] == os.getpid())
    assert set(me) == {"pid", "ppid", "name", "create_time", "user_time_s",
                       "kernel_time_s", "threads"}
    assert me["ppid"] == os.getppid()
    assert {t["tid"] for t in me["threads"]} >= {os.getpid()}
    running = next(t for t in me["threads"] if t["tid"] == os.getpid())
    assert running["state"] == "Running"  # the thread sampling is itself on a CPU


@needs_proc
def test_once_table_shows_this_process_in_the_tree(capsys):
    assert koi_live("--once", "--threads") == 0
    out = capsys.readouterr().out.splitlines()
    # a "not sampled: N vanished" line comes first when a process exits mid-sample
    header = next(line for line in out if line.split()[:1] == ["PID"])
    assert header.split() == ["PID", "PPID", "THR", "PRI", "CLASS", "STATE", "CPU%",
                              "CPU", "TIME", "NAME"]
    mine = next(line for line in out if line.split()[:2] == [str(os.getpid()),
                                                            str(os.getppid())])
    assert mine.split()[6] == "-"  # one sample: no CPU % yet
    assert any(line.split()[:2] == ["tid", str(os.getpid())] for line in out)


@needs_proc
def test_once_with_an_interval_has_cpu_figures(capsys):
    assert koi_live("--once", "--interval", "100ms") == 0
    out = capsys.readouterr().out.splitlines()
    assert "interval" in out[0] and out[1].startswith("CPU0 ")
    mine = next(line for line in out if line.split()[0] == str(os.getpid()))
    float(mine.split()[6])


@needs_proc
def test_streaming_json_lines_for_a_duration(capsys):
    assert koi_live("--json", "--interval", "100ms", "--duration", "200ms") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3  # at 0, 100 and 200 ms
    docs = [json.loads(line) for line in lines]
    assert all(set(d) == {"time", "host", "cpus", "processes"} for d in docs)


@needs_proc
def test_save_records_every_sample_as_a_live_session(capsys, tmp_path):
    from core.session import open_session

    path = tmp_path / "live.koi"
    assert koi_live("--json", "--interval", "100ms", "--duration", "200ms",
                    "--save", str(path)) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3 and f"saved 3 samples to {path}" in err
    with open_session(path) as s:
        assert s.info().source == "live" and s.info().cpus == os.cpu_count()
        times = s.sample_times()
        assert len(times) == 3
        state = s.state_at(times[-1])
        me = next(p for p in state["processes"] if p["pid"] == os.getpid())
        assert me["threads"] and state["source"] == "live"


@needs_proc
def test_save_with_once_and_an_unwritable_path(capsys, tmp_path):
    assert koi_live("--once", "--json", "--save", str(tmp_path / "one.koi")) == 0
    assert "saved 1 sample to" in capsys.readouterr().err
    assert koi_live("--once", "--save", str(tmp_path / "no" / "dir" / "x.koi")) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--interval", "50ms"], "shorter than the shortest interval, 100ms"),
    (["--interval", "fast"], "is not a duration"),
    (["--duration", "0"], "not a positive duration"),
    (["--once", "--duration", "1s"], "--duration does not apply to --once"),
    (["--json", "--threads"], "--threads is for the table"),
    (["--source", "dtrace"], "invalid choice"),
    (["--once", "--save", "-"], "--save needs a file name"),
])
def test_bad_usage(argv, message):
    with pytest.raises(UsageError, match=message):
        koi_live(*argv)


def test_parser_is_cheap_to_build_and_names_every_source():
    import subprocess

    from core.live import SOURCES
    assert cli_live.SOURCES == SOURCES
    script = ("import sys, argparse; from inspector import cli_live; "
              "p = argparse.ArgumentParser(); cli_live.add_parser(p.add_subparsers()); "
              "print(sorted(m for m in ('core.live', 'core.kernel', 'numpy') "
              "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         check=True).stdout
    assert out.strip() == "[]"  # building `koi`'s parser loads no sampler, kernel or numpy


def test_cpu_time_text():
    assert cli_live.cpu_time_text(0.0) == "0:00:00.000"
    assert cli_live.cpu_time_text(3723.5) == "1:02:03.500"
    assert cli_live.cpu_time_text(None) == "-"


def test_tree_order_survives_cycles_and_orphans():
    from core.live import ProcessInfo

    procs = [ProcessInfo(pid=1, start_stamp=0, ppid=0), ProcessInfo(pid=5, start_stamp=0, ppid=1),
             ProcessInfo(pid=3, start_stamp=0, ppid=1), ProcessInfo(pid=7, start_stamp=0, ppid=99),
             ProcessInfo(pid=8, start_stamp=0, ppid=9), ProcessInfo(pid=9, start_stamp=0, ppid=8)]
    order = [(d, p.pid) for d, p in cli_live.tree_order(procs)]
    assert order[:4] == [(0, 1), (1, 3), (1, 5), (0, 7)]
    assert sorted(pid for _, pid in order) == [1, 3, 5, 7, 8, 9]  # each once
