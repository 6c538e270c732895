"""Driving the simulated machine from the app: run, pause, step, speed.

The simulation advances in frames paced by a QTimer (up to 40 a second).  Each frame
runs the machine forward by the simulated time the speed asks for, but never for more
than a fixed wall-clock budget, so the window keeps painting at full speed whatever the
machine does; at "as fast as possible" the budget alone sets the pace.  After each
frame the controller says so once (`frameAdvanced`) and the views pull what they show
from it: `state()`, the events since the last frame, the trace, typed memory.
Everything the views call runs on the GUI thread between frames, so the machine is
never read while it runs.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core.kernel import Machine
from core.kernel.constants import CYCLES_PER_NS
from core.kernel.kmemory import KernelMemory
from core.layouts import Build, catalogue
from core.resources import resource_path
from core.runner import Run, build_machine
from core.scenario import load_scenario
from core.session import Recorder
from inspector.paced import PacedController

DEFAULT_SCENARIO = "scenarios/demo.toml"
FRAME_MS = 25  # up to 40 frames a second: 30 with room to spare
BUDGET_S = 0.012  # wall time a frame may spend simulating
SPEEDS = (0.001, 0.01, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0, None)  # None: flat out
RECORD_RETENTION_NS = 30 * 60 * 1_000_000_000  # the app records the last 30 simulated minutes


def speed_label(speed: float | None) -> str:
    if speed is None:
        return "Fastest"
    return f"{speed:g}x"


class SimulationController(PacedController):
    """Owns the running machine (a scenario on the simulated kernel)."""

    loaded = Signal(str)  # a new machine: its source (a path or "default")

    def __init__(self, parent: QObject | None = None, clock=time.perf_counter) -> None:
        super().__init__(parent, FRAME_MS, clock)
        self.run: Run | None = None
        self.source = ""
        self.speed: float | None = 1.0
        self.memory: KernelMemory | None = None
        self.recorder: Recorder | None = None
        self.retention_ns = RECORD_RETENTION_NS  # how much the recording keeps
        self.scenario = None  # the parsed scenario loaded, and the seed it runs with
        self.seed: int | None = None
        self._new_events: list[dict] = []

    # ------------------------------------------------------------------ loading
    @property
    def machine(self) -> Machine | None:
        return self.run.machine if self.run is not None else None

    def load_default(self) -> None:
        self.load_scenario(str(resource_path(DEFAULT_SCENARIO)), source="default")

    def load_scenario(self, path: str, source: str | None = None) -> None:
        """Load a scenario file; raises ScenarioError (file, line, key) for a bad one and
        leaves the current machine untouched."""
        self.load_parsed(load_scenario(path), source or str(Path(path)))

    def load_parsed(self, scenario, source: str, seed: int | None = None) -> None:
        """Load a parsed scenario (`source` names where it came from); `seed` overrides
        the scenario's."""
        run = build_machine(scenario, seed)
        was_running = self.running
        self.pause()
        self.run = run
        self.source = source
        self.scenario, self.seed = scenario, seed
        self._new_events = list(run.events)
        run.machine.subscribe(self._on_event)
        build = catalogue().find(scenario.system.build)
        self.memory = KernelMemory(run.machine, build)
        # Recording is continuous and bounded: File > Save Session writes it out
        self.recorder = Recorder(
            run.machine, retention_ns=self.retention_ns, source="simulation",
            build=build.id, arch=build.arch, name=Path(scenario.filename).name,
            description=scenario.source, past_events=list(run.events),
            extra={"seed": scenario.system.seed if seed is None else seed})
        self.loaded.emit(self.source)
        self.frameAdvanced.emit()
        if was_running:
            self.start()

    def set_retention(self, retention_ns: int) -> None:
        """Keep at least this much simulated time in the recording (from now on)."""
        self.retention_ns = retention_ns
        if self.recorder is not None:
            self.recorder.retention_ns = retention_ns

    def reload(self) -> None:
        """The scenario loaded last, again from time 0."""
        if self.scenario is not None:
            self.load_parsed(self.scenario, self.source, self.seed)

    def _on_event(self, event: dict) -> None:
        self._new_events.append(event)

    def take_new_events(self) -> list[dict]:
        """Events since the last call (for the event log)."""
        out, self._new_events = self._new_events, []
        return out

    def set_build(self, build: Build) -> None:
        if self.memory is not None:
            self.memory.set_build(build)

    # ------------------------------------------------------------------ time
    @property
    def now_ns(self) -> int:
        m = self.machine
        return 0 if m is None else m.now // CYCLES_PER_NS

    @property
    def now_cycles(self) -> int:
        m = self.machine
        return 0 if m is None else m.now

    def start(self) -> None:
        if self.run is not None:
            super().start()

    def set_speed(self, speed: float | None) -> None:
        if speed is not None and not 0 < speed:
            raise ValueError("speed must be positive, or None for as fast as possible")
        self.speed = speed

    # ------------------------------------------------------------------ advancing
    def _frame(self) -> None:
        elapsed = self._elapsed_s()
        if self.speed is None:
            self.advance_for(BUDGET_S)
        else:
            self.advance_by(int(elapsed * self.speed * 1e9), BUDGET_S)

    def advance_by(self, duration_ns: int, budget_s: float = BUDGET_S) -> None:
        """Run `duration_ns` of simulated time, in slices of a clock tick, stopping early
        when the wall budget is spent (the rest is dropped: slow motion stays smooth)."""
        m = self.machine
        if m is None or duration_ns <= 0:
            return
        target = m.now + duration_ns * CYCLES_PER_NS
        deadline = self._clock() + budget_s
        while m.now < target:
            self._run_to(min(target, m.now + m.tick))
            if self._clock() >= deadline:
                break
        self._after_advance()

    def _run_to(self, cycles: int) -> None:
        """Run the machine to `cycles`, sampling it for the recording on the way."""
        m = self.machine
        if self.recorder is None:
            m.run_until_cycles(cycles)
        else:
            self.recorder.run_until(cycles // CYCLES_PER_NS,
                                    advance=lambda ns: m.run_until_cycles(ns * CYCLES_PER_NS))

    def advance_for(self, budget_s: float) -> None:
        """Run as much simulated time as `budget_s` of wall time allows."""
        m = self.machine
        if m is None:
            return
        deadline = self._clock() + budget_s
        while self._clock() < deadline:
            self._run_to(m.now + m.tick)
        self._after_advance()

    def step_event(self) -> None:
        """Process the next kernel event (one dispatcher decision)."""
        m = self.machine
        if m is not None:
            m.step()
            self._after_advance()

    def step_tick(self) -> None:
        m = self.machine
        if m is not None:
            self._run_to(m.now + m.tick)
            self._after_advance()

    def save_session(self, path: str) -> None:
        """Write the recording so far as a session file (atomically; SessionError)."""
        if self.recorder is None:
            raise ValueError("nothing is loaded")
        self.recorder.save(path)

    def advance_to(self, time_ns: int) -> None:
        """Run to simulated time `time_ns` (however long it takes: re-running a recording
        to a moment chosen in it)."""
        m = self.machine
        if m is not None and m.now < time_ns * CYCLES_PER_NS:
            self._run_to(time_ns * CYCLES_PER_NS)
            self._after_advance()

    def step_to_switch(self, limit_ticks: int = 64 * 10) -> None:
        """Run until the next context switch (or `limit_ticks` clock ticks pass)."""
        m = self.machine
        if m is None:
            return
        before = len(m.trace)
        end = m.now + limit_ticks * m.tick
        while len(m.trace) == before and m.now < end and m.step():
            pass
        self._after_advance()

    def _after_advance(self) -> None:
        if self.memory is not None:
            self.memory.sync()
        self.frameAdvanced.emit()
