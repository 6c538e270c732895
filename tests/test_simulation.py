"""The app's simulation controller: loading, running in frames, stepping, speed."""

import pytest

from core.kernel import ms
from core.scenario import ScenarioError
from inspector.simulation import BUDGET_S, SimulationController


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


SCENARIO = """\
[system]
cpus = 1
[[process]]
name = "spin.exe"
  [[process.thread]]
  name = "A"
  program = ["cpu 1s"]
  [[process.thread]]
  name = "B"
  program = ["cpu 1s"]
"""


@pytest.fixture
def controller(qtbot, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    c = SimulationController()
    with qtbot.waitSignal(c.loaded):
        c.load_scenario(str(path))
    return c


def test_default_is_the_desktop_demo(qtbot):
    c = SimulationController()
    c.load_default()
    names = {p["name"] for p in c.machine.state()["processes"]}
    assert {"explorer.exe", "lsass.exe", "render.exe", "editor.exe"} <= names
    assert c.source == "default" and c.memory is not None


def test_bad_scenario_leaves_the_machine(controller, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[system]\ncpus = 0\n")
    before = controller.machine
    with pytest.raises(ScenarioError, match="bad.toml:2"):
        controller.load_scenario(str(bad))
    assert controller.machine is before


def test_advance_by_runs_simulated_time(controller, qtbot):
    with qtbot.waitSignal(controller.frameAdvanced):
        controller.advance_by(ms(100))
    assert controller.now_ns == ms(100)
    events = controller.take_new_events()
    assert [e["type"] for e in events[:3]] == ["process_create", "thread_create", "thread_create"]
    assert controller.take_new_events() == []


def test_budget_bounds_a_frame(controller):
    clock = FakeClock()
    controller._clock = clock
    m = controller.machine
    real_run = m.run_until_cycles

    def slow(end):  # each tick slice "takes" 5 ms of wall time
        clock.t += 0.005
        real_run(end)

    m.run_until_cycles = slow
    controller.advance_by(ms(10_000), budget_s=BUDGET_S)
    assert 0 < controller.now_ns < ms(10_000)
    slices = controller.now_ns // ms(15.625)
    assert slices <= BUDGET_S / 0.005 + 1


def test_steps(controller):
    controller.step_to_switch()
    first = len(controller.machine.trace)
    controller.step_to_switch()
    assert len(controller.machine.trace) == first + 1
    t = controller.now_ns
    controller.step_tick()
    assert controller.now_ns == t + 15_625_000
    controller.step_event()
    assert controller.now_ns >= t + 15_625_000


def test_run_and_pause_with_the_timer(controller, qtbot):
    controller.set_speed(None)
    with qtbot.waitSignal(controller.runningChanged):
        controller.start()
    qtbot.waitUntil(lambda: controller.now_ns > ms(50), timeout=5000)
    with qtbot.waitSignal(controller.runningChanged):
        controller.pause()
    assert not controller.running and not controller._timer.isActive()


def test_speed_validation(controller):
    with pytest.raises(ValueError):
        controller.set_speed(0)
    controller.set_speed(0.001)
    assert controller.speed == 0.001
