"""Scenario files: the typed model, every class of error with its FILE:LINE: KEY, and fuzzing."""

import json
import pickle
import textwrap
from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core.scenario
from core.resources import resource_path
from core.scenario import (
    IO_INCREMENTS, MAX_CPUS, MAX_DWORD, MAX_LONG, PRIORITY_CLASSES, VALID_PRIORITIES, Assign,
    CloseJobHandle, Commit, Cpu, CpuRate, Exit, FiberConvert, FiberCreate, FiberDelete,
    FiberSwitch, FiberToThread, FlsAlloc, FlsFree, FlsSet, Io, IoComplete, OpenProcess, PulseEvent,
    ReleaseMutex, ReleaseSemaphore, Repeat, ResetEvent, Resume, ScenarioError, SetAffinity,
    SetEvent, SetForeground, SetPriority, SetPriorityClass, SetPrioritySeparation,
    SetThreadPriority, Sleep, Step, Suspend, TerminateJob, TerminateProcess, TerminateThread, Wait,
    Yield, format_key, load_scenario, parse_scenario,
)
from core.units import UnitError, format_duration, format_size, parse_duration, parse_size

# formats.md §2's example as printed there, with three edits it needs to be a valid
# machine: cpus = 2 (it gives affinity [0, 1] and ideal_cpu 1), and the job J0 and the
# process explorer.exe it refers to are declared (it names them but does not declare them).
SPEC_EXAMPLE = '''
[system]
cpus = 2                      # 1..64
build = "10.0.19041.3570"     # layout used for memory views (this is the default: Windows 10 22H2 x64)
quantum = "client"            # "client" (Win32PrioritySeparation 0x2) or "server" (0x18)
# win32_priority_separation = 0x26   # optional, overrides `quantum`
boot = "bare"                 # "bare": Idle (pid 0, one idle thread per CPU) + System (pid 4, protected
                              # WinSystem, with its worker threads) only; "desktop": a realistic boot set
until = "2s"                  # default run length
seed = 0

[[event]]                     # dispatcher objects; also [[semaphore]] (initial, maximum), [[mutex]]
name = "ev1"
kind = "synchronization"      # or "notification"
signaled = false

[[job]]
name = "J0"

[[job]]
name = "J"
parent = "J0"                 # optional: nested job (Windows 8+ rules)
completion_port = true        # messages are written to the events output
[job.limits]                  # every key optional; names follow JOBOBJECT_*_LIMIT_INFORMATION
active_process = 2
affinity = [0]
priority_class = "below_normal"
scheduling_class = 5
per_process_user_time = "100ms"
per_job_user_time = "1s"
end_of_job_time_action = "terminate"   # or "post"
process_memory = "64MiB"
job_memory = "256MiB"
kill_on_job_close = true
breakaway_ok = false
silent_breakaway_ok = false
[job.cpu_rate]                # one of: hard_cap = 2000 | weight = 5 | min_rate/max_rate
hard_cap = 2000

[[process]]
name = "explorer.exe"
  [[process.thread]]
  name = "explorer"
  program = ["wait ev1"]

[[process]]
name = "app.exe"              # unique within the scenario; used to refer to it
priority_class = "normal"     # idle | below_normal | normal | above_normal | high | realtime
foreground = false
start = "0ms"                 # creation time
parent = "explorer.exe"       # optional; the creator (its first thread performs the creation)
job = "J"                     # optional; assigned right after creation
breakaway = false             # CREATE_BREAKAWAY_FROM_JOB
create_suspended = false
protection = "none"           # none | pp-winsystem | pp-wintcb | ppl-wintcb | ppl-windows | ppl-lsa | ppl-antimalware | ppl-authenticode
disable_boost = false         # SetProcessPriorityBoost
affinity = [0, 1]             # default: all CPUs

  [[process.thread]]          # the first thread listed is the initial thread
  name = "A"                  # unique within the scenario
  priority = "normal"         # idle | lowest | below_normal | normal | above_normal | highest | time_critical, or an integer -15..15
  start = "0ms"               # default: with its process
  affinity = [1]
  ideal_cpu = 1
  disable_boost = false
  program = ["cpu 10ms", "wait ev1", "exit 7"]

[[at]]                        # things done to the machine from outside, at a time
time = "100ms"
do = "set_event ev1"
'''

EXAMPLES = ["round_robin", "boosts", "starvation", "affinity"]


def error_of(text: str, filename: str = "t.toml") -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(textwrap.dedent(text), filename)
    return info.value


def marked_line(text: str) -> int:
    """The 1-based line of the one line marked ``# <--`` in (dedented) `text`."""
    lines = textwrap.dedent(text).split("\n")
    hits = [i + 1 for i, line in enumerate(lines) if "# <--" in line]
    assert len(hits) == 1
    return hits[0]


def check(text: str, key: str | None, fragment: str) -> ScenarioError:
    """The error names the marked line and `key`, and its message contains `fragment`."""
    err = error_of(text)
    prefix = f"t.toml:{marked_line(text)}: " + (f"{key}: " if key else "")
    assert str(err).startswith(prefix), str(err)
    assert fragment in err.message, str(err)
    assert "\n" not in str(err)
    return err


def one_thread(program: str, head: str = "") -> str:
    """A scenario with objects to refer to and one thread running `program` (a TOML array)."""
    return head + textwrap.dedent(f'''
        [system]
        cpus = 2
        [[event]]
        name = "ev"
        kind = "notification"
        [[semaphore]]
        name = "sem"
        maximum = 3
        [[mutex]]
        name = "mx"
        [[job]]
        name = "J"
        [programs]
        worker = ["cpu 1ms", "fiber_switch main"]
        [[process]]
        name = "p.exe"
          [[process.thread]]
          name = "main"
          program = {program}
    ''')


def at(action: str) -> str:
    return one_thread('["wait ev"]') + f'[[at]]\ntime = "1ms"\ndo = "{action}"  # <--\n'


# --- Valid files ----------------------------------------------------------------------------------

