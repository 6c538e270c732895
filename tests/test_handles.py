"""Handle tables, OpenProcess/OpenThread protection checks (nt-facts §9.1-9.3) and the
minimal/pico process rules (§9.5, §9.6) (core/kernel/handles.py)."""

import pytest

from core.kernel import Machine, ms
from core.kernel import program as P
from core.kernel.boot import boot
from core.kernel.constants import (
    ERROR_ACCESS_DENIED,
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NOT_SUPPORTED,
)
from core.kernel.handles import (
    DELETE,
    DOMINANCE_MODES,
    PROCESS_ALL_ACCESS,
    PROCESS_CREATE_PROCESS,
    PROCESS_CREATE_THREAD,
    PROCESS_DUP_HANDLE,
    PROCESS_QUERY_INFORMATION,
    PROCESS_QUERY_LIMITED_INFORMATION,
    PROCESS_SET_INFORMATION,
    PROCESS_SET_LIMITED_INFORMATION,
    PROCESS_SET_QUOTA,
    PROCESS_SET_SESSIONID,
    PROCESS_SUSPEND_RESUME,
    PROCESS_TERMINATE,
    PROCESS_VM_OPERATION,
    PROCESS_VM_READ,
    PROCESS_VM_WRITE,
    PROTECTION_NAMES,
    READ_CONTROL,
    SYNCHRONIZE,
    THREAD_ALL_ACCESS,
    THREAD_DIRECT_IMPERSONATION,
    THREAD_GET_CONTEXT,
    THREAD_IMPERSONATE,
    THREAD_QUERY_INFORMATION,
    THREAD_QUERY_LIMITED_INFORMATION,
    THREAD_SET_CONTEXT,
    THREAD_SET_INFORMATION,
    THREAD_SET_LIMITED_INFORMATION,
    THREAD_SET_THREAD_TOKEN,
    THREAD_SUSPEND_RESUME,
    THREAD_TERMINATE,
    WRITE_DAC,
    WRITE_OWNER,
    HandleTable,
    check_protection_name,
    parse_protection,
    protection_level,
    protection_type_signer,
    refused_rights,
    rtl_test_protected_access,
)
from core.kernel.kmemory import PROTECTION_LEVEL, bind
from core.kernel.ntapi import (
    ProcessBasicInformation,
    ProcessSubsystemInformation,
    PsCreateProcessNotifySubsystems,
    ThreadBasicInformation,
)
from core.kernel.objects import Job
from core.layouts import catalogue
from core.scenario import PROTECTIONS

# §9.2: the documented list of rights an unprotected caller can NOT get on a protected process
DOCUMENTED_DENIED = {
    "DELETE": DELETE, "READ_CONTROL": READ_CONTROL, "WRITE_DAC": WRITE_DAC,
    "WRITE_OWNER": WRITE_OWNER, "PROCESS_ALL_ACCESS": PROCESS_ALL_ACCESS,
    "PROCESS_CREATE_PROCESS": PROCESS_CREATE_PROCESS,
    "PROCESS_CREATE_THREAD": PROCESS_CREATE_THREAD, "PROCESS_DUP_HANDLE": PROCESS_DUP_HANDLE,
    "PROCESS_QUERY_INFORMATION": PROCESS_QUERY_INFORMATION,
    "PROCESS_SET_INFORMATION": PROCESS_SET_INFORMATION, "PROCESS_SET_QUOTA": PROCESS_SET_QUOTA,
    "PROCESS_VM_OPERATION": PROCESS_VM_OPERATION, "PROCESS_VM_READ": PROCESS_VM_READ,
    "PROCESS_VM_WRITE": PROCESS_VM_WRITE,
}
# ... and what remains obtainable
DOCUMENTED_OBTAINABLE = {
    "PROCESS_QUERY_LIMITED_INFORMATION": PROCESS_QUERY_LIMITED_INFORMATION,
    "PROCESS_SET_LIMITED_INFORMATION": PROCESS_SET_LIMITED_INFORMATION,
    "PROCESS_TERMINATE": PROCESS_TERMINATE, "PROCESS_SUSPEND_RESUME": PROCESS_SUSPEND_RESUME,
    "SYNCHRONIZE": SYNCHRONIZE,
}
OBTAINABLE_ALL = 0x1000 | 0x2000 | 0x0001 | 0x0800 | 0x00100000


def booted():
    m = Machine(cpus=1)
    boot(m, "bare")
    events = []
    m.subscribe(events.append)
    return m, events


def live(m, name, protection="none", **kw):
    """A process with one thread that waits forever."""
    p = m.create_process(name, protection=protection, **kw)
    m.create_thread(p, program=[P.sleep(ms(10_000))], name=f"{name}:main")
    return p


