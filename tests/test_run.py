"""``koi run``: a scenario run headless, its three outputs (formats.md §1-§3), in-process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core.runner import build_machine, run_scenario
from core.scenario import ScenarioError, parse_scenario
from inspector import cli

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "resources" / "scenarios").glob("*.toml"))

CSV_HEADER = ("time_us,cpu,old_pid,old_tid,old_priority,old_state,old_wait_reason,"
              "new_pid,new_tid,new_priority")

# S03 (reference scenarios): one CPU, A, B, C at base 8, CPU-bound, created in that order.
S03 = """\
[system]
cpus = 1
quantum = "client"
until = "250ms"

[[process]]
name = "spin.exe"

  [[process.thread]]
  name = "A"
  program = ["cpu 1s", "repeat"]

  [[process.thread]]
  name = "B"
  program = ["cpu 1s", "repeat"]

  [[process.thread]]
  name = "C"
  program = ["cpu 1s", "repeat"]
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(err: str) -> None:
    assert err.startswith("koi: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.fixture
def s03(tmp_path) -> Path:
    path = tmp_path / "s03.toml"
    path.write_text(S03)
    return path


# ---- S03 through koi run ---------------------------------------------------------------------

def test_s03_cswitch_csv_rows_exact(capsys, s03):
    status, out, err = run(capsys, "run", str(s03), "--until", "150ms", "--cswitch-csv", "-")
    assert (status, err) == (0, "")
    # The bare boot gives System (4) its 11 threads, tids 8..48, all waiting; so the
    # first user process is pid 52, and A, B, C are tids 56, 60, 64
    assert out.splitlines() == [
        CSV_HEADER,
        "0.000,0,0,0,0,Ready,,52,56,8",
        "31250.000,0,52,56,8,Ready,WrQuantumEnd,52,60,8",
        "62500.000,0,52,60,8,Ready,WrQuantumEnd,52,64,8",
        "93750.000,0,52,64,8,Ready,WrQuantumEnd,52,56,8",
        "125000.000,0,52,56,8,Ready,WrQuantumEnd,52,60,8",
    ]
    assert out.endswith("\n")


def test_s03_events_jsonl_time_ordered(capsys, s03):
    status, out, err = run(capsys, "run", str(s03), "--events-jsonl", "-")
    assert (status, err) == (0, "")
    events = [json.loads(line) for line in out.splitlines()]
    assert all(line == json.dumps(json.loads(line), separators=(",", ":"))
               for line in out.splitlines())  # compact, one object per line
    times = [e["time_us"] for e in events]
    assert all(isinstance(t, (int, float)) for t in times) and times == sorted(times)
    # the events start after boot: the scenario's own process comes first
    assert events[0] == {"time_us": 0.0, "type": "process_create", "pid": 52,
                         "name": "spin.exe", "parent_pid": None}
    assert [(e["type"], e["name"]) for e in events[1:4]] == [
        ("thread_create", "A"), ("thread_create", "B"), ("thread_create", "C")]
    assert all(e["pid"] == 52 for e in events[1:4])


def test_s03_state_json_shape(capsys, s03):
    status, out, err = run(capsys, "run", str(s03), "--state-json", "-")
    assert (status, err) == (0, "")
    state = json.loads(out)
    assert state["time_us"] == 250000.0 and state["jobs"] == []
    procs = {p["pid"]: p for p in state["processes"]}
    assert procs[0]["name"] == "Idle" and [t["tid"] for t in procs[0]["threads"]] == [0]
    assert procs[4]["name"] == "System" and procs[4]["protection"] == "pp-winsystem"
    assert [t["name"] for t in procs[4]["threads"]] == (
        ["KeBalanceSetManager", "KeSwapProcessOrStack"] + ["ExpWorkerThread"] * 9)
    assert {(t["state"], t["wait_reason"]) for t in procs[4]["threads"][2:]} == {
        ("Waiting", "WrQueue")}
    app = procs[52]
    assert app["name"] == "spin.exe" and app["exit_code"] == 259
    assert set(app) == {"pid", "name", "priority_class", "exit_code", "jobs", "protection",
                        "threads"}
    assert [t["name"] for t in app["threads"]] == ["A", "B", "C"]
    keys = {"tid", "name", "state", "wait_reason", "priority", "base_priority", "user_time_us",
            "kernel_time_us", "context_switches", "ideal_cpu", "affinity", "suspend_count",
            "fiber"}
    for t in app["threads"]:
        assert set(t) == keys
        assert (t["priority"], t["base_priority"], t["fiber"]) == (8, 8, None)
    # 250 ms = 8 quanta: A and B had 3 each, C 2; C is running at the end
    assert [t["user_time_us"] for t in app["threads"]] == [93750.0, 93750.0, 62500.0]
    assert [t["state"] for t in app["threads"]] == ["Ready", "Ready", "Running"]


def test_same_seed_byte_identical(tmp_path, capsys, s03):
    outs = []
    for n in range(2):
        files = [tmp_path / f"{n}.csv", tmp_path / f"{n}.jsonl", tmp_path / f"{n}.json"]
        status, _, err = run(capsys, "run", str(s03), "--seed", "7", "--cswitch-csv", str(files[0]),
                             "--events-jsonl", str(files[1]), "--state-json", str(files[2]))
        assert (status, err) == (0, "")
        outs.append([f.read_bytes() for f in files])
    assert outs[0] == outs[1]


def test_until_overrides_system_until(capsys, s03):
    status, out, _ = run(capsys, "run", str(s03), "--until", "0.05s", "--state-json", "-")
    assert status == 0 and json.loads(out)["time_us"] == 50000.0
    status, out, _ = run(capsys, "run", str(s03), "--until", "40", "--state-json", "-")
    assert status == 0 and json.loads(out)["time_us"] == 40000.0  # bare number: ms


def test_default_until_is_10s_without_system_until(tmp_path, capsys):
    path = tmp_path / "short.toml"
    path.write_text('[[process]]\nname = "p"\n  [[process.thread]]\n  name = "T"\n'
                    '  program = ["cpu 1ms"]\n')
    status, out, _ = run(capsys, "run", str(path), "--state-json", "-")
    assert status == 0 and json.loads(out)["time_us"] == 10_000_000.0


@pytest.mark.parametrize("until,fragment", [
    ("fast", "--until"), ("-5ms", "negative"), ("5 parsecs", "unit"), ("1e3ms", "--until")])
def test_bad_until_exits_2(capsys, s03, until, fragment):
    status, out, err = run(capsys, "run", str(s03), f"--until={until}")
    assert (status, out) == (2, "")
    assert_one_line_error(err)
    assert fragment in err


def test_bad_seed_exits_2(capsys, s03):
    status, _, err = run(capsys, "run", str(s03), "--seed", "x")
    assert status == 2
    assert_one_line_error(err)


# ---- the shipped examples ----------------------------------------------------------------------

@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_shipped_scenarios_run(capsys, path):
    status, out, err = run(capsys, "run", str(path), "--cswitch-csv", "-")
    assert (status, err) == (0, "")
    assert out.startswith(CSV_HEADER + "\n") and len(out.splitlines()) > 1


def test_affinity_example_job_limit_moves_batch_to_cpu1():
    r = run_scenario(parse_scenario((ROOT / "resources/scenarios/affinity.toml").read_text(),
                                    "affinity.toml"))
    state = r.state()
    batch = next(p for p in state["processes"] if p["name"] == "batch.exe")
    assert batch["jobs"] == ["cpu1"]
    assert batch["threads"][0]["affinity"] == [1]
    job = state["jobs"][0]
    assert (job["name"], job["active_processes"], job["total_processes"]) == ("cpu1", 1, 1)
    # B only ever runs on CPU 1
    rows = [line.split(",") for line in r.cswitch_csv().splitlines()[1:]]
    b_tid = batch["threads"][0]["tid"]
    assert {row[1] for row in rows if row[8] == str(b_tid)} == {"1"}


def test_boosts_example_keyboard_boost_and_decay():
    r = run_scenario(parse_scenario((ROOT / "resources/scenarios/boosts.toml").read_text(),
                                    "boosts.toml"))
    prio = [(e["time_us"], e["priority"]) for e in r.events
            if e["type"] == "priority" and e["name"] == "T"]
    assert prio[0] == (100000.0, 14) and prio[-1] == (287500.0, 8)
    assert not [e for e in r.events if e["type"] == "priority" and e["name"] == "N"]


def test_starvation_example_boost_at_5s():
    r = run_scenario(parse_scenario((ROOT / "resources/scenarios/starvation.toml").read_text(),
                                    "starvation.toml"))
    boosts = [e for e in r.events if e["type"] == "priority" and e["reason"] == "starvation"]
    assert [(e["name"], e["time_us"], e["priority"]) for e in boosts] == [("L", 5_000_000.0, 15)]
    exits = [e["name"] for e in r.events if e["type"] == "thread_exit"]
    assert exits == ["L", "H"]


# ---- semantics of the mapping ------------------------------------------------------------------

def test_later_start_actions_and_waits():
    sc = parse_scenario("""
[system]
cpus = 1
[[event]]
name = "go"
kind = "notification"
[[process]]
name = "waiter.exe"
  [[process.thread]]
  name = "W"
  program = ["wait go", "cpu 1ms", "exit 3"]
[[process]]
name = "late.exe"
start = "5ms"
  [[process.thread]]
  name = "L"
  program = ["wait W", "cpu 2ms", "exit 4"]
[[at]]
time = "10ms"
do = "set_event go"
""", "t.toml")
    r = run_scenario(sc, until_ns=50_000_000)
    ev = [(e["time_us"], e["type"], e.get("name"), e.get("exit_code")) for e in r.events]
    assert (5000.0, "process_create", "late.exe", None) in ev
    assert (11000.0, "thread_exit", "W", 3) in ev
    assert (13000.0, "thread_exit", "L", 4) in ev


def test_create_suspended_and_resume_action():
    sc = parse_scenario("""
[[process]]
name = "s.exe"
create_suspended = true
  [[process.thread]]
  name = "S"
  program = ["cpu 1ms"]
[[at]]
time = "20ms"
do = "resume S"
""", "t.toml")
    run = build_machine(sc)
    assert run.threads["S"].state_name == "Waiting"
    assert run.threads["S"].wait_reason_name == "Suspended"
    run.run_until(30_000_000)
    exits = [e for e in run.events if e["type"] == "thread_exit"]
    assert exits[0]["time_us"] == 21000.0


def test_child_inherits_idle_class_when_not_given():
    sc = parse_scenario("""
[[process]]
name = "parent.exe"
priority_class = "idle"
  [[process.thread]]
  name = "P"
[[process]]
name = "child.exe"
parent = "parent.exe"
  [[process.thread]]
  name = "C"
""", "t.toml")
    run = build_machine(sc)
    assert run.processes["child.exe"].priority_class == "idle"
    assert run.processes["child.exe"].parent_pid == run.processes["parent.exe"].pid


def test_explicit_class_wins_over_inheritance():
    # S01: an explicit class flag applies whatever the parent's class
    sc = parse_scenario("""
[[process]]
name = "parent.exe"
priority_class = "idle"
  [[process.thread]]
  name = "P"
[[process]]
name = "child.exe"
parent = "parent.exe"
priority_class = "above_normal"
  [[process.thread]]
  name = "C"
""", "t.toml")
    run = build_machine(sc)
    assert run.processes["child.exe"].priority_class == "above_normal"
    assert run.threads["C"].base == 10


def test_seed_overrides_system_seed():
    sc = parse_scenario("[system]\nseed = 3\n", "t.toml")
    assert build_machine(sc).machine.seed == 3
    assert build_machine(sc, seed=9).machine.seed == 9


# ---- bad input ---------------------------------------------------------------------------------

def test_malformed_scenario_exits_2_with_file_line_key(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[system]\ncpus = 2\n\n[[process]]\nname = "a"\npriorty_class = "high"\n')
    status, out, err = run(capsys, "run", str(path), "--cswitch-csv", "-")
    assert (status, out) == (2, "")
    assert_one_line_error(err)
    assert err.startswith(f"koi: {path}:6: process[0].priorty_class: ")


def test_unreadable_file_exits_2(tmp_path, capsys):
    status, out, err = run(capsys, "run", str(tmp_path / "missing.toml"))
    assert (status, out) == (2, "")
    assert_one_line_error(err)
    assert "missing.toml" in err


def test_a_job_limit_the_kernel_refuses_names_its_key(tmp_path, capsys):
    path = tmp_path / "j.toml"
    path.write_text('[system]\ncpus = 2\n\n[[job]]\nname = "J"\n[job.cpu_rate]\n'
                    'min_rate = 6000\nmax_rate = 8000\n\n[[job]]\nname = "K"\n[job.cpu_rate]\nmin_rate = 6000\nmax_rate = 8000\n')
    status, out, err = run(capsys, "run", str(path), "--state-json", "-")
    assert (status, out) == (2, "")
    assert_one_line_error(err)
    assert "j.toml:12: job[1].cpu_rate: job 'K': SetInformationJobObject fails: " in err
    assert "MinRates would add up to 12000" in err


def test_wait_on_thread_created_later_is_refused(tmp_path, capsys):
    path = tmp_path / "w.toml"
    path.write_text('[[process]]\nname = "p"\n  [[process.thread]]\n  name = "A"\n'
                    '  program = ["wait B"]\n  [[process.thread]]\n  name = "B"\n')
    status, _, err = run(capsys, "run", str(path))
    assert status == 2
    assert_one_line_error(err)
    assert "w.toml:5: process[0].thread[0].program[0]: " in err and "'B'" in err


def test_action_before_target_exists_is_refused():
    sc = parse_scenario('[[process]]\nname = "p"\nstart = "10ms"\n  [[process.thread]]\n'
                        '  name = "A"\n[[at]]\ntime = "5ms"\ndo = "suspend A"\n', "a.toml")
    with pytest.raises(ScenarioError) as info:
        build_machine(sc)
    assert str(info.value).startswith("a.toml:7: at[0].time: ")


def test_livelocked_program_exits_2(tmp_path, capsys):
    path = tmp_path / "l.toml"
    path.write_text('[[event]]\nname = "e"\nkind = "notification"\n[[process]]\nname = "p"\n'
                    '  [[process.thread]]\n  name = "T"\n  program = ["set e", "repeat"]\n')
    status, _, err = run(capsys, "run", str(path))
    assert status == 2
    assert_one_line_error(err)
    assert "l.toml:8: process[0].thread[0].program: " in err


# ---- writing files -----------------------------------------------------------------------------

def test_output_files_written_atomically(tmp_path, capsys, s03):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "trace.csv"
    target.write_text("old contents\n")
    status, _, err = run(capsys, "run", str(s03), "--cswitch-csv", str(target),
                         "--state-json", str(out / "state.json"))
    assert (status, err) == (0, "")
    assert target.read_text().startswith(CSV_HEADER + "\n")
    assert json.loads((out / "state.json").read_text())["time_us"] == 250000.0
    assert sorted(p.name for p in out.iterdir()) == ["state.json", "trace.csv"]  # no temp left
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "state.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_leaves_no_partial_file(tmp_path, capsys, s03, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "trace.csv"
    target.write_text("old contents\n")

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    status, _, err = run(capsys, "run", str(s03), "--cswitch-csv", str(target))
    assert status == 2
    assert_one_line_error(err)
    assert "cannot write" in err and "No space left on device" in err
    assert target.read_text() == "old contents\n"
    assert [p.name for p in out.iterdir()] == ["trace.csv"]


def test_unwritable_directory_exits_2(tmp_path, capsys, s03):
    status, _, err = run(capsys, "run", str(s03), "--events-jsonl",
                         str(tmp_path / "no" / "such" / "dir" / "e.jsonl"))
    assert status == 2
    assert_one_line_error(err)
    assert "cannot write" in err


def test_bad_scenario_writes_nothing(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[[job]]\nname = "J"\n[job.cpu_rate]\nhard_cap = 0\n')
    target = tmp_path / "state.json"
    status, _, _ = run(capsys, "run", str(path), "--state-json", str(target))
    assert status == 2 and not target.exists()


def test_jobs_example_messages_and_cap():
    r = run_scenario(parse_scenario((ROOT / "resources/scenarios/jobs.toml").read_text(),
                                    "jobs.toml"))
    msgs = [(e["time_us"], e["job"], e["message"]) for e in r.events if e["type"] == "job_message"]
    assert (100000.0, "sandbox", "ACTIVE_PROCESS_LIMIT") in msgs
    assert (93750.0, "timed", "END_OF_PROCESS_TIME") in msgs
    assert msgs[-1] == (800000.0, "sandbox", "ACTIVE_PROCESS_ZERO")
    late = next(e for e in r.events if e["type"] == "process_exit" and e["name"] == "late.exe")
    assert late["exit_code"] == 1816
    capped = next(j for j in r.state()["jobs"] if j["name"] == "capped")
    # 25 % of two CPUs for 800 ms, to within a millisecond per interval
    assert 396000 <= capped["total_user_time_us"] <= 408000


def test_fibers_example_one_thread_for_the_scheduler():
    r = run_scenario(parse_scenario((ROOT / "resources/scenarios/fibers.toml").read_text(),
                                    "fibers.toml"))
    rows = [line.split(",") for line in r.cswitch_csv().splitlines()[1:]]
    t_tid = str(r.run.threads["T"].tid)
    # T leaves the CPU only when H preempts it (twice: at creation, at 7 ms) and at exit
    assert [(row[0], row[5], row[6]) for row in rows if row[3] == t_tid] == [
        ("0.000", "Ready", "WrPreempted"), ("7000.000", "Ready", "WrPreempted"),
        ("13000.000", "Terminated", "")]
    assert not [e for e in r.events if e["type"] == "priority" and e["name"] == "T"]
    fls = [(e["time_us"], e["value"], e["fiber"]) for e in r.events if e["type"] == "fls_callback"]
    assert fls == [(13000.0, 11, "F1"), (13000.0, 22, "F2")]
    assert r.run.threads["T"].exit_code == 1


def test_io_complete_action_ends_the_threads_io_early_with_its_boost():
    """``io_complete T DEVICE`` finds the outstanding ``io DEVICE`` by the device's name."""
    scenario = parse_scenario("""\
[system]
cpus = 1
until = "100ms"

[[process]]
name = "typist.exe"

  [[process.thread]]
  name = "T"
  program = ["io keyboard 1s", "cpu 1ms", "exit 0"]

[[at]]
time = "10ms"
do = "io_complete T keyboard"
""", "io.toml")
    result = run_scenario(scenario)
    events = [e for e in result.events if e.get("type") in ("api_error", "thread_exit")]
    assert not [e for e in events if e["type"] == "api_error"]
    exit_time = next(e["time_us"] for e in events if e["type"] == "thread_exit")
    assert 10_000 <= exit_time < 20_000  # woke at 10 ms (not after the 1 s I/O), ran 1 ms