def test_spec_example_parses_to_the_model():
    sc = parse_scenario(SPEC_EXAMPLE, "spec.toml")
    assert sc.filename == "spec.toml"
    assert sc.system.cpus == 2 and sc.system.until_ns == 2_000_000_000 and sc.until_ns == 2 * 10**9
    assert sc.system.build == "10.0.19041.3570" and sc.system.boot == "bare"
    assert sc.system.priority_separation == 0x2
    assert sc.events[0].kind == "synchronization" and not sc.events[0].signaled
    job = sc.job("J")
    assert job.parent == "J0" and job.completion_port
    lim = job.limits
    assert (lim.active_process, lim.affinity, lim.priority_class, lim.scheduling_class) == \
        (2, (0,), "below_normal", 5)
    assert lim.per_process_user_time_ns == 100_000_000 and lim.per_job_user_time_ns == 10**9
    assert lim.process_memory_bytes == 64 << 20 and lim.job_memory_bytes == 256 << 20
    assert lim.kill_on_job_close and not lim.breakaway_ok and not lim.silent_breakaway_ok
    assert lim.limit_flags == 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x80 | 0x100 | 0x200 | 0x2000
    assert job.cpu_rate == CpuRate(hard_cap=2000) and job.cpu_rate.control_flags == 0x5
    app = sc.process("app.exe")
    assert (app.parent, app.job, app.affinity, app.protection) == \
        ("explorer.exe", "J", (0, 1), "none")
    a = sc.thread("A")
    assert a.process == "app.exe" and a.priority == 0 and a.affinity == (1,) and a.ideal_cpu == 1
    assert a.program == (Cpu(10_000_000), Wait("ev1", "event", None), Exit(7))
    assert sc.at[0].time_ns == 100_000_000 and sc.at[0].action == SetEvent("ev1")
    assert [t.name for t in sc.threads] == ["explorer", "A"]
    assert sc.kind_of("J0") == "job" and sc.kind_of("A") == "thread" and sc.kind_of("x") is None


def test_spec_example_verbatim_names_what_it_does_not_declare():
    verbatim = SPEC_EXAMPLE.replace('[[job]]\nname = "J0"\n\n', "", 1)
    err = error_of(verbatim, "spec.toml")
    assert str(err) == ("spec.toml:19: job[0].parent: no job named 'J0'; did you mean 'J'?")


@pytest.mark.parametrize("name", EXAMPLES)
def test_shipped_example_scenarios_parse(name):
    path = resource_path(f"scenarios/{name}.toml")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#"), "each example opens with a comment saying what to watch"
    sc = load_scenario(path)
    assert sc.processes and sc.system.until_ns is not None
    assert sc.source == text
    names = {p.name for p in sc.processes} | {t.name for t in sc.threads}
    assert all(sc.kind_of(n) in ("process", "thread") for n in names)
    if name == "round_robin":
        assert sc.thread("A").program == (Cpu(10**9), Repeat())


def test_the_complete_file_in_docs_parses():
    doc = (resource_path("..") / "docs" / "scenarios.md").read_text(encoding="utf-8")
    block = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    sc = parse_scenario(block, "docs/scenarios.md")
    assert sc.semaphore("slots").maximum == 4 and sc.programs["worker"][1] == FiberSwitch("A")


def test_scenarios_pickle_for_worker_processes():
    sc = parse_scenario(one_thread('"worker"') + '[[at]]\ntime = 1\ndo = "set_affinity main 1"\n')
    again = pickle.loads(pickle.dumps(sc))
    assert again == sc and again.thread("main").program == sc.programs["worker"]
    assert again.kind_of("ev") == "event"


def test_defaults():
    sc = parse_scenario('[[process]]\nname = "p"\n[[process.thread]]\nname = "t"\n')
    s = sc.system
    assert (s.cpus, s.build, s.quantum, s.win32_priority_separation, s.boot, s.until_ns,
            s.seed) == (1, "10.0.19041.3570", "client", None, "bare", None, 0)
    assert sc.until_ns == 10 * 10**9
    p = sc.process("p")
    assert (p.priority_class, p.foreground, p.start_ns, p.parent, p.job, p.breakaway,
            p.create_suspended, p.protection, p.disable_boost, p.affinity) == \
        ("normal", False, 0, None, None, False, False, "none", False, (0,))
    t = sc.thread("t")
    assert (t.priority, t.start_ns, t.affinity, t.ideal_cpu, t.disable_boost, t.program) == \
        (0, 0, (0,), None, False, ())
    assert parse_scenario("").processes == ()


def test_system_quantum_and_separation():
    sc = parse_scenario('[system]\nquantum = "server"\ncpus = 64\nboot = "desktop"\nseed = 7\n')
    assert sc.system.priority_separation == 0x18 and sc.system.cpus == 64
    sc = parse_scenario('[system]\nquantum = "server"\nwin32_priority_separation = 0x26\n')
    assert sc.system.priority_separation == 0x26
    assert parse_scenario('[system]\nbuild = "19041"\n').system.build == "19041"


def test_every_step_kind():
    program = '''[
        "cpu 31.25ms", "kcpu 2", "wait ev", "wait sem 10ms", "wait mx 0", "wait p.exe",
        "wait main 1 s", "sleep 0", "yield", "io disk 5ms", "io sound 1ms", "set ev",
        "reset ev", "pulse ev", "release sem", "release sem 2", "release_mutex mx",
        "commit 64MiB", "decommit 4 KiB", "set_priority highest", "set_priority -2",
        "fiber_convert", "fiber_create f1 worker", "fiber_switch f1", "fiber_delete f1",
        "fiber_to_thread", "fls_alloc s", "fls_set s 0x10", "fls_free s", "exit -1"]'''
    steps = parse_scenario(one_thread(program)).thread("main").program
    assert steps == (
        Cpu(31_250_000), Cpu(2_000_000, kernel=True), Wait("ev", "event"),
        Wait("sem", "semaphore", 10_000_000), Wait("mx", "mutex", 0), Wait("p.exe", "process"),
        Wait("main", "thread", 10**9), Sleep(0), Yield(), Io("disk", 5_000_000, 1),
        Io("sound", 1_000_000, 8), SetEvent("ev"), ResetEvent("ev"), PulseEvent("ev"),
        ReleaseSemaphore("sem", 1), ReleaseSemaphore("sem", 2), ReleaseMutex("mx"),
        Commit(64 << 20), Commit(4096, release=True), SetPriority(2), SetPriority(-2),
        FiberConvert(), FiberCreate("f1", "worker"), FiberSwitch("f1"), FiberDelete("f1"),
        FiberToThread(), FlsAlloc("s"), FlsSet("s", 16), FlsFree("s"), Exit(0xFFFFFFFF))
    assert [str(s) for s in steps[:4]] == ["cpu 31.25ms", "kcpu 2ms", "wait ev", "wait sem 10ms"]
    assert str(steps[19]) == "set_priority highest" and str(steps[-1]) == "exit 4294967295"
    assert steps[0].op == "cpu" and steps[-1].op == "exit"
    assert not hasattr(steps[0], "__dict__")  # slots: cheap steps for the interpreter
    printed = "[" + ", ".join(f'"{s}"' for s in steps) + "]"
    assert parse_scenario(one_thread(printed)).thread("main").program == steps