def of_type(events, etype):
    return [e for e in events if e["type"] == etype]


# ---------------------------------------------------------------- PS_PROTECTION (§9.1)
def test_protection_bytes_follow_the_ps_protection_encoding():
    assert protection_level("ppl-antimalware") == 0x31
    assert protection_level("ppl-lsa") == 0x41
    assert protection_level("ppl-wintcb") == 0x61
    assert protection_level("pp-winsystem") == 0x72
    assert protection_level("none") == 0
    # Type | Audit << 3 | Signer << 4
    assert protection_level("ppl-lsa", audit=True) == 0x49
    assert parse_protection(0x49) == (1, 4)  # the audit bit does not change type/signer
    for name in PROTECTION_NAMES:
        ptype, signer = protection_type_signer(name)
        assert protection_level(name) == ptype | signer << 4
        assert parse_protection(protection_level(name)) == (ptype, signer)


def test_protection_names_are_the_scenario_values_and_match_typed_memory():
    assert PROTECTION_NAMES == PROTECTIONS
    assert set(PROTECTION_NAMES) == set(PROTECTION_LEVEL)
    for name in PROTECTION_NAMES:
        assert protection_level(name) == PROTECTION_LEVEL[name], name


@pytest.mark.parametrize("bad", ["ppl-bogus", "PPL-LSA", "pp-lsa ", "", None])
def test_unknown_protection_name_is_a_clear_error(bad):
    with pytest.raises(ValueError) as e:
        check_protection_name(bad)
    message = str(e.value)
    assert repr(bad) in message
    for name in PROTECTION_NAMES:
        assert name in message
    with pytest.raises(ValueError):
        protection_level(bad)


@pytest.mark.parametrize("bad", [-1, 0x100, 0x03, 0x91, "0x31", True, 1.0])
def test_parse_protection_refuses_what_is_not_a_ps_protection(bad):
    with pytest.raises(ValueError):
        parse_protection(bad)


def test_parse_protection_knows_every_signer_up_to_app():
    assert parse_protection(0x81) == (1, 8)  # PPL App
    assert parse_protection(0x22) == (2, 2)  # PP CodeGen


# ---------------------------------------------------------------- §9.2 unprotected callers
@pytest.mark.parametrize("right", sorted(DOCUMENTED_DENIED), ids=str)
@pytest.mark.parametrize("target_protection", ["ppl-lsa", "pp-winsystem", "ppl-authenticode"])
def test_unprotected_caller_is_refused_each_documented_right(right, target_protection):
    m, events = booted()
    tool = live(m, "tool.exe")
    target = live(m, "target.exe", target_protection)
    assert m.open_process(tool, target, DOCUMENTED_DENIED[right]) is None
    assert m.last_error == ERROR_ACCESS_DENIED
    assert of_type(events, "open_process")[-1]["result"] == "ERROR_ACCESS_DENIED"
    err = of_type(events, "api_error")[-1]
    assert (err["op"], err["error"], err["code"]) == ("open_process", "ERROR_ACCESS_DENIED", 5)
    assert err["denied"] == DOCUMENTED_DENIED[right] & ~OBTAINABLE_ALL
    assert m.handles_of(tool) == [] and target.refs == 0


@pytest.mark.parametrize("right", sorted(DOCUMENTED_OBTAINABLE), ids=str)
@pytest.mark.parametrize("target_protection", ["ppl-lsa", "pp-winsystem", "ppl-antimalware"])
def test_unprotected_caller_gets_each_obtainable_right(right, target_protection):
    m, events = booted()
    tool = live(m, "tool.exe")
    target = live(m, "target.exe", target_protection)
    h = m.open_process(tool, target, DOCUMENTED_OBTAINABLE[right])
    assert h == 4
    assert of_type(events, "open_process")[-1]["result"] == "ok"
    assert m.handles_of(tool)[0]["access"] == DOCUMENTED_OBTAINABLE[right]


def test_the_obtainable_rights_together_and_nothing_else():
    m, _ = booted()
    tool = live(m, "tool.exe")
    lsass = live(m, "lsass.exe", "ppl-lsa")
    assert m.open_process(tool, lsass, OBTAINABLE_ALL) is not None
    # A right not on the documented "remains obtainable" list is refused too, and so is any
    # mask mixing one refused right into the obtainable ones
    assert m.open_process(tool, lsass, PROCESS_SET_SESSIONID) is None
    assert m.open_process(tool, lsass, OBTAINABLE_ALL | PROCESS_VM_READ) is None
    assert m.last_error == ERROR_ACCESS_DENIED
    # Every one of the 21 modelled bits: refused exactly outside the obtainable set
    refused = {bit for bit in range(21)
               if refused_rights(0, 0x41, 1 << bit)}
    assert refused == {bit for bit in range(21) if not (1 << bit) & OBTAINABLE_ALL}


