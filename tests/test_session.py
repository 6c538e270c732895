"""Saved sessions (.koi): replay equality, refusals, atomic saves, migration, retention,
the codec, comparisons and `koi session info`."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import __version__
from core.kernel import Machine, ms
from core.kernel import program as P
from core.kernel.constants import CYCLES_PER_NS
from core.layouts import DEFAULT_ARCH, DEFAULT_BUILD
from core.runner import run_scenario
from core.scenario import parse_scenario
from core.session import (
    SCHEMA_VERSION,
    Recorder,
    SessionError,
    compare_sessions,
    compare_states,
    open_session,
    record_scenario,
    save_run,
)
from core.session import codec
from core.session import recorder as recorder_module
from core.session.layout import COLUMNS
from core.session.migrate import upgrade_file

ROOT = Path(__file__).resolve().parent.parent


# ---- a machine with some life in it ----------------------------------------------------------

def build_machine(events: list | None = None) -> Machine:
    """Two CPUs; threads that compute, sleep, do I/O, signal each other; a process created
    later, one terminated, a thread suspended and resumed, priorities changed: objects
    come and go while the recorder samples. Deterministic, so a twin is identical."""
    m = Machine(cpus=2)
    if events is not None:
        m.subscribe(events.append)
    ev = m.create_event("ev", "synchronization")
    a = m.create_process("a.exe", foreground=True)
    m.create_thread(a, "normal", program=[P.cpu(ms(3)), P.set_event(ev), P.sleep(ms(2)), P.repeat()],
                    name="producer")
    m.create_thread(a, "above_normal", program=[P.wait(ev), P.cpu(ms(1)), P.repeat()], name="consumer")
    b = m.create_process("b.exe", "below_normal")
    hog = m.create_thread(b, "normal", program=[P.cpu(ms(40)), P.yield_(), P.repeat()], name="hog")
    m.create_thread(b, "normal", program=[P.io("disk", ms(4)), P.cpu(ms(2)), P.repeat()], name="io")
    m.create_thread(b, "normal", program=[P.cpu(ms(12)), P.exit_thread(3)], name="short")

    def spawn():
        c = m.create_process("late.exe", "high")
        m.create_thread(c, "normal", program=[P.cpu(ms(5)), P.sleep(ms(5)), P.repeat()], name="late")
        m.at(ms(70), m.terminate_process, c, 9)

    m.at(ms(23), spawn)
    m.at(ms(31), m.suspend_thread, hog)
    m.at(ms(47), m.resume_thread, hog)
    m.at(ms(55), m.set_thread_priority, hog, "highest")
    m.dispatch()
    return m


def record(interval_ns=ms(5), until_ns=ms(90), **kw) -> tuple[Recorder, list]:
    events: list = []
    m = build_machine(events)
    rec = Recorder(m, interval_ns=interval_ns, past_events=list(events), **kw)
    rec.run_until(until_ns, sample_end=True)
    return rec, events


def fingerprint(path: Path) -> tuple:
    st_ = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st_.st_mtime_ns, st_.st_size


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    rec, _ = record(keyframe_every=4)
    path = tmp_path_factory.mktemp("sessions") / "run.koi"
    rec.save(path)
    return path


# ---- replay ----------------------------------------------------------------------------------

def test_state_at_every_sample_equals_the_simulation(saved):
    twin = build_machine()  # never recorded: the oracle
    with open_session(saved) as s:
        times = s.sample_times()
        assert len(times) == 90 // 5 + 1
        for t in times:
            twin.run_until(round(t * 1000))
            assert s.state_at(t) == twin.state(), t
        # between samples: the last sample at or before t
        for t0, t1 in zip(times, times[1:]):
            assert s.state_at((t0 + t1) / 2) == s.state_at(t0)
        # backwards, so the forward-only cache is not what answers
        for t in times[::-3]:
            assert s.state_at(t)["time_us"] == t
        with pytest.raises(SessionError, match="starts at"):
            s.state_at(-1.0)


def test_recording_does_not_change_the_simulation():
    plain = build_machine()
    plain.run_until(ms(90))
    expected = plain.trace.columns()
    for interval in (ms(1), 15_625_000, 7_000_001):
        rec, _ = record(interval_ns=interval)
        got = rec.machine.trace.columns()
        assert all(np.array_equal(got[k], expected[k]) for k in expected), interval


def test_trace_and_events_round_trip(saved):
    events: list = []
    twin = build_machine(events)
    twin.run_until(ms(90))
    cols = twin.trace.columns()
    with open_session(saved) as s:
        whole = s.trace_window(-1.0, 1e12)
        assert set(whole) == set(cols)
        for k in cols:
            assert whole[k].dtype == cols[k].dtype and np.array_equal(whole[k], cols[k]), k
        # a window holds the switches whose time, to the ns, is inside it (ends included)
        ns = (cols["time"] + 1) // CYCLES_PER_NS
        t0, t1 = ns[10] / 1000, ns[40] / 1000
        part = s.trace_window(t0, t1)
        keep = (ns >= ns[10]) & (ns <= ns[40])
        assert np.array_equal(part["time"], cols["time"][keep]) and keep.sum() >= 31
        assert len(s.trace_window(1e9, 2e9)["time"]) == 0
        assert s.events() == events
        assert s.events(20_000, 60_000) == [e for e in events if 20_000 <= e["time_us"] <= 60_000]
        assert s.events(types={"process_exit"}) == [e for e in events if e["type"] == "process_exit"]
        info = s.info()
        assert info.switches == len(cols["time"]) and info.events == len(events)


def test_info_and_object_lifetimes(saved):
    with open_session(saved) as s:
        info = s.info()
        assert (info.source, info.build, info.arch) == ("simulation", DEFAULT_BUILD, DEFAULT_ARCH)
        assert info.app_version == __version__ and info.schema_version == SCHEMA_VERSION
        assert (info.start_us, info.end_us, info.cpus) == (0.0, 90_000.0, 2)
        assert info.interval_us == 5000.0 and info.samples == 19 and info.keyframes == 5
        assert info.cpu_samples == 19
        late = [o for o in s.objects("process") if o["name"] == "late.exe"]
        # created at 23 ms, terminated at 70 ms: a sample at t holds everything due at t,
        # so it is in the samples from 25 ms to 65 ms and gone from the 70 ms one
        assert late == [{"kind": "process", "pid": late[0]["pid"], "tid": None, "job": None,
                         "name": "late.exe", "first_us": 25_000.0, "last_us": 65_000.0,
                         "gone_us": 70_000.0}]
        short = [o for o in s.objects("thread") if o["name"] == "short"]
        assert short[0]["gone_us"] is not None
        cpu = s.cpu_samples()
        assert cpu["busy_us"].shape == (19, 2)
        assert np.allclose(cpu["busy_us"][-1] + cpu["idle_us"][-1], 90_000.0)


def test_compare_two_moments_and_two_sessions(saved, tmp_path):
    with open_session(saved) as s:
        c = s.compare(20_000, 40_000)  # late.exe created at 23 ms, hog suspended at 31 ms
        assert [p["name"] for p in c.processes_created] == ["late.exe"]
        assert "late" in [t["name"] for t in c.threads_created]
        hog_pid = next(p["pid"] for p in s.state_at(0)["processes"] if p["name"] == "b.exe")
        hog_tid = next(t["tid"] for p in s.state_at(0)["processes"] for t in p["threads"]
                       if t["name"] == "hog")
        changed = c.changed_fields("thread", [hog_pid, hog_tid])
        assert changed["suspend_count"] == (0, 1)
        assert s.compare(60_000, 80_000).processes_gone[0]["name"] == "late.exe"
        json.dumps(c.as_dict())  # the comparison is plain data
        # the same recording with another interval: equal states at common instants
        rec, _ = record(interval_ns=ms(10))
        rec.save(tmp_path / "other.koi")
        with open_session(tmp_path / "other.koi") as other:
            same = compare_sessions(s, 40_000, other, 40_000)
            assert not (same.changes or same.processes_created or same.threads_gone)


def test_compare_states_sees_a_reused_pid():
    def doc(t, procs):
        return {"time_us": t, "processes": procs, "jobs": []}
    a = doc(0.0, [{"pid": 8, "name": "old.exe", "create_time_us": 0.0, "threads": []}])
    b = doc(1.0, [{"pid": 8, "name": "new.exe", "create_time_us": 0.5, "threads": []}])
    c = compare_states(a, b)
    assert [p["name"] for p in c.processes_created] == ["new.exe"]
    assert [p["name"] for p in c.processes_gone] == ["old.exe"]
    assert c.changed_fields("system", None) == {"time_us": (0.0, 1.0)}


# ---- scenarios: koi run --save ---------------------------------------------------------------

SCENARIO = """
[system]
cpus = 2
until = "120ms"