def test_io_devices_carry_their_boost():
    assert IO_INCREMENTS == {"disk": 1, "cdrom": 1, "parallel": 1, "video": 1, "mailslot": 2,
                             "namedpipe": 2, "network": 2, "serial": 2, "keyboard": 6,
                             "mouse": 6, "sound": 8}
    program = str([f"io {d} 1ms" for d in IO_INCREMENTS]).replace("'", '"')
    steps = parse_scenario(one_thread(program)).thread("main").program
    assert [(s.device, s.increment) for s in steps] == list(IO_INCREMENTS.items())


def test_program_by_name_and_fibers_named_after_threads():
    sc = parse_scenario(one_thread('"worker"'))
    assert sc.thread("main").program == (Cpu(1_000_000), FiberSwitch("main"))
    assert sc.programs["worker"] == sc.thread("main").program


def test_every_action_kind():
    head = one_thread('["wait ev"]')
    actions = ["set_event ev", "suspend main", "resume main", "terminate_thread main 3",
               "terminate_process p.exe 0x10", "set_priority main time_critical",
               "set_priority_class p.exe realtime", "set_affinity main 0,1",
               "set_affinity main [0, 1]", "set_affinity main 1", "set_affinity main 0-1",
               "set_foreground p.exe", "set_priority_separation 0x26", "assign p.exe J",
               "terminate_job J 42", "close_job_handle J", "open_process p.exe p.exe 0x1010",
               "io_complete main keyboard"]
    text = head + "".join(f'[[at]]\ntime = "{i}ms"\ndo = "{a}"\n' for i, a in enumerate(actions))
    got = [a.action for a in parse_scenario(text).at]
    assert got == [
        SetEvent("ev"), Suspend("main"), Resume("main"), TerminateThread("main", 3),
        TerminateProcess("p.exe", 16), SetThreadPriority("main", 15),
        SetPriorityClass("p.exe", "realtime"), SetAffinity("main", (0, 1)),
        SetAffinity("main", (0, 1)), SetAffinity("main", (1,)), SetAffinity("main", (0, 1)),
        SetForeground("p.exe"), SetPrioritySeparation(0x26), Assign("p.exe", "J"),
        TerminateJob("J", 42), CloseJobHandle("J"), OpenProcess("p.exe", "p.exe", 0x1010),
        IoComplete("main", "keyboard")]
    assert got[7].mask == 0b11
    assert [str(a) for a in got[:2]] == ["set ev", "suspend main"]
    assert str(got[12]) == "set_priority_separation 0x26"


def test_realtime_only_priorities_are_accepted_in_a_realtime_process():
    text = '''
        [[process]]
        name = "rt"
        priority_class = "realtime"
          [[process.thread]]
          name = "a"
          priority = -5
          [[process.thread]]
          name = "b"
          priority = "6"
    '''
    sc = parse_scenario(textwrap.dedent(text))
    assert sc.thread("a").priority == -5 and sc.thread("b").priority == 6


def test_job_cpu_rate_forms():
    for body, want, flags in (("weight = 5", CpuRate(weight=5), 0x3),
                              ("min_rate = 100\nmax_rate = 5000",
                               CpuRate(min_rate=100, max_rate=5000), 0x11)):
        sc = parse_scenario(f'[[job]]\nname = "J"\n[job.cpu_rate]\n{body}\n')
        assert sc.job("J").cpu_rate == want and want.control_flags == flags


def test_thread_start_and_affinity_resolve_from_process():
    text = '''
        [system]
        cpus = 4
        [[process]]
        name = "p"
        start = "5ms"
        affinity = [3, 1]
          [[process.thread]]
          name = "a"
          [[process.thread]]
          name = "b"
          start = "7.5ms"
          affinity = [3]
    '''
    sc = parse_scenario(textwrap.dedent(text))
    assert sc.process("p").affinity == (1, 3)
    assert (sc.thread("a").start_ns, sc.thread("a").affinity) == (5_000_000, (1, 3))
    assert (sc.thread("b").start_ns, sc.thread("b").affinity) == (7_500_000, (3,))


def test_inline_tables_and_dotted_keys_are_the_same_model():
    a = parse_scenario('system = { cpus = 2 }\n[[job]]\nname = "J"\nlimits.scheduling_class = 3\n')
    b = parse_scenario('[system]\ncpus = 2\n[[job]]\nname = "J"\n[job.limits]\n'
                       'scheduling_class = 3\n')
    assert a.system == b.system and a.jobs == b.jobs


# --- Errors: FILE:LINE: KEY: message --------------------------------------------------------------

def test_toml_syntax_error_names_line_and_key():
    check('''
        [system]
        cpus = 2 2   # <--
    ''', "system.cpus", "TOML syntax:")
    check('''
        [system]
        cpus = 2
        [[process]   # <--
    ''', None, "TOML syntax:")
    err = error_of('[system]\ncpus = "2\n')
    assert str(err).startswith("t.toml:2: system.cpus: TOML syntax: ")
    err = error_of('a = [1,\n')
    assert str(err).startswith("t.toml:") and "TOML syntax" in str(err)


def test_duplicate_toml_key_is_a_syntax_error():
    err = error_of('[system]\ncpus = 1\ncpus = 2\n')
    assert "TOML syntax" in err.message and err.line in (3, 4)


def test_unknown_keys_with_suggestions():
    check('''
        [systme]   # <--
    ''', "systme", "unknown key 'systme'; did you mean 'system'?")
    check('''
        [system]
        cpu = 2   # <--
    ''', "system.cpu", "did you mean 'cpus'?")
    check('''
        [[process]]
        name = "p"
          [[process.thread]]
          name = "t"
          prioirty = "high"   # <--
    ''', "process[0].thread[0].prioirty", "unknown key 'prioirty'; did you mean 'priority'?")
    check('''
        [[job]]
        name = "J"
        [job.limits]
        active_proces = 2   # <--
    ''', "job[0].limits.active_proces", "did you mean 'active_process'?")
    check('''
        [[job]]
        name = "J"
        [job.cpu_rate]
        hardcap = 2   # <--
    ''', "job[0].cpu_rate.hardcap", "did you mean 'hard_cap'?")
    err = check('''
        [[event]]
        name = "e"
        kind = "notification"
        zzz = 1   # <--
    ''', "event[0].zzz", "unknown key 'zzz'")
    assert "did you mean" not in err.message