def test_sedebugprivilege_does_not_bypass_protection():
    m, events = booted()
    lsass = live(m, "lsass.exe", "ppl-lsa")
    # caller None: an administrator's tool with SeDebugPrivilege, outside the simulation
    assert m.open_process(None, lsass, PROCESS_ALL_ACCESS) is None
    assert m.last_error == ERROR_ACCESS_DENIED
    assert m.open_process(None, lsass, PROCESS_VM_READ) is None
    h = m.open_process(None, lsass, PROCESS_QUERY_LIMITED_INFORMATION)
    assert h == 4 and m.handles_of(None)[0]["name"] == "lsass.exe"
    ev = of_type(events, "open_process")[-1]
    assert ev["caller"] is None and ev["caller_pid"] is None and ev["handle"] == 4


def test_unprotected_target_gives_all_access_to_anyone():
    m, _ = booted()
    tool = live(m, "tool.exe")
    app = live(m, "app.exe")
    assert m.open_process(tool, app, PROCESS_ALL_ACCESS) == 4
    assert m.open_process(None, app, PROCESS_ALL_ACCESS) == 4
    lsass = live(m, "lsass.exe", "ppl-lsa")
    assert m.open_process(lsass, app, PROCESS_ALL_ACCESS) == 4


def test_system_process_full_access_refused_limited_allowed():
    m, _ = booted()
    tool = live(m, "tool.exe")
    assert m.open_process(tool, m.system_process, PROCESS_ALL_ACCESS) is None
    assert m.open_process(tool, m.system_process, PROCESS_QUERY_LIMITED_INFORMATION) == 4


# ---------------------------------------------------------------- §9.3 dominance
# (caller, target, full access under "windows-internals", under "system-informer")
DOMINANCE_CASES = [
    ("pp-winsystem", "pp-wintcb", True, False),     # same type: WI by signer; KPH refuses
    ("pp-wintcb", "pp-winsystem", False, False),    # WinTcb does not dominate WinSystem
    ("pp-wintcb", "ppl-lsa", True, True),           # PP over PPL
    ("pp-winsystem", "ppl-antimalware", True, True),
    ("ppl-wintcb", "pp-wintcb", False, False),      # a PPL never fully opens a PP
    ("ppl-wintcb", "ppl-windows", True, False),     # higher signer over lower
    ("ppl-windows", "ppl-lsa", True, False),
    ("ppl-lsa", "ppl-antimalware", False, False),   # Lsa and Antimalware: not each other
    ("ppl-antimalware", "ppl-lsa", False, False),
    ("ppl-antimalware", "ppl-authenticode", True, False),
    ("ppl-authenticode", "ppl-windows", False, False),  # lower signer over higher
    ("ppl-lsa", "ppl-lsa", True, False),            # a signer dominates itself
    ("ppl-antimalware", "none", True, True),        # unprotected target: always
    ("none", "ppl-authenticode", False, False),     # unprotected caller: never
]


@pytest.mark.parametrize("mode", DOMINANCE_MODES)
@pytest.mark.parametrize("caller_prot,target_prot,wi,si", DOMINANCE_CASES,
                         ids=[f"{c}->{t}" for c, t, _, _ in DOMINANCE_CASES])
def test_protected_caller_dominance(mode, caller_prot, target_prot, wi, si):
    m, events = booted()
    if mode != "windows-internals":
        m.ppl_dominance = mode
    expected = wi if mode == "windows-internals" else si
    caller = live(m, "caller.exe", caller_prot)
    target = live(m, "target.exe", target_prot)
    assert rtl_test_protected_access(protection_level(caller_prot),
                                     protection_level(target_prot), mode) is expected
    h = m.open_process(caller, target, PROCESS_ALL_ACCESS)
    assert (h is not None) is expected
    assert of_type(events, "open_process")[-1]["result"] == (
        "ok" if expected else "ERROR_ACCESS_DENIED")
    # Failing the dominance test leaves the caller the §9.2 rights, like an unprotected one
    assert m.open_process(caller, target, PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE) \
        is not None
    # A thread of the target follows the same rule
    thread = target.threads[0]
    assert (m.open_thread(caller, thread, THREAD_ALL_ACCESS) is not None) is expected
    assert m.open_thread(caller, thread, THREAD_QUERY_LIMITED_INFORMATION) is not None