[[event]]
name = "go"
kind = "notification"

[[process]]
name = "w.exe"
  [[process.thread]]
  name = "W"
  program = ["wait go", "cpu 30ms", "exit 1"]
  [[process.thread]]
  name = "S"
  program = ["sleep 3ms", "cpu 2ms", "repeat"]

[[process]]
name = "h.exe"
start = "10ms"
  [[process.thread]]
  name = "H"
  program = ["cpu 500ms"]

[[at]]
time = "40ms"
do = "set_event go"
"""


def test_record_scenario_matches_run_scenario(tmp_path):
    scenario = parse_scenario(SCENARIO, "demo.toml")
    recorded = record_scenario(scenario, until_ns=ms(110))
    plain = run_scenario(scenario, until_ns=ms(110))
    for render in ("cswitch_csv", "events_jsonl", "state_json"):
        assert getattr(recorded.result, render)() == getattr(plain, render)()
    save_run(recorded, tmp_path / "demo.koi")
    with open_session(tmp_path / "demo.koi") as s:
        info = s.info()
        assert info.name == "demo.toml" and info.description == SCENARIO
        assert info.end_us == 110_000.0 and info.extra == {"seed": 0, "until_us": 110_000.0}
        assert s.state_at(110_000) == plain.machine.state()
        assert s.events() == plain.events
    # a plain run (no recorder attached): its final state, the whole trace, every event
    save_run(plain, tmp_path / "plain.koi", scenario_text="edited")
    with open_session(tmp_path / "plain.koi") as s:
        assert s.info().samples == 1 and s.info().description == "edited"
        assert s.state_at(110_000) == plain.machine.state()
        assert len(s.trace_window(0, 110_000)["time"]) == len(plain.machine.trace)


# ---- live-style sources ---------------------------------------------------------------------

def live_docs() -> list[dict]:
    def proc(pid, name, created, threads=None, **extra):
        p = {"pid": pid, "ppid": 1, "name": name, "create_time_us": created, **extra}
        if threads is not None:
            p["threads"] = threads
        return p

    def thread(tid, state, n):
        return {"tid": tid, "state": state, "context_switches": n, "native": {"nice": 0}}
    return [
        {"time_us": 0.0, "host": "linux", "cpus": 2, "processes": [
            proc(1, "init", 1.0, [thread(1, "Waiting", 10)]),
            proc(40, "sh", 2.0, [thread(40, "Running", 1), thread(41, "Waiting", 2)])]},
        {"time_us": 1e6, "host": "linux", "cpus": 2, "processes": [
            proc(1, "init", 1.0, [thread(1, "Waiting", 11)]),
            proc(40, "sh", 2.0, [thread(41, "Waiting", 2), thread(40, "Ready", 5)]),
            proc(77, "unreadable", 3.0, access="denied")]},
        {"time_us": 2e6, "host": "linux", "cpus": 2, "uptime_s": 9.5, "processes": [
            proc(1, "init", 1.0, [thread(1, "Waiting", 11)]),
            proc(40, "vim", 7.0, [thread(90, "Running", 1)])],  # pid 40 reused
         "jobs": [{"name": "J", "active_processes": 1}]},
        {"time_us": 3e6, "cpus": 2, "processes": "not a list",
         "jobs": [{"name": "J", "active_processes": 0}, {"name": "K"}]},
    ]


def test_documents_fed_by_a_live_source_round_trip():
    rec = Recorder(None, source="live", description="linux 6.1, 2 CPUs", cpus=2, keyframe_every=2)
    docs = live_docs()
    for d in docs:
        rec.add_state(d["time_us"], d)
        rec.add_cpu_sample(d["time_us"], [1.0, 2.0], [3.0, 4.0])
    rec.add_event({"time_us": 5.0, "type": "process_create", "pid": 40, "name": "sh"})
    with rec.to_session() as s:
        for d in json.loads(json.dumps(docs)):
            assert s.state_at(d["time_us"]) == d
        info = s.info()
        assert (info.source, info.description, info.interval_us) == ("live", "linux 6.1, 2 CPUs", 0.0)
        assert len(s.trace_window(0, 1e12)["time"]) == 0
        sh = [(o["name"], o["first_us"], o["gone_us"]) for o in s.objects("process") if o["pid"] == 40]
        assert sh == [("sh", 0.0, 2e6), ("vim", 2e6, 3e6)]
        assert s.events() == [{"time_us": 5.0, "type": "process_create", "pid": 40, "name": "sh"}]


def test_sampling_resumes_on_its_grid_after_the_machine_ran_alone():
    m = build_machine()
    rec = Recorder(m, interval_ns=ms(5))
    rec.run_until(ms(10))
    m.run_until(ms(23))  # someone ran the machine without the recorder
    rec.run_until(ms(40), sample_end=True)
    rec.run_until(ms(42), sample_end=True)
    with rec.to_session() as s:
        assert list(s.sample_times()) == [0.0, 5000.0, 10000.0, 25000.0, 30000.0, 35000.0,
                                          40000.0, 42000.0]


def test_recorder_refuses_bad_input():
    rec = Recorder(None)
    rec.add_state(5.0, {"time_us": 5.0})
    with pytest.raises(SessionError, match="earlier than the previous sample"):
        rec.add_state(4.0, {"time_us": 4.0})
    with pytest.raises(SessionError, match="not JSON data"):
        rec.add_state(6.0, {"time_us": 6.0, "x": object()})
    with pytest.raises(SessionError, match="time_us"):
        rec.add_event({"type": "priority"})
    with pytest.raises(SessionError, match="no machine"):
        rec.run_until(10)
    with pytest.raises(SessionError, match="interval"):
        Recorder(Machine(), interval_ns=0)


# ---- retention ------------------------------------------------------------------------------

def test_retention_keeps_the_last_window(monkeypatch):
    monkeypatch.setattr(recorder_module, "TRACE_CHUNK_ROWS", 16)
    rec, _ = record(interval_ns=ms(1), until_ns=ms(90), keyframe_every=4, retention_ns=ms(20))
    twin = build_machine()
    with rec.to_session() as s:
        times = s.sample_times()
        # whole keyframe groups are dropped: at least 20 ms kept, less than 20 + 4 ms
        assert 20_000 <= times[-1] - times[0] < 24_000
        for t in times[::5]:
            twin.run_until(round(t * 1000))
            assert s.state_at(t) == twin.state()
        trace = s.trace_window(-1, 1e12)
        # the trace is cut a chunk at a time: less than a chunk (16 rows here) before the window
        before = int((trace["time"] < times[0] * 1000 * CYCLES_PER_NS).sum())
        assert before < 16 and len(trace["time"]) < len(rec.machine.trace) - 16
        full = rec.machine.trace.columns()["time"]
        assert np.array_equal(trace["time"], full[len(full) - len(trace["time"]):])
        assert s.cpu_samples()["time_us"][0] >= times[0]


def test_memory_is_bounded_by_max_bytes():
    m = build_machine()
    rec = Recorder(m, interval_ns=ms(1), keyframe_every=8, max_bytes=30_000)
    peak = 0
    for stop in range(10, 200, 10):
        rec.run_until(ms(stop))
        peak = max(peak, rec.nbytes)
    assert peak < 30_000 + 10_000  # at most one keyframe group over the budget
    assert rec.samples < 200


# ---- refusals ------------------------------------------------------------------------------

def _copy(saved: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copyfile(saved, target)
    return target


def _with_sql(path: Path, *statements: str) -> Path:
    conn = sqlite3.connect(path)
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()
    return path


def _refusals(saved: Path, tmp_path: Path):
    text = tmp_path / "notes.koi"
    text.write_text("just some text, long enough to be more than a header\n" * 4)
    empty = tmp_path / "empty.koi"
    empty.write_bytes(b"")
    data = saved.read_bytes()
    half = tmp_path / "half.koi"
    half.write_bytes(data[:len(data) // 2])
    odd = tmp_path / "odd.koi"
    odd.write_bytes(data[:len(data) - 100])
    newer = tmp_path / "newer.koi"
    newer.write_bytes(data[:60] + (SCHEMA_VERSION + 1).to_bytes(4, "big") + data[64:])
    foreign = _with_sql(tmp_path / "foreign.koi", "CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")
    trigger = _with_sql(_copy(saved, tmp_path, "trigger.koi"),
                        "CREATE TRIGGER boom AFTER INSERT ON event_chunk BEGIN SELECT 1; END")
    view = _with_sql(_copy(saved, tmp_path, "view.koi"), "CREATE VIEW v AS SELECT * FROM trace_chunk")
    missing = _with_sql(_copy(saved, tmp_path, "missing.koi"), "DROP TABLE cpu_sample")
    return [
        (text, "not a KOI session (not an SQLite database)"),
        (empty, "not a KOI session (the file is empty)"),
        (half, "truncated session file"),
        (odd, "truncated session file"),
        (newer, f"written by a newer KOI (session schema {SCHEMA_VERSION + 1}"),
        (foreign, "not a KOI session (an SQLite database of another application)"),
        (trigger, "carries a trigger of its own ('boom')"),
        (view, "carries a view of its own ('v')"),
        (missing, "damaged session file (no table 'cpu_sample')"),
        (tmp_path / "absent.koi", "cannot read: No such file or directory"),
        (tmp_path, "is a directory"),
    ]


def test_bad_files_are_refused_and_left_untouched(saved, tmp_path):
    cases = _refusals(saved, tmp_path)
    before = {p: fingerprint(p) for p, _ in cases if p.is_file()}
    listing = sorted(os.listdir(tmp_path))
    for path, message in cases:
        with pytest.raises(SessionError) as info:
            open_session(path)
        text = str(info.value)
        assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text
    assert {p: fingerprint(p) for p in before} == before
    assert sorted(os.listdir(tmp_path)) == listing  # no journal or -shm left beside them


def test_reading_never_modifies_the_file(saved):
    before = fingerprint(saved)
    listing = sorted(os.listdir(saved.parent))
    with open_session(saved) as s:
        s.info()
        s.state_at(45_000)
        s.trace_window(0, 90_000)
        s.events()
        s.compare(0, 90_000)
    assert fingerprint(saved) == before
    assert sorted(os.listdir(saved.parent)) == listing


def test_damaged_contents_raise_session_errors_only(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    for offset in range(4096, len(data), 4096):  # every page after the header page
        data[offset + 200:offset + 1200] = os.urandom(1000)
    bad = tmp_path / "scrambled.koi"
    bad.write_bytes(bytes(data))
    with pytest.raises(SessionError, match=r"scrambled\.koi: "):
        with open_session(bad) as s:
            s.state_at(45_000)
            s.trace_window(0, 90_000)
            s.events()


# ---- saving ---------------------------------------------------------------------------------

CHILD = r"""
import sys
sys.path.insert(0, {root!r})
from core.kernel import Machine, ms
from core.kernel import program as P
from core.session import Recorder, store