def test_type_errors_name_the_expected_type():
    check('''
        [system]
        cpus = "2"   # <--
    ''', "system.cpus", "expected an integer, got a string ('2')")
    check('''
        [system]
        cpus = true   # <--
    ''', "system.cpus", "expected an integer, got a boolean")
    check('''
        [[event]]
        name = "e"
        kind = "notification"
        signaled = 1   # <--
    ''', "event[0].signaled", "expected true or false, got an integer")
    check('''
        [[process]]
        name = 5   # <--
    ''', "process[0].name", "expected a string, got an integer")
    check('''
        [process]   # <--
        name = "p"
    ''', "process", "expected an array of tables (write [[process]])")
    check('''
        [[process]]
        name = "p"
        [process.thread]   # <--
        name = "t"
    ''', "process[0].thread", "write [[process.thread]]")
    check('''
        [[process]]
        name = "p"
        affinity = "0,1"   # <--
        [[process.thread]]
        name = "t"
    ''', "process[0].affinity", "expected an array of CPU indexes")
    check('''
        [system]
        until = true   # <--
    ''', "system.until", "expected a duration such as '10ms', got a boolean")
    check('''
        programs = ["cpu 1ms"]   # <--
    ''', "programs", "expected a table of named step lists")


def test_range_errors():
    for key, value, fragment in (("cpus", "0", "0 is out of range (1..64)"),
                                 ("cpus", "65", "65 is out of range (1..64)"),
                                 ("win32_priority_separation", "0x40", "(0x0..0x3F)"),
                                 ("quantum", '"desktop"', "unknown quantum preset 'desktop'"),
                                 ("boot", '"bar"', "unknown boot set 'bar'; did you mean 'bare'?"),
                                 ("build", '"10.9.1"', "unknown build 10.9.1"),
                                 ("seed", "-1", "out of range"),
                                 ("until", '"-1s"', "is negative")):
        check(f'''
            [system]
            {key} = {value}   # <--
        ''', f"system.{key}", fragment)


def test_job_limit_errors():
    cases = [("active_process = 0", "active_process", "0 is out of range (1..4294967295)"),
             ("affinity = [0, 2]", "affinity[1]", "CPU 2 does not exist: [system] cpus = 2"),
             ("affinity = []", "affinity", "an empty affinity"),
             ("affinity = [1, 1]", "affinity[1]", "CPU 1 is listed twice"),
             ('priority_class = "hgh"', "priority_class", "did you mean 'high'?"),
             ("scheduling_class = 10", "scheduling_class", "10 is out of range (0..9)"),
             ('per_process_user_time = "1 fortnight"', "per_process_user_time",
              "unknown duration unit"),
             ('per_job_user_time = "0.5ns"', "per_job_user_time",
              "not a whole number of nanoseconds"),
             ('end_of_job_time_action = "kill"', "end_of_job_time_action",
              "unknown end-of-job action"),
             ('process_memory = "64MB"', "process_memory", "ambiguous size unit 'MB'"),
             ('job_memory = "lots"', "job_memory", "is not a size"),
             ('kill_on_job_close = "yes"', "kill_on_job_close", "expected true or false")]
    for line, key, fragment in cases:
        check(f'''
            [system]
            cpus = 2
            [[job]]
            name = "J"
            [job.limits]
            {line}   # <--
        ''', f"job[0].limits.{key}", fragment)


def test_cpu_rate_errors():
    cases = [("hard_cap = 0", "hard_cap", "0 is out of range (1..10000)"),
             ("hard_cap = 10001", "hard_cap", "out of range"),
             ("weight = 10", "weight", "10 is out of range (1..9)"),
             ("min_rate = 10", "min_rate", "missing 'max_rate'"),
             ("max_rate = 10001\nmin_rate = 0", "max_rate", "out of range (0..10000)")]
    for body, key, fragment in cases:
        text = f'[[job]]\nname = "J"\n[job.cpu_rate]\n{body}\n'
        err = error_of(text)
        assert str(err).startswith("t.toml:") and "job[0].cpu_rate" in str(err), str(err)
        assert fragment in err.message, str(err)
    check('''
        [[job]]
        name = "J"
        [job.cpu_rate]
        min_rate = 600   # <--
        max_rate = 500
    ''', "job[0].cpu_rate.min_rate", "min_rate 600 exceeds max_rate 500")
    check('''
        [[job]]
        name = "J"
        [job.cpu_rate]   # <--
        hard_cap = 100
        weight = 5
    ''', "job[0].cpu_rate", "exactly one of hard_cap, weight, or min_rate with max_rate "
                            "(found hard_cap and weight)")
    check('''
        [[job]]
        name = "J"
        [job.cpu_rate]   # <--
    ''', "job[0].cpu_rate", "exactly one of")


def test_dispatcher_object_errors():
    check('''
        [[semaphore]]
        name = "s"
        initial = 4   # <--
        maximum = 3
    ''', "semaphore[0].initial", "initial count 4 exceeds maximum 3")
    check('''
        [[semaphore]]
        name = "s"
        maximum = 0   # <--
    ''', "semaphore[0].maximum", "0 is out of range (1..2147483647)")
    check('''
        [[semaphore]]   # <--
        name = "s"
    ''', "semaphore[0].maximum", "missing required key 'maximum'")
    check('''
        [[event]]   # <--
        name = "e"
    ''', "event[0].kind", "missing required key 'kind'")
    check('''
        [[event]]
        name = "e"
        kind = "manual"   # <--
    ''', "event[0].kind", "unknown event kind 'manual' (expected notification, synchronization)")
    check('''
        [[mutex]]
        name = "m"
        owner = "t"   # <--
    ''', "mutex[0].owner", "unknown key 'owner'")


def test_missing_and_bad_names():
    check('''
        [[process]]   # <--
        priority_class = "high"
    ''', "process[0].name", "missing required key 'name' (every process needs one)")
    check('''
        [[event]]
        name = "my event"   # <--
        kind = "notification"
    ''', "event[0].name", "contains whitespace")
    check('''
        [[mutex]]
        name = ""   # <--
    ''', "mutex[0].name", "cannot be empty")


def test_duplicate_names():
    check('''
        [[process]]
        name = "p"
          [[process.thread]]
          name = "t"
        [[process]]
        name = "p"   # <--
          [[process.thread]]
          name = "u"
    ''', "process[1].name", "name 'p' is already used by the process at process[0]")
    check('''
        [[process]]
        name = "p"
          [[process.thread]]
          name = "t"
        [[process]]
        name = "q"
          [[process.thread]]
          name = "t"   # <--
    ''', "process[1].thread[0].name", "already used by the thread at process[0].thread[0]")
    check('''
        [[event]]
        name = "x"
        kind = "notification"
        [[process]]
        name = "x"   # <--
          [[process.thread]]
          name = "t"
    ''', "process[0].name", "already used by the event at event[0]")