def test_windows_internals_is_the_default_and_app_signer_stands_apart():
    m, _ = booted()
    assert not hasattr(m, "ppl_dominance") or m.ppl_dominance == "windows-internals"
    ppl_app, ppl_winsystem = 0x81, 0x71
    assert rtl_test_protected_access(ppl_app, ppl_app)
    assert not rtl_test_protected_access(ppl_winsystem, ppl_app)
    assert not rtl_test_protected_access(ppl_app, 0x11)  # App over Authenticode


def test_unknown_dominance_mode_is_a_clear_error():
    m, _ = booted()
    tool = live(m, "tool.exe", "ppl-lsa")
    target = live(m, "t.exe", "ppl-lsa")
    m.ppl_dominance = "kph"
    with pytest.raises(ValueError, match="windows-internals, system-informer"):
        m.open_process(tool, target, PROCESS_TERMINATE)
    with pytest.raises(ValueError, match="'kph'"):
        rtl_test_protected_access(0x41, 0x41, "kph")


@pytest.mark.parametrize("mode", DOMINANCE_MODES)
def test_a_process_always_opens_itself(mode):
    m, _ = booted()
    m.ppl_dominance = mode
    lsass = live(m, "lsass.exe", "ppl-lsa")
    assert m.open_process(lsass, lsass, PROCESS_ALL_ACCESS) == 4
    assert m.open_thread(lsass, lsass.threads[0], THREAD_ALL_ACCESS) == 8


# ---------------------------------------------------------------- "unkillable" PPLs
@pytest.mark.parametrize("protection,unkillable", [
    ("ppl-antimalware", True), ("ppl-lsa", True), ("ppl-wintcb", True), ("pp-wintcb", True),
    ("ppl-windows", False), ("ppl-authenticode", False), ("pp-winsystem", False),
])
def test_terminate_is_refused_for_unkillable_signers_only_under_the_setting(protection,
                                                                            unkillable):
    m, _ = booted()
    tool = live(m, "tool.exe")
    target = live(m, "target.exe", protection)
    # Default: Microsoft's documented list, PROCESS_TERMINATE obtainable
    assert m.open_process(tool, target, PROCESS_TERMINATE) is not None
    assert m.open_thread(tool, target.threads[0], THREAD_TERMINATE) is not None
    m.ppl_unkillable = True
    assert (m.open_process(tool, target, PROCESS_TERMINATE) is None) is unkillable
    assert (m.open_thread(tool, target.threads[0], THREAD_TERMINATE) is None) is unkillable
    # the other obtainable rights are unaffected
    assert m.open_process(tool, target, PROCESS_SUSPEND_RESUME | SYNCHRONIZE) is not None


def test_unkillable_does_not_bind_a_dominating_caller():
    m, _ = booted()
    m.ppl_unkillable = True
    smss = live(m, "smss.exe", "pp-wintcb")
    lsass = live(m, "lsass.exe", "ppl-lsa")
    av = live(m, "MsMpEng.exe", "ppl-antimalware")
    assert m.open_process(smss, lsass, PROCESS_TERMINATE) is not None
    assert m.open_process(lsass, av, PROCESS_TERMINATE) is None  # Lsa does not dominate it


# ---------------------------------------------------------------- threads (§9.2 "the same")
@pytest.mark.parametrize("right", [THREAD_ALL_ACCESS, THREAD_GET_CONTEXT, THREAD_SET_CONTEXT,
                                   THREAD_QUERY_INFORMATION, THREAD_SET_INFORMATION,
                                   THREAD_SET_THREAD_TOKEN, THREAD_IMPERSONATE,
                                   THREAD_DIRECT_IMPERSONATION, DELETE, READ_CONTROL,
                                   WRITE_DAC, WRITE_OWNER], ids=hex)
def test_threads_of_protected_processes_refuse_full_rights(right):
    m, events = booted()
    tool = live(m, "tool.exe")
    lsass = live(m, "lsass.exe", "ppl-lsa")
    t = lsass.threads[0]
    assert m.open_thread(tool, t, right) is None
    assert m.last_error == ERROR_ACCESS_DENIED
    ev = of_type(events, "open_thread")[-1]
    assert (ev["target_tid"], ev["target_pid"], ev["result"]) == (t.tid, lsass.pid,
                                                                  "ERROR_ACCESS_DENIED")


@pytest.mark.parametrize("right", [THREAD_QUERY_LIMITED_INFORMATION,
                                   THREAD_SET_LIMITED_INFORMATION, THREAD_TERMINATE,
                                   THREAD_SUSPEND_RESUME, SYNCHRONIZE], ids=hex)
def test_threads_of_protected_processes_give_the_limited_rights(right):
    m, _ = booted()
    tool = live(m, "tool.exe")
    lsass = live(m, "lsass.exe", "ppl-lsa")
    t = lsass.threads[0]
    h = m.open_thread(tool, t, right)
    assert h == 4
    row = m.handles_of(tool)[0]
    assert row == {"handle": 4, "type": "Thread", "name": t.name, "access": right,
                   "inherit": False, "pid": lsass.pid, "tid": t.tid, "exited": False}


