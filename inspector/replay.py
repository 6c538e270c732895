"""Replaying a saved session (.koi) in the app: a time slider over the recording.

The controller holds the open session and the moment shown (``time_us``).  Seeking,
stepping a sample or playing back at a speed moves that moment; each move says so once
(`frameAdvanced`) and the views pull what they show: ``state()`` (the state document of
the last sample at or before the moment, exactly what the source's ``state()`` returned
then), the events up to it, the whole context-switch trace for the timeline (read once,
with a cursor at the moment).

Structure views need typed kernel memory, which a session does not store.  For a
recording of a scenario, ``machine_at()`` re-runs the scenario on a private machine to
the sample shown (the simulation is deterministic) and hands it over only if its state
equals the recorded one, so what the Object view shows is what the kernel held then.  A
recording the re-run does not reproduce (actions taken in the app changed it; a live
machine) gets the recorded fields instead, and the reason.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from core.kernel.constants import CYCLES_PER_NS
from core.session import SessionError, open_session
from core.units import format_duration
from inspector.paced import PacedController

FRAME_MS = 33
# Replay speeds: recorded time per wall-clock time (None: one sample per frame)
SPEEDS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0, None)
RERUN_BUDGET_S = 0.05  # wall time one call may spend re-running the scenario to the moment


class ReplayController(PacedController):
    """Owns an open session and the moment of it the views show."""

    loaded = Signal(str)  # the session's path

    def __init__(self, parent: QObject | None = None, clock=time.perf_counter) -> None:
        super().__init__(parent, FRAME_MS, clock)
        self.session = None
        self.path = ""
        self.info = None
        self.times: list[float] = []
        self.time_us = 0.0
        self.speed: float | None = 1.0
        self._state_index = -1
        self._state: dict | None = None
        self._rerun = None  # (Run, KernelMemory) re-running the recorded scenario
        self._rerun_failed: str | None = None

    # ------------------------------------------------------------------ opening
    def open(self, path: str) -> None:
        """Open a session read-only; SessionError (refused, untouched) leaves the current
        one open."""
        session = open_session(path)
        try:
            info = session.info()
            times = [float(t) for t in session.sample_times()]
            if not times:
                raise SessionError(f"{path}: the session holds no states")
        except SessionError:
            session.close()
            raise
        self.close()
        self.session, self.info, self.times, self.path = session, info, times, str(path)
        self.time_us = times[0]
        self._state_index, self._state = -1, None
        self._rerun, self._rerun_failed = None, None
        self.loaded.emit(self.path)
        self.frameAdvanced.emit()

    def close(self) -> None:
        self.pause()
        if self.session is not None:
            self.session.close()
        self.session, self.info, self.times = None, None, []
        self._state, self._state_index, self._rerun = None, -1, None

    @property
    def is_open(self) -> bool:
        return self.session is not None

    # ------------------------------------------------------------------ the moment shown
    @property
    def start_us(self) -> float:
        return self.times[0] if self.times else 0.0

    @property
    def end_us(self) -> float:
        return self.times[-1] if self.times else 0.0

    @property
    def now_cycles(self) -> int:
        return round(self.time_us * 1000) * CYCLES_PER_NS

    def sample_index(self) -> int:
        """Index of the sample shown (the last one at or before the moment)."""
        return max(0, bisect.bisect_right(self.times, self.time_us) - 1)

    def seek(self, time_us: float) -> None:
        if not self.times:
            return
        self.time_us = min(max(float(time_us), self.start_us), self.end_us)
        self.frameAdvanced.emit()

    def seek_sample(self, index: int) -> None:
        if self.times:
            self.seek(self.times[min(max(index, 0), len(self.times) - 1)])

    def step(self, samples: int = 1) -> None:
        """Move to the sample `samples` after (before, if negative) the one shown."""
        self.seek_sample(self.sample_index() + samples)

    def state(self) -> dict:
        """The state document at the moment shown (cached per sample)."""
        i = self.sample_index()
        if i != self._state_index or self._state is None:
            self._state = self.session.state_at(self.times[i])
            self._state_index = i
        return self._state

    def events_between(self, t0_us: float, t1_us: float, limit: int) -> list[dict]:
        """The last `limit` events with t0 < time <= t1 (t0 = -inf: from the start)."""
        if self.session is None or t1_us <= t0_us:
            return []
        return self.session.events_before(t1_us, limit, after_us=t0_us)

    def trace(self) -> dict:
        """Every recorded context switch (columns, times in cycles)."""
        info = self.info
        if info.trace_start_us is None:
            return self.session.trace_window(0.0, -1.0)  # none: the empty columns
        return self.session.trace_window(info.trace_start_us, info.trace_end_us)

    # ------------------------------------------------------------------ playing back
    def start(self) -> None:
        if self.session is None or self.running:
            return
        if self.time_us >= self.end_us:
            self.time_us = self.start_us  # play again from the start, like a media player
        super().start()

    def set_speed(self, speed: float | None) -> None:
        if speed is not None and not speed > 0:
            raise ValueError("speed must be positive, or None for one sample per frame")
        self.speed = speed

    def _frame(self) -> None:
        elapsed = self._elapsed_s()
        if self.speed is None:
            self.step(1)
        else:
            self.seek(self.time_us + elapsed * 1e6 * self.speed)
        if self.time_us >= self.end_us:
            self.pause()

    # ------------------------------------------------------------------ structures
    @property
    def rerunnable(self) -> bool:
        """A recording of a scenario: its text and seed are in the session."""
        info = self.info
        return (info is not None and info.source == "simulation"
                and bool((info.description or "").strip()))

    def machine_at(self, budget_s: float = RERUN_BUDGET_S) -> Rerun:
        """The recorded scenario re-run to the sample shown, for the structure views.

        At most `budget_s` of wall time is spent per call (the GUI stays responsive):
        a re-run still on its way comes back `pending`, and the next call goes on from
        there.  Moving back in time starts the re-run over."""
        if not self.rerunnable:
            return Rerun(reason="a recording of a live machine keeps the fields it "
                                "sampled; it has no kernel structures")
        if self._rerun_failed is not None:
            return Rerun(reason=self._rerun_failed)
        from core.kernel import KernelError
        from core.scenario import ScenarioError

        target_us = self.times[self.sample_index()]
        target = round(target_us * 1000) * CYCLES_PER_NS
        try:
            run, memory = self._rerun_machine(target)
            m = run.machine
            deadline = self._clock() + budget_s
            while m.now < target and self._clock() < deadline:
                m.run_until_cycles(min(target, m.now + 16 * m.tick))
        except (ScenarioError, KernelError, ValueError) as exc:
            self._rerun, self._rerun_failed = None, f"the recorded scenario does not run: {exc}"
            return Rerun(reason=self._rerun_failed)
        if m.now < target:
            done = 100.0 * m.now / target if target else 100.0
            return Rerun(reason=f"re-running the recorded scenario to "
                                f"{format_duration(round(target_us * 1000))}: {done:.0f} %",
                         pending=True)
        if m.state() != self.state():
            # Deterministic up to the first change made in the app while it recorded
            return Rerun(reason="here the re-run of the scenario differs from the "
                                "recording (the app changed the machine while recording): "
                                "the recorded fields are shown")
        memory.sync()
        return Rerun(machine=m, memory=memory)

    def _rerun_machine(self, target_cycles: int):
        from core.kernel.kmemory import KernelMemory
        from core.layouts import catalogue
        from core.runner import build_machine
        from core.scenario import parse_scenario

        if self._rerun is None or self._rerun[0].machine.now > target_cycles:
            scenario = parse_scenario(self.info.description, self.info.name or "<session>")
            seed = (self.info.extra or {}).get("seed")
            run = build_machine(scenario, seed=seed if isinstance(seed, int) else None)
            self._rerun = (run, KernelMemory(run.machine, catalogue().find(scenario.system.build)))
        return self._rerun

    def set_build(self, build) -> None:
        if self._rerun is not None:
            self._rerun[1].set_build(build)


@dataclass(frozen=True)
class Rerun:
    """What `machine_at` could give: the machine and its typed memory at the moment
    shown, or why not (`pending`: not there yet; ask again)."""
    machine: object = None
    memory: object = None
    reason: str | None = None
    pending: bool = False