real_insert = store._insert
calls = 0

def insert_then_stop(conn, table, rows):
    global calls
    real_insert(conn, table, rows)
    calls += 1
    if calls == 3:  # the state samples are in the temporary file, the rest is not
        print("MIDWAY", flush=True)
        sys.stdin.read()  # wait here to be killed

store._insert = insert_then_stop
m = Machine(cpus=1)
p = m.create_process("x.exe")
m.create_thread(p, "normal", program=[P.cpu(ms(1)), P.sleep(ms(1)), P.repeat()])
rec = Recorder(m, interval_ns=ms(1))
rec.run_until(ms(50))
rec.save({path!r})
print("SAVED", flush=True)
"""


def test_a_save_killed_midway_leaves_the_previous_file(saved, tmp_path):
    target = _copy(saved, tmp_path, "precious.koi")
    before = fingerprint(target)
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(target))],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        line = child.stdout.readline()
        assert line == "MIDWAY\n", child.stderr.read()
        temps = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
        assert temps and os.path.getsize(tmp_path / temps[0]) > 0  # really midway
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
        child.stdout.close()
        child.stderr.close()
        child.stdin.close()
    assert child.returncode == -signal.SIGKILL
    assert fingerprint(target) == before
    with open_session(target) as s:
        assert s.info().end_us == 90_000.0


def test_save_replaces_the_file_whole(saved, tmp_path):
    target = _copy(saved, tmp_path, "replace.koi")
    os.chmod(target, 0o640)
    rec = Recorder(None)
    rec.add_state(1.0, {"time_us": 1.0, "processes": []})
    rec.save(target)
    assert (target.stat().st_mode & 0o777) == 0o640
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []
    with open_session(target) as s:
        assert s.info().samples == 1 and s.state_at(1.0) == {"time_us": 1.0, "processes": []}
    with pytest.raises(SessionError, match="cannot write"):
        rec.save(tmp_path / "no" / "such" / "dir.koi")


# ---- migration ------------------------------------------------------------------------------

def make_version_1(saved: Path, path: Path) -> Path:
    """`saved` as the first schema wrote it: no arch column, no cpu_sample table."""
    shutil.copyfile(saved, path)
    return _with_sql(path, "ALTER TABLE session_meta DROP COLUMN arch", "DROP TABLE cpu_sample",
                     "PRAGMA user_version = 1")


def test_an_older_version_opens_through_a_migration(saved, tmp_path):
    old = make_version_1(saved, tmp_path / "v1.koi")
    before = fingerprint(old)
    with open_session(saved) as current, open_session(old) as s:
        info = s.info()
        assert info.schema_version == 1 and info.arch == "x64" and info.cpu_samples == 0
        for t in current.sample_times()[::3]:
            assert s.state_at(t) == current.state_at(t)
        assert s.events() == current.events()
    assert fingerprint(old) == before
    assert upgrade_file(old, tmp_path / "v2.koi") == 1
    assert fingerprint(old) == before
    with open_session(tmp_path / "v2.koi") as s:
        assert s.info().schema_version == SCHEMA_VERSION
        assert s.state_at(90_000)["time_us"] == 90_000.0


def test_reader_columns_match_the_sqlmodel_tables():
    from core.session.schema import METADATA, TABLES

    assert {t.__tablename__ for t in TABLES} == set(COLUMNS) == set(METADATA.tables)
    for name, table in METADATA.tables.items():
        assert tuple(c.name for c in table.columns) == COLUMNS[name]


# ---- the codec ------------------------------------------------------------------------------

_fields = st.fixed_dictionaries({
    "name": st.sampled_from(["a", "b", "c"]),
    "priority": st.integers(0, 31),
    "state": st.sampled_from(["Ready", "Waiting", "Running"]),
    "user_time_us": st.floats(0, 1e6, allow_nan=False),
}, optional={"affinity": st.lists(st.integers(0, 3), max_size=3),
             "native": st.dictionaries(st.sampled_from(["x", "y"]), st.integers(), max_size=2),
             "exit_code": st.none() | st.integers(0, 300)})


@st.composite
def _doc(draw):
    # Few pids and tids, so that consecutive documents share objects whose fields, field
    # sets, order and shape (keyed list or not) change between them.
    pids = draw(st.lists(st.sampled_from([4, 8, 12]), unique=True, max_size=3))
    procs = []
    for pid in pids:
        p = dict(draw(_fields), pid=pid)
        shape = draw(st.sampled_from(["threads"] * 6 + ["none", "odd"]))
        if shape == "threads":
            tids = draw(st.lists(st.sampled_from([pid + 100, pid + 104, pid + 108]),
                                 unique=True, max_size=3))
            p["threads"] = [dict(draw(_fields), tid=t) for t in tids]
        elif shape == "odd":
            p["threads"] = "unreadable"
        procs.append(p)
    doc = {"time_us": draw(st.floats(0, 1e9, allow_nan=False)), "cpus": draw(st.integers(1, 4))}
    shape = draw(st.sampled_from(["keyed"] * 8 + ["absent", "unkeyable"]))
    if shape == "keyed":
        doc["processes"] = procs
    elif shape == "unkeyable":
        doc["processes"] = procs + procs[:1]  # a repeated pid: stored whole
    jobs = draw(st.lists(st.sampled_from(["J", "K", "L"]), unique=True, max_size=3))
    if draw(st.booleans()):
        doc["jobs"] = [{"name": j, "active": draw(st.integers(0, 3))} for j in jobs]
    if draw(st.booleans()):
        doc["extra"] = draw(st.lists(st.integers(), max_size=2))
    return doc


@settings(max_examples=60, deadline=None)
@given(st.lists(_doc(), min_size=1, max_size=8))
def test_deltas_rebuild_every_document(docs):
    docs = json.loads(json.dumps(docs))  # what a file can hold
    prev = codec.flatten(docs[0])
    rebuilt = codec.flatten(json.loads(json.dumps(docs[0])))
    assert codec.materialize(rebuilt) == docs[0]
    for doc in docs[1:]:
        cur = codec.flatten(doc)
        delta = json.loads(json.dumps(codec.diff(prev, cur)))
        codec.apply(rebuilt, delta)
        assert codec.materialize(rebuilt) == doc
        prev = cur


@settings(max_examples=60, deadline=None)
@given(st.lists(_doc(), min_size=1, max_size=8), st.data())
def test_processes_handed_over_again_record_as_copies_would(docs, data):
    """A source that rebuilds only what changed (core.live's ViewStateBuilder) hands an
    unchanged process over as the very dict it gave before; the recorder takes that as
    unchanged without looking. Recorded that way or as fresh copies, a session is the
    same: every state, every object's lifetime."""
    docs = json.loads(json.dumps(docs))
    for i, doc in enumerate(docs):
        doc["time_us"] = i * 1000.0
        before = {p["pid"]: p for p in (docs[i - 1].get("processes") or ()) if i}
        procs = doc.get("processes")
        if _keyed_pids(procs) and _keyed_pids(docs[i - 1].get("processes") if i else None):
            doc["processes"] = [before[p["pid"]] if p["pid"] in before and data.draw(
                st.booleans()) else p for p in procs]
    sessions = []
    for fed in (docs, json.loads(json.dumps(docs))):
        rec = Recorder(None, source="live", keyframe_every=3)
        for doc in fed:
            rec.add_state(doc["time_us"], doc)
        sessions.append(rec.to_session())
    with sessions[0] as a, sessions[1] as b:
        for doc in docs:
            assert a.state_at(doc["time_us"]) == b.state_at(doc["time_us"]) == \
                json.loads(json.dumps(doc))
        order = lambda o: json.dumps(o, sort_keys=True)  # noqa: E731
        assert sorted(a.objects(), key=order) == sorted(b.objects(), key=order)


def _keyed_pids(procs) -> bool:
    """Is `procs` a processes list the codec decomposes (dicts with distinct pids)?"""
    return isinstance(procs, list) and len({p["pid"] for p in procs}) == len(procs)


def test_trace_chunks_round_trip_any_integers():
    rng = np.random.default_rng(7)
    n = 1000
    cols = {name: rng.integers(np.iinfo(dt).min, np.iinfo(dt).max, n, dtype=dt, endpoint=True)
            for name, dt in codec.TRACE_DTYPES.items()}
    cols["time"] = np.sort(rng.integers(0, 2**62, n, dtype=np.int64))
    t_first, _, layout, blob = codec.encode_trace_chunk(cols, 100, 900)
    back = codec.decode_trace_chunk(t_first, 800, layout, blob)
    for k in cols:
        assert back[k].dtype == cols[k].dtype and np.array_equal(back[k], cols[k][100:900]), k
    with pytest.raises(SessionError, match="damaged trace chunk"):
        codec.decode_trace_chunk(t_first, 801, layout, blob)


# ---- koi session info -----------------------------------------------------------------------

def _cli(*argv: str) -> argparse.Namespace:
    from inspector import cli_session

    parser = argparse.ArgumentParser(prog="koi")
    cli_session.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_koi_session_info(saved, capsys):
    from inspector import cli_session

    assert cli_session.run(_cli("session", "info", str(saved))) == 0
    out = capsys.readouterr().out
    assert f"session schema {SCHEMA_VERSION}" in out
    assert f"build        {DEFAULT_BUILD} x64, 2 CPUs" in out
    assert "time span    0ms to 90ms (90ms): 19 states, one every 5ms" in out
    assert cli_session.run(_cli("session", "info", str(saved), "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == "simulation" and data["end_us"] == 90_000.0 and data["samples"] == 19


def test_koi_session_info_refuses_a_bad_file(tmp_path):
    from inspector import cli_session
    from inspector.cli import UsageError

    bad = tmp_path / "x.koi"
    bad.write_text("hello")
    with pytest.raises(UsageError, match=r"x\.koi: not a KOI session"):
        cli_session.run(_cli("session", "info", str(bad)))


def test_replay_equality_with_jobs(tmp_path):
    """Jobs (nested, capped, limit-failed, terminated) replay exactly as they ran."""
    text = (ROOT / "resources/scenarios/jobs.toml").read_text()
    scenario = parse_scenario(text, "jobs.toml")
    rec = record_scenario(scenario, interval_ns=50_000_000)
    path = tmp_path / "jobs.koi"
    rec.save(path)
    twin = run_scenario(scenario, until_ns=0).run  # the oracle, run alongside
    with open_session(path) as s:
        times = s.sample_times()
        assert len(times) > 10
        seen_jobs = set()
        for t in times:
            twin.run_until(round(t * 1000))
            state = twin.machine.state()
            assert s.state_at(t) == state, t
            seen_jobs.update(j["name"] for j in state["jobs"])
    assert seen_jobs == {"sandbox", "capped", "timed"}


@settings(max_examples=30, deadline=None)
@given(t1=st.integers(0, 12_000), limit=st.integers(0, 9_000), after=st.integers(-1, 12_000))
def test_events_before_is_the_tail_of_events_in_the_window(events_session, t1, limit, after):
    """events_before reads chunks newest first but answers as events() would."""
    everything = [e for e in events_session.events() if after < e["time_us"] <= t1]
    expected = everything[len(everything) - limit:] if limit else []
    assert events_session.events_before(float(t1), limit, after_us=float(after)) == expected


@pytest.fixture(scope="module")
def events_session():
    """10,000 events over three chunks, several at each instant (the order of one
    instant's events must survive a chunk boundary)."""
    rec = Recorder(None, source="live", description="events", cpus=1)
    rec.add_state(0.0, {"processes": []})
    for i in range(10_000):
        rec.add_event({"time_us": float(i // 3), "type": "priority", "seq": i})
    with rec.to_session() as s:
        yield s