# ---------------------------------------------------------------- the handle table
def test_handle_values_are_multiples_of_four_and_reuse_the_lowest_freed():
    m, events = booted()
    owner = live(m, "owner.exe")
    objs = [live(m, f"p{i}.exe") for i in range(4)]
    hs = [m.open_process(owner, p, SYNCHRONIZE) for p in objs[:3]]
    assert hs == [4, 8, 12]
    assert m.close_process_handle(owner, 8)
    assert m.close_process_handle(owner, 4)
    # freed 8 then 4: the lowest comes back first, then 8, then a new value
    assert m.open_process(owner, objs[3], SYNCHRONIZE) == 4
    assert m.create_handle(owner, objs[0], SYNCHRONIZE) == 8
    assert m.create_handle(owner, objs[0], SYNCHRONIZE) == 16
    assert [r["handle"] for r in m.handles_of(owner)] == [4, 8, 12, 16]
    assert objs[0].refs == 2 and objs[1].refs == 0 and objs[2].refs == 1


def test_closing_a_bad_handle_fails_with_error_invalid_handle():
    m, events = booted()
    owner = live(m, "owner.exe")
    other = live(m, "other.exe")
    for bad in (0, 4, 5, -4):
        assert m.close_process_handle(owner, bad) is False
        assert m.last_error == ERROR_INVALID_HANDLE
    h = m.open_process(owner, other, SYNCHRONIZE)
    assert m.close_process_handle(other, h) is False  # not other's handle
    assert m.close_process_handle(owner, h) is True
    assert m.close_process_handle(owner, h) is False  # already closed
    err = of_type(events, "api_error")[-1]
    assert (err["op"], err["error"], err["handle"], err["pid"]) == (
        "close_handle", "ERROR_INVALID_HANDLE", h, owner.pid)
    assert other.refs == 0


def test_handle_table_given_values_and_inheritance():
    table = HandleTable()
    assert table.insert("a", 1, value=12) == 12
    assert [table.insert("x", 1) for _ in range(3)] == [4, 8, 16]  # 4, 8 were skipped
    with pytest.raises(ValueError):
        table.insert("b", 1, value=12)
    with pytest.raises(ValueError):
        table.insert("b", 1, value=6)
    m, _ = booted()
    parent = live(m, "parent.exe")
    a, b = live(m, "a.exe"), live(m, "b.exe")
    m.create_handle(parent, a, SYNCHRONIZE, inherit=True)
    m.create_handle(parent, b, PROCESS_TERMINATE)
    m.create_handle(parent, b, PROCESS_QUERY_LIMITED_INFORMATION, inherit=True)
    child = live(m, "child.exe", parent=parent)
    assert m.inherit_handles(parent, child) == 2
    assert [(r["handle"], r["name"], r["access"], r["inherit"]) for r in m.handles_of(child)] \
        == [(4, "a.exe", SYNCHRONIZE, True), (12, "b.exe", PROCESS_QUERY_LIMITED_INFORMATION, True)]
    assert a.refs == 2 and b.refs == 3
    assert m.create_handle(child, a, SYNCHRONIZE) == 8  # the gap left by the copy


def test_handles_of_names_the_object_types():
    m, _ = booted()
    owner = live(m, "owner.exe")
    ev = m.create_event("ev1")
    mx = m.create_mutex("mx")
    sem = m.create_semaphore("sem", 0, 2)
    job = Job(1, "J", None, 0)
    for obj in (ev, mx, sem, job, owner.threads[0], owner):
        assert m.create_handle(owner, obj, SYNCHRONIZE) is not None
    rows = m.handles_of(owner)
    assert [(r["type"], r["name"]) for r in rows] == [
        ("Event", "ev1"), ("Mutant", "mx"), ("Semaphore", "sem"), ("Job", "J"),
        ("Thread", "owner.exe:main"), ("Process", "owner.exe")]
    assert rows[0]["pid"] is None and rows[-1]["pid"] == owner.pid
    assert m._handle_count(owner) == 6
    assert {p["name"]: p["handle_count"] for p in m.state()["processes"]}["owner.exe"] == 6
    assert ev.refs == 1 and job.refs == 1


def test_an_exited_owner_cannot_get_handles_nor_open():
    m, events = booted()
    owner = m.create_process("owner.exe")
    m.create_thread(owner, program=[P.cpu(ms(1))])
    target = live(m, "target.exe")
    m.run_until(ms(5))
    assert owner.exited
    assert m.create_handle(owner, target, SYNCHRONIZE) is None
    assert m.last_error == ERROR_ACCESS_DENIED
    assert m.open_process(owner, target, SYNCHRONIZE) is None
    assert m.last_error == ERROR_ACCESS_DENIED
    assert target.refs == 0