def test_dangling_references():
    check('''
        [[process]]
        name = "p"
        parent = "explorer.exe"   # <--
          [[process.thread]]
          name = "t"
    ''', "process[0].parent", "'explorer.exe' is a process of the desktop boot set")
    check('''
        [[process]]
        name = "p"
        job = "JJ"   # <--
          [[process.thread]]
          name = "t"
    ''', "process[0].job", "no job named 'JJ'")
    check('''
        [[job]]
        name = "J"
        parent = "p"   # <--
        [[process]]
        name = "p"
          [[process.thread]]
          name = "t"
    ''', "job[0].parent", "'p' is a process, not a job")
    check('''
        [[process]]
        name = "p"
          [[process.thread]]
          name = "t"
          program = "missing"   # <--
    ''', "process[0].thread[0].program", "no program named 'missing' in [programs]")


def test_parent_cycles_and_creation_order():
    check('''
        [[job]]
        name = "A"
        parent = "B"   # <--
        [[job]]
        name = "B"
        parent = "A"
    ''', "job[0].parent", "job parent cycle: A -> B -> A")
    check('''
        [[job]]
        name = "A"
        parent = "A"   # <--
    ''', "job[0].parent", "job parent cycle: A -> A")
    check('''
        [[job]]
        name = "A"
        parent = "B"   # <--
        [[job]]
        name = "B"
    ''', "job[0].parent", "parent job 'B' must be declared before 'A'")
    check('''
        [[process]]
        name = "a"
        parent = "b"   # <--
          [[process.thread]]
          name = "t1"
        [[process]]
        name = "b"
        parent = "a"
          [[process.thread]]
          name = "t2"
    ''', "process[0].parent", "process parent cycle: a -> b -> a")
    check('''
        [[process]]
        name = "a"
        parent = "a"   # <--
          [[process.thread]]
          name = "t1"
    ''', "process[0].parent", "cannot be its own parent")
    check('''
        [[process]]
        name = "a"
        start = "10ms"
          [[process.thread]]
          name = "t1"
        [[process]]
        name = "b"
        parent = "a"   # <--
        start = "5ms"
          [[process.thread]]
          name = "t2"
    ''', "process[1].parent", "parent 'a' does not exist yet when 'b' is created at 5ms")


def test_thread_priority_errors():
    check('''
        [[process]]
        name = "p"
          [[process.thread]]
          name = "t"
          priority = "hihgest"   # <--
    ''', "process[0].thread[0].priority",
        "unknown priority 'hihgest'; did you mean 'highest'? (expected idle, lowest, ")
    check('''
        [[process]]
        name = "p"
        priority_class = "high"
          [[process.thread]]
          name = "t"
          priority = 4   # <--
    ''', "process[0].thread[0].priority",
        "priority 4 is only valid in a realtime process; this process is high")
    check('''
        [[process]]
        name = "p"
          [[process.thread]]
          name = "t"
          priority = -3   # <--
    ''', "process[0].thread[0].priority", "only valid in a realtime process")
    check('''
        [[process]]
        name = "p"
        priority_class = "realtime"
          [[process.thread]]
          name = "t"
          priority = 9   # <--
    ''', "process[0].thread[0].priority", "priority 9 is not a value SetThreadPriority accepts")
    check('''
        [[process]]
        name = "p"
        priority_class = "urgent"   # <--
          [[process.thread]]
          name = "t"
    ''', "process[0].priority_class", "unknown priority class 'urgent'")


def test_process_and_thread_errors():
    check('''
        [system]
        cpus = 2
        [[process]]
        name = "p"
        affinity = [0, 2]   # <--
          [[process.thread]]
          name = "t"
    ''', "process[0].affinity[1]", "CPU 2 does not exist")
    check('''
        [system]
        cpus = 2
        [[process]]
        name = "p"
        affinity = [0]
          [[process.thread]]
          name = "t"
          affinity = [1]   # <--
    ''', "process[0].thread[0].affinity", "CPU 1 is not in the process affinity [0]")
    check('''
        [system]
        cpus = 2
        [[process]]
        name = "p"
          [[process.thread]]
          name = "t"
          ideal_cpu = 2   # <--
    ''', "process[0].thread[0].ideal_cpu", "2 is out of range (0..1)")
    check('''
        [[process]]
        name = "p"
        protection = "ppl-av"   # <--
          [[process.thread]]
          name = "t"
    ''', "process[0].protection", "unknown protection 'ppl-av'")
    check('''
        [[process]]   # <--
        name = "p"
    ''', "process[0]", "has no [[process.thread]]")
    check('''
        [[process]]
        name = "p"
        start = "10ms"
          [[process.thread]]
          name = "t"
          start = "20ms"   # <--
    ''', "process[0].thread[0].start", "the first thread is the initial thread")
    check('''
        [[process]]
        name = "p"
        start = "10ms"
          [[process.thread]]
          name = "t"
          [[process.thread]]
          name = "u"
          start = "5ms"   # <--
    ''', "process[0].thread[1].start", "before its process (10ms)")
    check('''
        [[process]]
        name = "p"
        foreground = true
          [[process.thread]]
          name = "t"
        [[process]]
        name = "q"
        foreground = true   # <--
          [[process.thread]]
          name = "u"
    ''', "process[1].foreground", "only one process can be in the foreground")


STEP_ERRORS = [
    ("cpux 10ms", "unknown step 'cpux'; did you mean 'cpu'?"),
    ("cpu", "wrong arguments for 'cpu' (usage: cpu DUR)"),
    ("cpu 10 parsecs", "unknown duration unit 'parsecs'"),
    ("cpu -5ms", "is negative"),
    ("sleep 0.1ns", "not a whole number of nanoseconds"),
    ("wait nothere", "no event, semaphore, mutex, process or thread named 'nothere'"),
    ("wait J", "'J' is a job, not an event, semaphore, mutex, process or thread"),
    ("io floppy 1ms", "unknown device 'floppy'"),
    ("io disk", "usage: io DEVICE DUR"),
    ("set sem", "'sem' is a semaphore, not an event"),
    ("pulse evv", "no event named 'evv'; did you mean 'ev'?"),
    ("release ev", "'ev' is an event, not a semaphore"),
    ("release sem 0", "release count 0 is outside 1..2147483647"),
    ("release sem two", "release count 'two' is not an integer"),
    ("release_mutex sem", "not a mutex"),
    ("commit 1.5 MB", "ambiguous size unit 'MB'"),
    ("set_priority 7", "priority 7 is not a value SetThreadPriority accepts"),
    ("set_priority urgent", "unknown priority 'urgent'"),
    ("exit", "usage: exit CODE"),
    ("exit 0x100000000", "outside -2147483648..0xFFFFFFFF"),
    ("yield now", "usage: yield"),
    ("fiber_create f nope", "no program named 'nope' in [programs]"),
    ("fiber_create main worker", "fiber name 'main' is a thread's name"),
    ("fiber_switch ghost", "no fiber or thread named 'ghost' (no fiber_create step makes it)"),
    ("fls_set s 1", "no FLS slot named 's' (no fls_alloc step makes it)"),
    ("fls_set s -1", "FLS value -1 is outside"),
    ("", "an empty step"),
]


