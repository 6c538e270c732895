"""Job CPU-rate MinRate reservations (nt-facts §6.13).  Windows does not document the
mechanism; these test KOI's model (core/kernel/jobs.py, `_rate_reservations`): while the
rest of an interval is needed for the outstanding reservations, the other rate-controlled
jobs yield in WrCpuRateControl."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.kernel import ms, sec
from core.kernel import program as P
from core.kernel.constants import CYCLES_PER_NS, WAITING, WrCpuRateControl
from core.kernel.jobs import RATE_CHECK_DIVISIONS
from test_jobs import machine, proc  # the job tests' machine and process helpers

INTERVAL_NS = ms(100)  # Machine's default cpu_rate_interval_ns
ONE_CPU = INTERVAL_NS * CYCLES_PER_NS  # cycles one CPU runs in an interval
STEP = ONE_CPU // RATE_CHECK_DIVISIONS  # the closest two CPU rate checks are apart


def spinner(m, job, name, threads=1, priority_class=None):
    """A process whose threads never stop computing, in `job`."""
    p = proc(m, name, program=[P.cpu(sec(1000))], threads=threads,
             priority_class=priority_class)
    assert m.assign_process_to_job(job, p)
    return p


def per_interval(m, jobs, intervals, interval_ns=INTERVAL_NS):
    """Cycles each job ran in each of the next `intervals` intervals (the machine starts
    at an interval boundary)."""
    rows = []
    before = [sum(m.job_times(j)) for j in jobs]
    start = m.now // CYCLES_PER_NS
    for k in range(1, intervals + 1):
        m.run_until(start + k * interval_ns)
        now = [sum(m.job_times(j)) for j in jobs]
        rows.append([b - a for a, b in zip(before, now)])
        before = now
    return rows


def job_state(m, name):
    return next(j for j in m.state()["jobs"] if j["name"] == name)


def a_and_b(min_rate=7000, other_rate=None):
    """One CPU, both spinning: job A with MinRate `min_rate`, and job B, rate-controlled
    with no reservation, whose HIGH process would otherwise take the whole CPU.
    Returns (machine, A, B, B's thread)."""
    m, _ = machine()
    a, b = m.create_job("A"), m.create_job("B")
    assert m.set_job_cpu_rate(a, min_rate=min_rate, max_rate=10000)
    assert m.set_job_cpu_rate(b, **(other_rate or dict(hard_cap=10000)))
    spinner(m, a, "a")
    t = spinner(m, b, "b", priority_class="high").threads[0]
    return m, a, b, t


# each way B can be rate-controlled without a reservation of its own
OTHER_RATES = [dict(hard_cap=10000), dict(min_rate=0, max_rate=10000), dict(weight=5)]


@pytest.mark.parametrize("other_rate", OTHER_RATES)
def test_a_min_rate_job_gets_its_share_of_every_interval(other_rate):
    m, a, b, _ = a_and_b(other_rate=other_rate)
    for used_a, used_b in per_interval(m, [a, b], 5):
        assert used_a >= ONE_CPU * 7000 // 10000
        assert used_a + used_b == ONE_CPU  # B yields only what A needs, nothing idles
        # B runs first and yields once the rest of the interval is A's reservation
        # (less a step of margin for noticing A's reservation met)
        assert used_b >= ONE_CPU * 3000 // 10000 - 2 * STEP, used_b


def test_without_a_min_rate_the_higher_priority_job_takes_the_cpu():
    m, a, b, _ = a_and_b(min_rate=0)
    assert per_interval(m, [a, b], 2) == [[0, ONE_CPU]] * 2


def test_the_yielding_job_waits_in_wr_cpu_rate_control_until_the_reservation_is_met():
    m, a, _, t = a_and_b()
    m.run_until(ms(29))
    assert m.running[0] is t  # nothing to yield to yet: A can still get its 70 ms
    m.run_until(ms(99.8))
    assert (t.state, t.wait_reason) == (WAITING, WrCpuRateControl)
    assert job_state(m, "B")["cpu_rate_throttled"]
    assert m.running[0].process.jobs == [a]
    m.run_until(ms(100))  # A has had its 70 ms (with a step of margin): B runs again
    assert m.running[0] is t


def test_clearing_the_reservation_releases_the_jobs_yielding_to_it_at_once():
    m, a, _, t = a_and_b()
    m.run_until(ms(50))
    assert t.wait_reason == WrCpuRateControl
    assert m.set_job_cpu_rate(a)  # rate control off
    m.dispatch()
    assert m.running[0] is t
    assert not job_state(m, "B")["cpu_rate_throttled"]


def test_a_min_rate_job_with_no_work_reserves_nothing():
    m, _ = machine()
    a, b = m.create_job("A"), m.create_job("B")
    m.set_job_cpu_rate(a, min_rate=7000, max_rate=10000)
    m.set_job_cpu_rate(b, hard_cap=10000)
    sleeper = proc(m, "a", program=[P.sleep(sec(100))])
    m.assign_process_to_job(a, sleeper)
    t = spinner(m, b, "b").threads[0]
    assert per_interval(m, [a, b], 3) == [[0, ONE_CPU]] * 3
    assert t.cswitches == 1  # switched in once and never held


def test_nested_reservations_are_a_share_of_the_parents_allocation():
    m, _ = machine()
    parent = m.create_job("P")
    m.set_job_cpu_rate(parent, hard_cap=5000)  # half the machine
    c1, c2 = m.create_job("C1", parent=parent), m.create_job("C2", parent=parent)
    assert m.set_job_cpu_rate(c1, min_rate=6000, max_rate=10000)  # 60 % of the half
    assert m.set_job_cpu_rate(c2, min_rate=0, max_rate=10000)
    spinner(m, c1, "c1")
    spinner(m, c2, "c2", priority_class="high")
    for used_c1, used_c2 in per_interval(m, [c1, c2], 4):
        assert used_c1 >= ONE_CPU * 3000 // 10000
        assert used_c1 + used_c2 == ONE_CPU // 2  # the parent's cap
        assert used_c2 >= ONE_CPU * 2000 // 10000 - 2 * STEP


def test_a_met_reservation_yields_to_one_still_outstanding():
    """Two reservations need the whole machine: each is met although the one whose
    threads run at the higher priority could take it all."""
    m, _ = machine(cpus=2)
    a, c, b = m.create_job("A"), m.create_job("C"), m.create_job("B")
    m.set_job_cpu_rate(a, min_rate=4000, max_rate=10000)
    m.set_job_cpu_rate(c, min_rate=6000, max_rate=10000)
    m.set_job_cpu_rate(b, hard_cap=10000)
    spinner(m, a, "a", threads=2, priority_class="high")
    spinner(m, c, "c", threads=2)
    spinner(m, b, "b", threads=2, priority_class="high")
    for used_a, used_c, used_b in per_interval(m, [a, c, b], 4):
        assert used_a >= 2 * ONE_CPU * 4000 // 10000
        assert used_c >= 2 * ONE_CPU * 6000 // 10000
        assert used_a + used_c + used_b == 2 * ONE_CPU
        assert used_b == 0  # the two reservations fill the machine


# ---- property ------------------------------------------------------------------------------

CLASSES = ["below_normal", "normal", "above_normal", "high"]
RATE_INTERVAL_NS = ms(20)

job_specs = st.lists(
    st.tuples(st.sampled_from(["min_max", "hard_cap", "weight"]),
              st.integers(0, 10000), st.integers(1, 10000), st.integers(1, 3),
              st.sampled_from(CLASSES)),
    min_size=1, max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cpus=st.integers(1, 2), specs=job_specs)
def test_property_reservations_are_met_and_max_rates_never_exceeded(cpus, specs):
    """Every job spins, each reserving job with at least a thread per CPU and nothing
    outside the jobs: the reservations are feasible, so in every interval each reserving
    job gets at least its MinRate share, and no job runs past its MaxRate or hard cap."""
    m, _ = machine(cpus=cpus, cpu_rate_interval_ns=RATE_INTERVAL_NS)
    full = RATE_INTERVAL_NS * CYCLES_PER_NS * cpus
    step = RATE_INTERVAL_NS * CYCLES_PER_NS // RATE_CHECK_DIVISIONS
    margin_rate = 10000 // RATE_CHECK_DIVISIONS  # a step per CPU, as a rate
    reserved_total = 0
    jobs = []  # (job, MinRate cycles, MaxRate cycles or None, most CPUs it can use)
    for i, (mode, low, high, threads, cls) in enumerate(specs):
        j = m.create_job(f"J{i}")
        if mode == "min_max":
            # the sum of MinRates stays <= 10000, less the model's margin: a step per CPU
            # for each reserving job, which a met reservation may overrun unnoticed
            low = min(low, 10000 - margin_rate * len(specs) - reserved_total)
            high = max(high, low, 1)
            assert m.set_job_cpu_rate(j, min_rate=low, max_rate=high)
            reserved_total += low
            if low:
                threads = max(threads, cpus)
            jobs.append((j, full * low // 10000, full * high // 10000, min(cpus, threads)))
        elif mode == "hard_cap":
            assert m.set_job_cpu_rate(j, hard_cap=high)
            jobs.append((j, 0, full * high // 10000, min(cpus, threads)))
        else:
            assert m.set_job_cpu_rate(j, weight=1 + high % 9)
            jobs.append((j, 0, None, min(cpus, threads)))
        spinner(m, j, f"p{i}", threads=threads, priority_class=cls)
    for used in per_interval(m, [j for j, *_ in jobs], 5, RATE_INTERVAL_NS):
        for (job, reserved, cap, fastest), u in zip(jobs, used):
            if cap is not None:
                assert u <= cap, (job.name, u, cap)
                # a cap is given up when less than a step per CPU is left of it,
                # which a reservation up to the cap can lose too
                assert u >= min(reserved, cap - fastest * step), (job.name, u, reserved)
            else:
                assert u >= reserved, (job.name, u, reserved)
        assert sum(used) <= full
        m.check_invariants()


def test_min_rates_add_up_within_the_allocation_they_share():
    m, _ = machine()
    # parents without a rate: their children's rates are fractions of the machine
    p1, p2 = m.create_job("P1"), m.create_job("P2")
    a, b = m.create_job("A", parent=p1), m.create_job("B", parent=p2)
    assert m.set_job_cpu_rate(a, min_rate=6000, max_rate=10000)
    assert not m.set_job_cpu_rate(b, min_rate=5000, max_rate=10000)  # 11000 of the machine
    assert m.set_job_cpu_rate(b, min_rate=4000, max_rate=10000)
    # under a rate-controlled parent the shares are of its allocation: 100 % again
    r = m.create_job("R")
    assert m.set_job_cpu_rate(r, hard_cap=5000)
    c, d = m.create_job("C", parent=r), m.create_job("D", parent=r)
    assert m.set_job_cpu_rate(c, min_rate=7000, max_rate=10000)
    assert m.set_job_cpu_rate(d, min_rate=3000, max_rate=10000)
    assert not m.set_job_cpu_rate(d, min_rate=3001, max_rate=10000)