def test_a_destroyed_job_cannot_be_referenced():
    m, _ = booted()
    owner = live(m, "owner.exe")
    job = Job(1, "J", None, 0)
    job.closed = True
    assert m.create_handle(owner, job, SYNCHRONIZE) is None
    assert m.last_error == ERROR_INVALID_HANDLE


# ---------------------------------------------------------------- lifetime and visibility
def names(m):
    return {p["name"]: p for p in m.state()["processes"]}


def test_a_referenced_exited_process_stays_visible_until_its_handle_is_closed():
    m, _ = booted()
    holder = live(m, "holder.exe")
    target = m.create_process("target.exe")
    m.create_thread(target, program=[P.cpu(ms(2)), P.exit_thread(3)])
    h = m.open_process(holder, target, SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION)
    m.run_until(ms(20))
    assert target.exited
    row = names(m)["target.exe"]
    assert row["exited"] and row["exit_code"] == 3
    assert names(m)["holder.exe"]["handle_count"] == 1
    # still openable by a second caller while it exists (our name-based OpenProcess)
    h2 = m.open_process(None, target, SYNCHRONIZE)
    assert h2 is not None
    assert m.close_process_handle(holder, h)
    assert "target.exe" in names(m)  # the tool still holds it
    assert m.close_process_handle(None, h2)
    assert "target.exe" not in names(m)
    assert not m.visible(target)
    # ... and now it cannot be opened: its CID is gone
    assert m.open_process(holder, target, SYNCHRONIZE) is None
    assert m.last_error == ERROR_INVALID_PARAMETER


def test_the_owner_exiting_closes_its_handles():
    m, events = booted()
    holder = m.create_process("holder.exe")
    ht = m.create_thread(holder, program=[P.sleep(ms(50)), P.exit_thread(0)])
    target = m.create_process("target.exe")
    m.create_thread(target, program=[P.cpu(ms(2))])
    assert m.open_process(holder, target, SYNCHRONIZE) == 4
    assert m.open_thread(holder, target.threads[0], SYNCHRONIZE) == 8
    m.run_until(ms(20))
    assert target.exited and "target.exe" in names(m)
    assert [t["tid"] for t in names(m)["target.exe"]["threads"]] == [target.threads[0].tid]
    m.run_until(ms(100))
    assert ht.state_name == "Terminated" and holder.exited
    assert m._handle_count(holder) == 0 and m.handles_of(holder) == []
    assert target.refs == 0 and target.threads[0].refs == 0
    assert "target.exe" not in names(m) and "holder.exe" not in names(m)


def test_a_thread_handle_keeps_its_exited_process_visible():
    m, _ = booted()
    tool = live(m, "tool.exe")
    target = m.create_process("target.exe")
    t = m.create_thread(target, program=[P.cpu(ms(1))])
    h = m.open_thread(tool, t, THREAD_QUERY_LIMITED_INFORMATION)
    m.run_until(ms(10))
    assert target.exited and t.state_name == "Terminated"
    row = names(m)["target.exe"]
    assert [th["state"] for th in row["threads"]] == ["Terminated"]
    assert m.handles_of(tool)[0]["exited"] is True
    m.close_process_handle(tool, h)
    assert "target.exe" not in names(m)


def test_object_released_runs_when_the_last_reference_goes():
    m, _ = booted()
    released = []
    m._object_released = released.append  # the jobs hook, observed
    tool = live(m, "tool.exe")
    target = live(m, "target.exe")
    t = target.threads[0]
    h1 = m.open_process(tool, target, SYNCHRONIZE)
    h2 = m.open_process(None, target, SYNCHRONIZE)
    h3 = m.open_thread(tool, t, SYNCHRONIZE)
    assert target.refs == 3 and t.refs == 1  # the thread handle references the process too
    m.close_process_handle(tool, h1)
    m.close_process_handle(None, h2)
    assert released == []
    m.close_process_handle(tool, h3)
    assert released == [t, target]


def test_an_exiting_owner_releases_what_only_it_held():
    # _exit_process closes the exiting process's handles (§8.4): a process holding the
    # only handle to an exited process releases it when it exits itself
    m, _ = booted()
    released = []
    m._object_released = released.append
    a = m.create_process("a.exe")
    m.create_thread(a, program=[P.cpu(ms(1))])
    b = m.create_process("b.exe")
    m.create_thread(b, program=[P.sleep(ms(20))])
    m.open_process(b, a, SYNCHRONIZE)
    m.run_until(ms(10))
    assert a.exited and released == []
    m.run_until(ms(40))
    assert released == [a]