@pytest.mark.parametrize("step,fragment", STEP_ERRORS)
def test_step_errors_point_at_the_step(step, fragment):
    text = one_thread(f'''[
        "cpu 1ms",
        "{step}",  # <--
        "exit 0",
      ]''')
    if step == "fls_set s -1":
        text = text.replace('"cpu 1ms"', '"fls_alloc s"')
    err = check(text, "process[0].thread[0].program[1]", fragment)
    assert err.message.startswith(repr(step.strip()) + ": ")


def test_step_not_a_string_and_unreachable_steps():
    check(one_thread('''[
        "cpu 1ms",
        5,  # <--
      ]'''), "process[0].thread[0].program[1]", "expected a step string such as 'cpu 10ms'")
    check(one_thread('''[
        "cpu 1ms", "repeat",
        "exit 0",  # <--
      ]'''), "process[0].thread[0].program[2]", "step 2 is never reached: it follows 'repeat'")
    check(one_thread('"cpu 1ms"  # <--'), "process[0].thread[0].program",
          "no program named 'cpu 1ms' in [programs] (a program is an array of steps")
    check(one_thread('5  # <--'), "process[0].thread[0].program",
          "expected an array of step strings")


def test_errors_in_named_programs():
    text = one_thread('["wait ev"]').replace(
        'worker = ["cpu 1ms", "fiber_switch main"]',
        'worker = ["cpu 1ms", "set nope"]  # <--')
    check(text, "programs.worker[1]", "no event named 'nope'")


ACTION_ERRORS = [
    ("explode main", "unknown action 'explode'"),
    ("suspnd main", "did you mean 'suspend'?"),
    ("suspend p.exe", "'p.exe' is a process, not a thread"),
    ("suspend", "usage: suspend THREAD"),
    ("resume main now", "usage: resume THREAD"),
    ("terminate_thread main", "usage: terminate_thread THREAD CODE"),
    ("terminate_process main 1", "'main' is a thread, not a process"),
    ("set_priority main 20", "priority 20 is not a value"),
    ("set_priority_class p.exe urgent", "unknown priority class 'urgent'"),
    ("set_affinity main 2", "CPU 2 does not exist: [system] cpus = 2"),
    ("set_affinity main 0,0", "a CPU is listed twice"),
    ("set_affinity main x", "'x' is not a CPU index or range"),
    ("set_affinity main 1-0", "runs backwards"),
    ("set_affinity main []", "an empty CPU list"),
    ("set_priority_separation 0x40", "outside 0x00..0x3F"),
    ("assign p.exe JJ", "no job named 'JJ'"),
    ("terminate_job J", "usage: terminate_job JOB CODE"),
    ("close_job_handle main", "'main' is a thread, not a job"),
    ("open_process p.exe p.exe 4112", "access mask '4112' must be hex"),
    ("open_process p.exe nobody 0x1000", "no process named 'nobody'"),
    ("io_complete main tape", "unknown device 'tape'"),
    ("set_event sem", "'sem' is a semaphore, not an event"),
]


@pytest.mark.parametrize("action,fragment", ACTION_ERRORS)
def test_action_errors_point_at_do(action, fragment):
    err = check(at(action), "at[0].do", fragment)
    assert err.message.startswith(repr(action) + ": ")


def test_at_needs_time_and_do():
    check(one_thread('["wait ev"]') + '[[at]]  # <--\ndo = "set_event ev"\n', "at[0].time",
          "missing required key 'time'")
    check(one_thread('["wait ev"]') + '[[at]]\ntime = "1ms"\ndo = 5  # <--\n', "at[0].do",
          "expected an action string")


def test_element_lines_in_multiline_arrays_and_inline_tables():
    text = '''
        [[event]]
        name = "ev"
        kind = "notification"
        [[process]]
        name = "p"
        thread = [
          { name = "A", program = [
              "cpu 1ms",
              """sleep 2ms""",
              'wait ev',  # a comment with ] and } in it
              "cpu 5xs",  # <--
          ] },
        ]
    '''
    check(text, "process[0].thread[0].program[3]", "'cpu 5xs': unknown duration unit 'xs'")
    text = '''
        system = { cpus = 2, seed = "x" }  # <--
    '''
    check(text, "system.seed", "expected an integer")
    text = '''
        [[job]]
        name = "J"
        limits.active_process = 0  # <--
    '''
    check(text, "job[0].limits.active_process", "out of range")
    text = '''
        [[process]]
        name = "p"
        "priority_class" = 'hi'  # <--
          [[process.thread]]
          name = "t"
    '''
    check(text, "process[0].priority_class", "unknown priority class 'hi'")


def test_crlf_line_endings_count_lines_the_same():
    text = ('[[process]]\r\nname = "p"\r\n  [[process.thread]]\r\n  name = "t"\r\n'
            '  program = [\r\n    "cpu 1ms",\r\n    "wait zz",\r\n  ]\r\n')
    assert str(error_of(text)).startswith("t.toml:7: process[0].thread[0].program[1]: ")


def test_array_of_tables_indexes_count_per_parent():
    text = '''
        [[process]]
        name = "p"
          [[process.thread]]
          name = "a"
          [[process.thread]]
          name = "b"
        [[process]]
        name = "q"
          [[process.thread]]
          name = "c"
          [[process.thread]]
          name = "d"
          priority = "max"   # <--
    '''
    check(text, "process[1].thread[1].priority", "unknown priority 'max'")


def test_unreadable_and_non_utf8_files(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "missing.toml")
    assert str(info.value).startswith(f"{tmp_path / 'missing.toml'}: cannot read file: ")
    assert info.value.line is None
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'[system]\nbuild = "\xff"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    assert str(info.value) == f"{bad}:2: not UTF-8 text (byte 0xff)"


def test_error_attributes_and_one_line():
    err = error_of('[system]\ncpus = 99\n')
    assert (err.filename, err.line, err.key) == ("t.toml", 2, "system.cpus")
    assert str(err) == "t.toml:2: system.cpus: 99 is out of range (1..64)"
    assert isinstance(err, ValueError)
    err = error_of('[[process]]\nname = "a\\nb"\n')
    assert "\n" not in str(err)


