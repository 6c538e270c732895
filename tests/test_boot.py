"""Boot sets (formats.md §2 `boot`): bare and desktop."""

import json

import pytest

from core.kernel import Machine, sec
from core.kernel.boot import BOOT_PROCESS_NAMES, boot
from core.runner import run_scenario
from core.scenario import parse_scenario


def desktop(seed=0, cpus=4):
    m = Machine(cpus=cpus, seed=seed)
    made = boot(m, "desktop")
    return m, made


def test_bare_is_idle_and_system_with_waiting_threads():
    m = Machine(cpus=2)
    made = boot(m, "bare")
    assert set(made) == set(BOOT_PROCESS_NAMES["bare"])
    st = m.state()
    assert [p["pid"] for p in st["processes"]] == [0, 4]
    system = st["processes"][1]
    assert system["protection"] == "pp-winsystem"
    names = [t["name"] for t in system["threads"]]
    assert names[:2] == ["KeBalanceSetManager", "KeSwapProcessOrStack"]
    assert names.count("ExpWorkerThread") == 9
    assert [t["tid"] for t in system["threads"]] == list(range(8, 52, 4))
    assert all(t["state"] == "Waiting" and t["context_switches"] == 0
               for t in system["threads"])
    assert {t["priority"] for t in system["threads"]} == {16, 23, 13, 12, 15}
    m.run_until(sec(3))
    assert len(m.trace) == 0  # nothing to do: the machine stays idle


def test_desktop_tree_is_windows():
    m, made = desktop()
    assert set(made) == set(BOOT_PROCESS_NAMES["desktop"])
    st = m.state()
    procs = {p["pid"]: p for p in st["processes"]}
    assert all(pid % 4 == 0 for pid in procs)
    assert all(t["tid"] % 4 == 0 for p in procs.values() for t in p["threads"])
    by_name = {}
    for p in st["processes"]:
        by_name.setdefault(p["name"], []).append(p)

    def parent(name, i=0):
        pp = by_name[name][i]["parent_pid"]
        return procs[pp]["name"] if pp in procs else None

    assert parent("Registry") == "System" and parent("smss.exe") == "System"
    # csrss, wininit and winlogon were started by smss instances that have exited
    for name in ("csrss.exe", "wininit.exe", "winlogon.exe"):
        assert parent(name) is None
        assert by_name[name][0]["parent_pid"] not in procs
    assert parent("services.exe") == "wininit.exe" and parent("lsass.exe") == "wininit.exe"
    assert {parent("svchost.exe", i) for i in range(6)} == {"services.exe"}
    assert parent("explorer.exe") is None  # userinit exited
    assert parent("notepad.exe") == "explorer.exe" and parent("dwm.exe") == "winlogon.exe"
    assert len(by_name["csrss.exe"]) == 2 and len(by_name["svchost.exe"]) == 6
    assert by_name["lsass.exe"][0]["protection"] == "ppl-lsa"
    assert by_name["MsMpEng.exe"][0]["protection"] == "ppl-antimalware"
    assert by_name["csrss.exe"][0]["priority_class"] == "high"
    assert by_name["explorer.exe"][0]["foreground"]
    assert made["Registry"].minimal and made["MemCompression"].minimal
    assert not made["explorer.exe"].minimal
    reasons = {t["wait_reason"] for p in st["processes"] for t in p["threads"]
               if t["state"] == "Waiting"}
    assert {"WrQueue", "WrLpcReceive", "WrUserRequest", "DelayExecution"} <= reasons


def test_desktop_is_alive_but_gentle():
    m, _ = desktop()
    m.run_until(sec(10))
    m.check_invariants()
    switches = len(m.trace)
    assert 100 < switches < 10 * 400  # it ticks over, a few hundred switches a second at most
    busy, idle = zip(*m.cpu_times())
    assert sum(busy) < 0.05 * (sum(busy) + sum(idle))  # well under 5 % CPU
    cols = m.trace.columns()
    woken = set(cols["new_pid"].tolist()) - {0}
    assert len(woken) >= 8  # many processes do something


def test_desktop_same_seed_same_machine_other_seed_other_rhythm():
    a, _ = desktop(seed=1)
    b, _ = desktop(seed=1)
    c, _ = desktop(seed=2)
    for m in (a, b, c):
        m.run_until(sec(5))
    assert a.cswitch_csv() == b.cswitch_csv()
    assert a.cswitch_csv() != c.cswitch_csv()
    assert [p["pid"] for p in a.state()["processes"]] == [p["pid"] for p in c.state()["processes"]]


def test_unknown_boot_set():
    with pytest.raises(ValueError, match="boot set"):
        boot(Machine(), "server")


SCENARIO = """\
[system]
cpus = 2
boot = "desktop"
until = "500ms"

[[process]]
name = "game.exe"
parent = "explorer.exe"
  [[process.thread]]
  name = "render"
  program = ["cpu 50ms", "exit 3"]
"""


def test_scenario_on_desktop_with_boot_parent():
    result = run_scenario(parse_scenario(SCENARIO, "d.toml"))
    state = json.loads(result.state_json())
    names = [p["name"] for p in state["processes"]]
    assert "explorer.exe" in names and "lsass.exe" in names
    created = [e for e in result.events if e["type"] == "process_create"]
    explorer = result.run.boot_processes["explorer.exe"]
    assert created[0]["name"] == "game.exe" and created[0]["parent_pid"] == explorer.pid
    exits = [e for e in result.events if e["type"] == "process_exit"]
    assert [(e["name"], e["exit_code"]) for e in exits] == [("game.exe", 3)]