# ---------------------------------------------------------------- open_process failures
def test_idle_and_vanished_targets_are_invalid_parameters():
    m, events = booted()
    tool = live(m, "tool.exe")
    assert m.open_process(tool, m.idle_process, PROCESS_QUERY_LIMITED_INFORMATION) is None
    assert m.last_error == ERROR_INVALID_PARAMETER
    assert m.open_thread(tool, m.idle_threads[0], SYNCHRONIZE) is None
    assert m.last_error == ERROR_INVALID_PARAMETER
    gone = m.create_process("gone.exe")
    gt = m.create_thread(gone, program=[P.cpu(ms(1))])
    m.run_until(ms(10))
    assert m.open_process(tool, gone, SYNCHRONIZE) is None
    assert m.last_error == ERROR_INVALID_PARAMETER
    assert m.open_thread(tool, gt, SYNCHRONIZE) is None
    assert of_type(events, "open_process")[-1]["result"] == "ERROR_INVALID_PARAMETER"


@pytest.mark.parametrize("access,error", [
    (0x02000000, ERROR_NOT_SUPPORTED),  # MAXIMUM_ALLOWED
    (0x80000000, ERROR_NOT_SUPPORTED),  # GENERIC_READ
    (0x01000000, ERROR_NOT_SUPPORTED),  # ACCESS_SYSTEM_SECURITY
    (0x1_0000_0000, ERROR_INVALID_PARAMETER),
    (-1, ERROR_INVALID_PARAMETER),
    ("0x1000", ERROR_INVALID_PARAMETER),
])
def test_unmodelled_or_malformed_access_is_refused_clearly(access, error):
    m, events = booted()
    tool = live(m, "tool.exe")
    app = live(m, "app.exe")
    assert m.open_process(tool, app, access) is None
    assert m.last_error == error
    assert of_type(events, "api_error")[-1]["reason"]


def test_open_process_event_fields():
    m, events = booted()
    tool = live(m, "tool.exe")
    lsass = live(m, "lsass.exe", "ppl-lsa")
    m.run_until(ms(1))
    m.open_process(tool, lsass, 0x1010)
    ev = of_type(events, "open_process")[-1]
    assert ev == {"time_us": 1000.0, "type": "open_process", "caller": "tool.exe",
                  "caller_pid": tool.pid, "target": "lsass.exe", "target_pid": lsass.pid,
                  "access": 0x1010, "result": "ERROR_ACCESS_DENIED", "handle": None}
    err = of_type(events, "api_error")[-1]
    assert err["caller"] == "tool.exe" and err["target"] == "lsass.exe"
    assert err["access"] == 0x1010 and err["denied"] == PROCESS_VM_READ
    m.open_process(tool, lsass, 0x1000)
    ev = of_type(events, "open_process")[-1]
    assert (ev["result"], ev["handle"], ev["access"]) == ("ok", 4, 0x1000)
    # no subscribers: no event, the same result
    m.unsubscribe(events.append)
    count = len(events)
    assert m.open_process(tool, lsass, 0x1000) == 8 and len(events) == count


# ---------------------------------------------------------------- minimal and pico (§9.5, §9.6)
WIN10 = ("10.0.19041.3570", "x64")


def test_minimal_process_has_no_peb_and_its_threads_no_teb():
    m, _ = booted()
    registry = m.create_process("Registry", minimal=True, protection="pp-winsystem")
    rt = m.create_thread(registry, program=[P.sleep(ms(100))])
    app = live(m, "app.exe")
    km = bind(m, catalogue().find(*WIN10))
    assert m.peb_address(registry) is None and m.teb_address(rt) is None
    assert km.process_object(registry).field("Peb").value == 0
    assert km.thread_object(rt).field("Tcb.Teb").value == 0
    _, info = m.nt.NtQueryInformationProcess(registry, ProcessBasicInformation)
    assert info["PebBaseAddress"] is None
    _, tinfo = m.nt.NtQueryInformationThread(rt, ThreadBasicInformation)
    assert tinfo["TebBaseAddress"] is None
    # an ordinary process has both
    assert m.peb_address(app) and m.teb_address(app.threads[0])
    assert names(m)["Registry"]["minimal"] is True