def test_format_key():
    assert format_key(("process", 2, "thread", 0, "priority")) == "process[2].thread[0].priority"
    assert format_key(("programs", "my prog", 1)) == 'programs."my prog"[1]'
    assert format_key(()) == ""


# --- Durations and sizes --------------------------------------------------------------------------

@pytest.mark.parametrize("text,ns", [
    ("31.25ms", 31_250_000), ("5s", 5 * 10**9), ("0.5 ms", 500_000), ("250us", 250_000),
    ("250µs", 250_000), ("100ns", 100), ("5", 5_000_000), ("0", 0), (".5s", 500_000_000),
    (5, 5_000_000), (2.5, 2_500_000), (0, 0), (" 1ms ", 1_000_000), ("15.625ms", 15_625_000)])
def test_parse_duration(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("value,fragment", [
    ("-1ms", "negative"), (-1, "negative"), (-0.5, "negative"), (float("nan"), "not a finite"),
    (float("inf"), "not a finite"), ("0.5ns", "whole number of nanoseconds"),
    ("1.0000001ms", "whole number"), ("1e3ms", "unknown duration unit 'e3ms'"),
    ("ms", "is not a duration"), ("", "is not a duration"), (True, "got a boolean"),
    ([1], "got an array"), ("5 MS", "unknown duration unit 'MS'"), ("9" * 30 + "s", "too large"),
    ("1" * 5000, "too large"), ("+1ms", "has a sign")])
def test_parse_duration_rejects(value, fragment):
    with pytest.raises(UnitError) as info:
        parse_duration(value)
    assert fragment in str(info.value)


@pytest.mark.parametrize("text,size", [
    ("64MiB", 64 << 20), ("4KiB", 4096), ("4 KiB", 4096), ("1.5GiB", 3 << 29), ("512B", 512),
    ("4096", 4096), (4096, 4096), ("1TiB", 1 << 40), (0, 0)])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("value,fragment", [
    ("64MB", "ambiguous size unit 'MB' in '64MB'; write 'MiB'"), ("4k", "write 'KiB'"),
    ("0.3KiB", "whole number of bytes"), (-1, "negative"), (1.5, "got a float"),
    ("64 PiB", "unknown size unit 'PiB'"), ("20000000TiB", "too large")])
def test_parse_size_rejects(value, fragment):
    with pytest.raises(UnitError) as info:
        parse_size(value)
    assert fragment in str(info.value)


def test_format_duration_and_size():
    assert format_duration(31_250_000) == "31.25ms"
    assert format_duration(5_208_333) == "5.208333ms"
    assert format_duration(2 * 10**9) == "2s" and format_duration(0) == "0ms"
    assert format_duration(1500) == "1.5us" and format_duration(7) == "7ns"
    assert format_duration(1_500_000, "us") == "1500us"
    assert format_size(64 << 20) == "64MiB" and format_size(1536) == "1536B"
    assert format_size(0) == "0B"


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_durations_round_trip(ns):
    assert parse_duration(format_duration(ns)) == ns
    for unit in ("ns", "us", "ms", "s"):
        assert parse_duration(format_duration(ns, unit)) == ns


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["ns", "us", "ms", "s", ""]))
def test_whole_durations_in_every_unit(n, unit):
    per = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "": 10**6}[unit]
    assert parse_duration(f"{n}{unit}") == n * per
    assert parse_duration(f"{n} {unit}") == n * per


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_sizes_round_trip(size):
    assert parse_size(format_size(size)) == size


@given(st.integers(min_value=0, max_value=10**7))
def test_durations_round_trip_through_a_scenario(ns):
    text = f'[system]\nuntil = "{format_duration(ns)}"\n'
    assert parse_scenario(text).system.until_ns == ns


# --- Canonical text: every step and action prints as text that parses back to itself -----------

# Every kind the format has: each step and action class carries its keyword as `op`.
OP_KINDS = sorted((c for c in vars(core.scenario).values()
                   if isinstance(c, type) and "op" in vars(c)), key=lambda c: c.__name__)
STEP_KINDS = frozenset(get_args(Step))  # the rest are actions, written in [[at]] do
NAME = st.text(st.characters(exclude_categories=("C", "Z")), min_size=1, max_size=8)
DECLARED = ("event", "semaphore", "mutex", "job", "process", "thread", "helper", "program",
            "fiber", "slot")
DURATION = st.integers(min_value=0, max_value=2**63 - 1)
DWORD = st.integers(min_value=0, max_value=MAX_DWORD)
QWORD = st.integers(min_value=0, max_value=2**64 - 1)
PRIORITY = st.sampled_from(sorted(VALID_PRIORITIES))
DEVICE = st.sampled_from(sorted(IO_INCREMENTS))


def _kind_strategies(n: dict[str, str], cpus: int) -> dict[type, st.SearchStrategy]:
    """A strategy per kind, drawing valid instances that name only what `n` declares."""
    event, job, process = st.just(n["event"]), st.just(n["job"]), st.just(n["process"])
    thread = st.sampled_from([n["thread"], n["helper"]])
    fiber = st.sampled_from([n["fiber"], n["thread"], n["helper"]])  # a thread's own fiber too
    slot = st.just(n["slot"])
    waitable = st.sampled_from([(n[k], k) for k in ("event", "semaphore", "mutex", "process",
                                                    "thread")])
    cpu_set = st.lists(st.integers(0, cpus - 1), min_size=1, unique=True).map(sorted).map(tuple)
    return {
        Cpu: st.builds(Cpu, DURATION, st.booleans()),
        Wait: st.builds(lambda target, timeout: Wait(*target, timeout), waitable,
                        st.none() | DURATION),
        Sleep: st.builds(Sleep, DURATION),
        Yield: st.builds(Yield),
        Io: st.builds(lambda device, ns: Io(device, ns, IO_INCREMENTS[device]), DEVICE, DURATION),
        SetEvent: st.builds(SetEvent, event),
        ResetEvent: st.builds(ResetEvent, event),
        PulseEvent: st.builds(PulseEvent, event),
        ReleaseSemaphore: st.builds(ReleaseSemaphore, st.just(n["semaphore"]),
                                    st.integers(1, MAX_LONG)),
        ReleaseMutex: st.builds(ReleaseMutex, st.just(n["mutex"])),
        Commit: st.builds(Commit, QWORD, st.booleans()),
        SetPriority: st.builds(SetPriority, PRIORITY),
        Exit: st.builds(Exit, DWORD),
        Repeat: st.builds(Repeat),
        FiberConvert: st.builds(FiberConvert),
        FiberCreate: st.builds(FiberCreate, st.just(n["fiber"]), st.just(n["program"])),
        FiberSwitch: st.builds(FiberSwitch, fiber),
        FiberDelete: st.builds(FiberDelete, fiber),
        FiberToThread: st.builds(FiberToThread),
        FlsAlloc: st.builds(FlsAlloc, slot),
        FlsSet: st.builds(FlsSet, slot, QWORD),
        FlsFree: st.builds(FlsFree, slot),
        Suspend: st.builds(Suspend, thread),
        Resume: st.builds(Resume, thread),
        TerminateThread: st.builds(TerminateThread, thread, DWORD),
        TerminateProcess: st.builds(TerminateProcess, process, DWORD),
        SetThreadPriority: st.builds(SetThreadPriority, thread, PRIORITY),
        SetPriorityClass: st.builds(SetPriorityClass, process,
                                    st.sampled_from(list(PRIORITY_CLASSES))),
        SetAffinity: st.builds(SetAffinity, thread, cpu_set),
        SetForeground: st.builds(SetForeground, process),
        SetPrioritySeparation: st.builds(SetPrioritySeparation, st.integers(0, 0x3F)),
        Assign: st.builds(Assign, process, job),
        TerminateJob: st.builds(TerminateJob, job, DWORD),
        CloseJobHandle: st.builds(CloseJobHandle, job),
        OpenProcess: st.builds(OpenProcess, process, process, DWORD),
        IoComplete: st.builds(IoComplete, thread, DEVICE),
    }


