"""Property tests: random machines and workloads keep the dispatcher's invariants.

After every step Machine.check_invariants() asserts: one thread per CPU; no ready thread
queued on a CPU outranks what runs (or stands by) there; affinity is never violated; every
live thread is in exactly one of running / standby / a ready queue / waiting; an idle CPU
never coexists with a ready thread allowed on it; CPU time (idle included) adds up to the
elapsed time on every CPU, and thread times add up to busy time.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.kernel import Machine, ms, us
from core.kernel import program as P

CLASSES = ("idle", "below_normal", "normal", "above_normal", "high", "realtime")
LEVELS = ("idle", "lowest", "below_normal", "normal", "above_normal", "highest", "time_critical")
DEVICES = ("disk", "keyboard", "sound", "network")


@st.composite
def workloads(draw):
    cpus = draw(st.integers(1, 4))
    full = (1 << cpus) - 1
    nobj = draw(st.integers(1, 3))
    objs = [(draw(st.sampled_from(("notification", "synchronization", "semaphore"))))
            for _ in range(nobj)]
    procs = []
    for _ in range(draw(st.integers(1, 4))):
        pmask = draw(st.integers(1, full))
        threads = []
        for _ in range(draw(st.integers(1, 4))):
            tmask = draw(st.integers(1, full)) & pmask or pmask
            steps = []
            for _ in range(draw(st.integers(1, 6))):
                kind = draw(st.sampled_from(("cpu", "sleep", "wait", "set", "io", "yield",
                                             "sleep0", "release", "prio")))
                steps.append((kind, draw(st.integers(0, nobj - 1)),
                              draw(st.integers(1, 40_000)), draw(st.sampled_from(DEVICES)),
                              draw(st.sampled_from(LEVELS[1:6]))))
            threads.append((draw(st.sampled_from(LEVELS)), tmask, steps,
                            draw(st.booleans()), draw(st.booleans())))
        procs.append((draw(st.sampled_from(CLASSES)), pmask, draw(st.booleans()), threads))
    actions = draw(st.lists(st.tuples(st.integers(0, 200), st.sampled_from(
        ("suspend", "resume", "terminate", "prio", "affinity", "set")), st.integers(0, 1000)),
        max_size=6))
    return cpus, objs, procs, actions


def build(spec, **opts):
    cpus, objs, procs, actions = spec
    m = Machine(cpus=cpus, **opts)
    made = []
    for kind in objs:
        if kind == "semaphore":
            made.append(m.create_semaphore("s", 0, 5))
        else:
            made.append(m.create_event("e", kind))
    threads = []
    for cls, pmask, fg, tspecs in procs:
        p = m.create_process("p", cls, affinity=pmask, foreground=fg)
        for level, tmask, steps, repeat, boost_off in tspecs:
            prog = [P.cpu(us(50))]
            for kind, oi, dur, dev, lvl in steps:
                obj = made[oi]
                if kind == "cpu":
                    prog.append(P.cpu(us(dur)))
                elif kind == "sleep":
                    prog.append(P.sleep(us(dur)))
                elif kind == "sleep0":
                    prog.append(P.sleep(0))
                elif kind == "wait":
                    prog.append(P.wait(obj, us(dur * 3) if dur % 2 else None))
                elif kind == "set":
                    prog.append(P.release_semaphore(obj, 1) if obj.kind == "semaphore"
                                else P.set_event(obj))
                elif kind == "release":
                    prog.append(P.release_semaphore(obj, 2) if obj.kind == "semaphore"
                                else P.pulse_event(obj))
                elif kind == "io":
                    prog.append(P.io(dev, us(dur)))
                elif kind == "yield":
                    prog.append(P.yield_())
                else:
                    prog.append(P.set_priority(lvl))
            if repeat:
                prog.append(P.repeat())
            threads.append(m.create_thread(p, level, affinity=tmask, program=prog,
                                           disable_boost=boost_off))
    for when, what, arg in actions:
        t = threads[arg % len(threads)]
        if what == "suspend":
            m.at(ms(when), m.suspend_thread, t)
        elif what == "resume":
            m.at(ms(when), m.resume_thread, t)
        elif what == "terminate":
            m.at(ms(when), m.terminate_thread, t, arg)
        elif what == "prio":
            m.at(ms(when), m.set_thread_priority, t, LEVELS[arg % 7])
        elif what == "affinity":
            m.at(ms(when), m.set_thread_affinity, t, (arg % ((1 << cpus) - 1)) + 1
                 & t.process.affinity or t.process.affinity)
        else:
            obj = made[arg % len(made)]
            if obj.kind != "semaphore":
                m.at(ms(when), m.set_event, obj)
    return m


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads(), st.sampled_from([{}, {"wait_quantum": "classic"},
                                     {"sleep0": "equal_or_higher"},
                                     {"win32_priority_separation": 0x18}]))
def test_invariants_hold_after_every_step(spec, opts):
    m = build(spec, **opts)
    m.check_invariants()
    end = ms(300) * 3
    steps = 0
    while steps < 1500 and m._heap and (m._pending or m._heap[0][0] <= end):
        m.step()
        steps += 1
        if not m._pending and not m._torun:
            m.check_invariants()
    m.run_until(ms(1500))
    m.check_invariants()
    for c, (busy, idle) in enumerate(m.cpu_times()):
        assert busy + idle == m.now


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_same_inputs_same_trace(spec):
    a = build(spec)
    a.run_until(ms(800))
    b = build(spec)
    b.run_until(ms(800))
    assert a.cswitch_csv() == b.cswitch_csv()
    assert a.snapshot() == b.snapshot()