def test_pico_process_is_reported_to_ex2_only_without_image_name_or_command_line():
    m, _ = booted()
    plain, ex, ex2 = [], [], []
    m.nt.PsSetCreateProcessNotifyRoutine(lambda parent, pid, create: plain.append((pid, create)))
    m.nt.PsSetCreateProcessNotifyRoutineEx(lambda p, pid, info: ex.append((pid, info)))
    m.nt.PsSetCreateProcessNotifyRoutineEx2(PsCreateProcessNotifySubsystems,
                                            lambda p, pid, info: ex2.append((pid, info)))
    pico = m.create_process("bash", subsystem="wsl")
    m.create_thread(pico, program=[P.cpu(ms(1))])
    win = m.create_process("cmd.exe", image_path="\\??\\C:\\Windows\\System32\\cmd.exe")
    m.create_thread(win, program=[P.cpu(ms(1))])
    m.run_until(ms(10))
    assert plain == [(win.pid, True), (win.pid, False)]
    assert [pid for pid, _ in ex] == [win.pid, win.pid]
    (c_pid, c_info), (w_pid, w_info), (x1, x1_info), (x2, x2_info) = ex2
    assert c_pid == pico.pid and w_pid == win.pid
    assert c_info.IsSubsystemProcess is True
    assert c_info.ImageFileName is None and c_info.CommandLine is None
    assert c_info.FileOpenNameAvailable is False
    assert w_info.IsSubsystemProcess is False
    assert w_info.ImageFileName == "\\??\\C:\\Windows\\System32\\cmd.exe"
    # both exits reach the Ex2 routine (CreateInfo NULL), in exit order
    assert {x1, x2} == {pico.pid, win.pid} and x1_info is None and x2_info is None
    _, sub = m.nt.NtQueryInformationProcess(pico, ProcessSubsystemInformation)
    assert sub == {"SubsystemInformationType": 1}  # SubsystemInformationTypeWSL
    assert names(m).get("bash") is None  # exited, unreferenced


def test_pico_process_has_no_peb():
    m, _ = booted()
    pico = m.create_process("bash", subsystem="wsl")
    t = m.create_thread(pico, program=[P.sleep(ms(100))])
    bind(m, catalogue().find(*WIN10))
    assert m.peb_address(pico) is None and m.teb_address(t) is None
    assert names(m)["bash"]["subsystem"] == "wsl"


def test_minimal_and_pico_processes_open_like_any_other():
    m, _ = booted()
    tool = live(m, "tool.exe")
    registry = live(m, "Registry", "pp-winsystem", minimal=True)
    pico = live(m, "bash", subsystem="wsl")
    assert m.open_process(tool, registry, PROCESS_ALL_ACCESS) is None
    assert m.open_process(tool, registry, PROCESS_QUERY_LIMITED_INFORMATION) is not None
    assert m.open_process(tool, pico, PROCESS_ALL_ACCESS) is not None


# ---------------------------------------------------------------- through a scenario file
def test_open_process_action_in_a_scenario():
    from core.runner import run_scenario
    from core.scenario import parse_scenario

    text = """
[system]
until = "10ms"
[[process]]
name = "tool.exe"
  [[process.thread]]
  name = "T"
  program = ["sleep 1s"]
[[process]]
name = "lsass.exe"
protection = "ppl-lsa"
  [[process.thread]]
  name = "L"
  program = ["cpu 1ms", "exit 0"]
[[at]]
time = "0ms"
do = "open_process tool.exe lsass.exe 0x1fffff"
[[at]]
time = "0ms"
do = "open_process tool.exe lsass.exe 0x101000"
"""
    r = run_scenario(parse_scenario(text, "protect.toml"))
    opens = [(e["caller"], e["target"], e["access"], e["result"])
             for e in r.events if e["type"] == "open_process"]
    assert opens == [("tool.exe", "lsass.exe", 0x1FFFFF, "ERROR_ACCESS_DENIED"),
                     ("tool.exe", "lsass.exe", 0x101000, "ok")]
    # lsass exited at 1 ms; tool.exe's handle keeps its object (and --state-json row) alive
    procs = {p["name"]: p for p in r.state()["processes"]}
    assert procs["lsass.exe"]["exit_code"] == 0 and procs["lsass.exe"]["protection"] == "ppl-lsa"
    assert names(r.machine)["tool.exe"]["handle_count"] == 1


def test_a_limit_failed_process_counts_in_its_job_until_its_handle_closes():
    # S15 with a real handle: P3 stays active in J while a process holds a handle to it
    m, _ = booted()
    j = m.create_job("J")
    assert m.set_job_limits(j, active_process=1)
    holder = live(m, "holder.exe")
    p1, p3 = live(m, "P1"), live(m, "P3")
    assert m.assign_process_to_job(j, p1)
    h = m.open_process(holder, p3, SYNCHRONIZE)
    assert not m.assign_process_to_job(j, p3) and p3.exited
    assert m.query_job_accounting(j)["ActiveProcesses"] == 2
    m.close_process_handle(holder, h)
    assert m.query_job_accounting(j)["ActiveProcesses"] == 1