def _declaring(n: dict[str, str], cpus: int, step: str | None, action: str | None) -> str:
    """A scenario declaring every name in `n`: thread n["thread"] runs `step` alone (if any),
    the helper thread creates the fiber and the FLS slot, and one [[at]] does `action`."""
    def toml(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)  # a TOML basic string

    helper_steps = [f"fiber_create {n['fiber']} {n['program']}", f"fls_alloc {n['slot']}"]
    lines = [
        "[system]", f"cpus = {cpus}",
        "[[event]]", f"name = {toml(n['event'])}", 'kind = "notification"',
        "[[semaphore]]", f"name = {toml(n['semaphore'])}", "maximum = 1",
        "[[mutex]]", f"name = {toml(n['mutex'])}",
        "[[job]]", f"name = {toml(n['job'])}",
        "[programs]", f"{toml(n['program'])} = [\"cpu 1ms\"]",
        "[[process]]", f"name = {toml(n['process'])}",
        "[[process.thread]]", f"name = {toml(n['thread'])}",
        f"program = [{'' if step is None else toml(step)}]",
        "[[process.thread]]", f"name = {toml(n['helper'])}",
        f"program = [{', '.join(map(toml, helper_steps))}]",
    ]
    if action is not None:
        lines += ["[[at]]", "time = 0", f"do = {toml(action)}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind", OP_KINDS, ids=lambda kind: kind.__name__)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_printed_steps_and_actions_parse_back(kind, data):
    names = dict(zip(DECLARED, data.draw(st.lists(NAME, min_size=len(DECLARED),
                                                  max_size=len(DECLARED), unique=True))))
    cpus = data.draw(st.integers(1, MAX_CPUS))
    strategies = _kind_strategies(names, cpus)
    assert set(strategies) == set(OP_KINDS), "each step and action kind needs a strategy"
    drawn = data.draw(strategies[kind])
    is_step = kind in STEP_KINDS
    sc = parse_scenario(_declaring(names, cpus, str(drawn) if is_step else None,
                                   None if is_step else str(drawn)))
    parsed = sc.thread(names["thread"]).program[0] if is_step else sc.at[0].action
    assert parsed == drawn, str(drawn)


# --- Fuzzing: nothing but ScenarioError escapes ---------------------------------------------------

def _only_scenario_errors(text: str) -> None:
    try:
        parse_scenario(text, "fuzz.toml")
    except ScenarioError as err:
        line_count = text.count("\n") + 1
        assert err.line is None or 1 <= err.line <= line_count + 1, (str(err), line_count)
        assert "\n" not in str(err) and str(err).startswith("fuzz.toml")


TOML_ALPHABET = st.sampled_from(list('[]{}=."\'#,\n \t_-0123456789abcdefxyz') +
                                ["[[process]]", "[[process.thread]]", "name", "program",
                                 "priority", '"cpu 1ms"', "cpus", "[system]", '"""', "'''",
                                 "true", "[job.limits]", "[[job]]", "affinity", "= [",
                                 "[[at]]", "do", "time", "\\", "1979-05-27T07:32:00Z"])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_raises_only_scenario_error(text):
    _only_scenario_errors(text)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TOML_ALPHABET, max_size=80))
def test_tomlish_token_soup_raises_only_scenario_error(tokens):
    _only_scenario_errors("".join(tokens))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_scenarios_raise_only_scenario_error(data):
    base = data.draw(st.sampled_from([SPEC_EXAMPLE, one_thread(
        '["cpu 1ms", "wait ev 5ms", "release sem 2", "fiber_create f worker", "exit 0"]')]))
    start = data.draw(st.integers(0, len(base)))
    end = data.draw(st.integers(start, min(len(base), start + 12)))
    insert = data.draw(st.one_of(st.text(max_size=8), TOML_ALPHABET))
    _only_scenario_errors(base[:start] + insert + base[end:])


@settings(max_examples=200)
@given(st.recursive(
    st.one_of(st.integers(-2**70, 2**70), st.booleans(), st.text(max_size=12),
              st.floats(allow_nan=True), st.sampled_from(["cpu 1ms", "wait ev", "1ms", "64MiB"])),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(
                                   ["name", "kind", "program", "priority", "thread", "limits",
                                    "affinity", "start", "cpus", "time", "do", "maximum",
                                    "parent", "job", "cpu_rate", "hard_cap"]), children,
                                   max_size=4)),
    max_leaves=20))
def test_wrongly_typed_values_raise_only_scenario_error(value):
    # Build the TOML through JSON-like inline syntax so every shape reaches the validator.
    for section in ("system", "process", "job", "event", "at", "programs"):
        body = _toml_value(value)
        if body is None:
            return
        _only_scenario_errors(f"{section} = {body}\n")


def _toml_value(v):
    import math
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if -2**63 <= v < 2**63 else None
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        items = [_toml_value(x) for x in v]
        return None if None in items else "[" + ", ".join(items) + "]"
    items = {k: _toml_value(x) for k, x in v.items()}
    if None in items.values():
        return None
    return "{" + ", ".join(f"{k} = {x}" for k, x in items.items()) + "}"


def test_unknown_parent_on_desktop():
    check('''
        [system]
        boot = "desktop"
        [[process]]
        name = "p"
        parent = "nosuch.exe"   # <--
          [[process.thread]]
          name = "t"
    ''', "process[0].parent", "no process named 'nosuch.exe'")
