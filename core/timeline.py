"""CPU timeline data: per-CPU run segments built from the context-switch trace, level of
detail for drawing them, and CPU usage binned over time (per CPU and per process).

Plain numpy, no Qt.  Times are integer cycles of the simulated clock
(core.kernel.constants.CYCLES_PER_NS per ns) unless a name says otherwise.

A context switch at time t on CPU c ends the segment running there (its thread leaves in
`old_state`, with `old_wait_reason` saying why) and starts one for `new_tid`.  So every CPU
holds a gap-free, time-ordered run of segments; the last one is open and ends at "now".
Segments are stored per CPU as structure-of-arrays with amortised O(1) appends: no Python
object per segment, and appending new switches never rebuilds what is already there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from core.kernel.constants import (
    KTHREAD_STATE,
    KWAIT_REASON,
    NO_WAIT_REASON,
    TERMINATED,
    WAITING,
    WrPreempted,
    WrQuantumEnd,
    WrYieldExecution,
)

# end_state of a CPU's last segment: its thread is still running at "now"
STILL_RUNNING = -1
# end_priority when the segment has not ended
UNKNOWN_PRIORITY = -1
IDLE_PID = 0

TRACE_COLUMNS = ("time", "cpu", "old_tid", "new_tid", "old_pid", "new_pid", "old_priority",
                 "new_priority", "old_state", "old_wait_reason")

# Merged (many segments per pixel) columns draw a bar whose height is the busy fraction,
# quantised to this many levels so that neighbouring columns merge into one rectangle.
FILL_LEVELS = 16
# Largest columns x processes matrix accumulated at once (float64: 8 MiB).
_ACCUMULATE_CELLS = 1 << 20


class TimelineError(ValueError):
    """The trace cannot be turned into a timeline (the message says why, in one line)."""


class Segment(NamedTuple):
    """One run of one thread on one CPU, [start, end) in cycles."""
    cpu: int
    index: int
    start: int
    end: int
    pid: int
    tid: int
    priority: int        # priority when switched in
    end_state: int       # KTHREAD_STATE index after the switch out, STILL_RUNNING if open
    end_wait: int        # KWAIT_REASON index, NO_WAIT_REASON if none
    end_priority: int    # priority when switched out, UNKNOWN_PRIORITY if open

    @property
    def duration(self) -> int:
        return self.end - self.start

    @property
    def idle(self) -> bool:
        return self.pid == IDLE_PID


class Segments(NamedTuple):
    """Read-only views of one CPU's segments (valid until the timeline next grows)."""
    start: np.ndarray
    end: np.ndarray
    pid: np.ndarray
    tid: np.ndarray
    priority: np.ndarray
    end_state: np.ndarray
    end_wait: np.ndarray
    end_priority: np.ndarray


class LodRow(NamedTuple):
    """What to draw for one CPU row: rectangles in column units from the window start.

    `fill` is the bar height as a fraction of the row (the busy fraction of merged
    columns, 1 for exact segments).  `merged` says whether columns were merged."""
    x0: np.ndarray
    x1: np.ndarray
    pid: np.ndarray
    fill: np.ndarray
    merged: bool


class Usage(NamedTuple):
    """Busy time binned over [edges[0], edges[-1]), in cycles."""
    edges: np.ndarray          # float64 (nbins + 1,) bin edges in cycles
    covered: np.ndarray        # float64 (nbins,) trace time inside each bin, per CPU
    cpu_busy: np.ndarray       # float64 (cpus, nbins) non-idle cycles per CPU
    pids: np.ndarray           # int64 (k,) processes that ran, ascending
    process_busy: np.ndarray   # float64 (k, nbins) their cycles summed over all CPUs


def end_reason_text(end_state: int, end_wait: int) -> str:
    """Why a segment ended, in the words of KTHREAD_STATE / KWAIT_REASON."""
    if end_state == STILL_RUNNING:
        return "still running"
    state = _state_name(end_state)
    if end_state == WAITING:
        return f"Waiting: {_wait_name(end_wait)}" if end_wait >= 0 else "Waiting"
    if end_state == TERMINATED:
        return "Terminated"
    if end_wait == WrPreempted:
        return f"Preempted (now {state}, WrPreempted)"
    if end_wait == WrQuantumEnd:
        return f"Quantum end (now {state}, WrQuantumEnd)"
    if end_wait == WrYieldExecution:
        return f"Yielded (now {state}, WrYieldExecution)"
    if end_wait >= 0:
        return f"{state} ({_wait_name(end_wait)})"
    return state


def _state_name(index: int) -> str:
    return KTHREAD_STATE[index] if 0 <= index < len(KTHREAD_STATE) else f"state {index}"


def _wait_name(index: int) -> str:
    return KWAIT_REASON[index] if 0 <= index < len(KWAIT_REASON) else f"wait reason {index}"


class NameLookup:
    """Process and thread names by id, e.g. from Machine.state()."""

    __slots__ = ("processes", "threads")

    def __init__(self, processes: Mapping[int, str] | None = None,
                 threads: Mapping[int, str] | None = None) -> None:
        self.processes = dict(processes or {})
        self.threads = dict(threads or {})

    @classmethod
    def from_state(cls, state: Mapping) -> NameLookup:
        procs: dict[int, str] = {}
        threads: dict[int, str] = {}
        for p in state.get("processes", ()):
            procs[int(p["pid"])] = str(p["name"])
            if int(p["pid"]) == IDLE_PID:
                continue  # every idle thread is tid 0; named per CPU instead
            for t in p.get("threads", ()):
                threads[int(t["tid"])] = str(t["name"])
        return cls(procs, threads)

    def process(self, pid: int) -> str | None:
        return self.processes.get(pid)

    def thread(self, tid: int) -> str | None:
        return self.threads.get(tid)


class _Lane:
    """One CPU's segments, structure-of-arrays with capacity doubling.

    start[n] is kept equal to the end of the last segment, so start[i0:i1 + 1] is the
    boundary list of segments i0..i1-1 without a copy (segments on a CPU are gap-free)."""

    FIELDS = (("start", np.int64), ("end", np.int64), ("pid", np.int32), ("tid", np.int32),
              ("priority", np.int8), ("end_state", np.int8), ("end_wait", np.int8),
              ("end_priority", np.int8),
              ("proc", np.int32),          # dense process index (0 = idle)
              ("busy_before", np.int64))   # non-idle cycles on this CPU before `start`
    __slots__ = ("n", "arrays")

    def __init__(self) -> None:
        self.n = 0
        self.arrays = {name: np.empty(16, dt) for name, dt in self.FIELDS}

    def reserve(self, extra: int) -> None:
        need = self.n + extra + 1  # + the start[n] boundary
        cap = len(self.arrays["start"])
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        for name, arr in self.arrays.items():
            grown = np.empty(cap, arr.dtype)
            grown[: self.n + 1] = arr[: self.n + 1]
            self.arrays[name] = grown

    def view(self, name: str) -> np.ndarray:
        return self.arrays[name][: self.n]


class Timeline:
    """Per-CPU run segments of a context-switch trace, grown incrementally.

    `extend(columns, now)` takes the trace's full columns (Machine.trace.columns()) and
    consumes only the rows it has not seen; `set_now` moves the end of each CPU's open
    segment.  `version` changes whenever what would be drawn changes.
    """

    def __init__(self, cpus: int, origin: int = 0) -> None:
        if not 1 <= int(cpus) <= 4096:
            raise TimelineError(f"a timeline needs 1..4096 CPUs, not {cpus}")
        self.cpus = int(cpus)
        self.origin = int(origin)
        self.now = self.origin
        self.rows_consumed = 0
        self.version = 0
        self._lanes = [_Lane() for _ in range(self.cpus)]
        # Dense process indices, so per-pixel "which process dominates" is a bincount.
        self._proc_pids = np.zeros(1, np.int64)          # index -> pid; 0 is idle
        self._sorted_pids = np.zeros(1, np.int64)        # pids ascending
        self._sorted_index = np.zeros(1, np.int32)       # their indices

    # ------------------------------------------------------------------ building
    @classmethod
    def from_columns(cls, columns: Mapping[str, np.ndarray], now: int,
                     cpus: int | None = None, origin: int = 0) -> Timeline:
        if cpus is None:
            cpu = np.asarray(columns["cpu"])
            cpus = int(cpu.max()) + 1 if len(cpu) else 1
        tl = cls(cpus, origin)
        tl.extend(columns, now)
        return tl

    def extend(self, columns: Mapping[str, np.ndarray], now: int, first_row: int = 0) -> int:
        """Consume the trace rows past `rows_consumed`, then move "now".

        `columns` holds the trace's rows from `first_row` on (the whole trace by
        default).  Returns the number of switches taken.  Rows must be in time order per
        CPU (the trace appends them in time order)."""
        missing = [name for name in TRACE_COLUMNS if name not in columns]
        if missing:
            raise TimelineError(f"trace columns missing: {', '.join(missing)}")
        held = len(columns["time"])
        if any(len(columns[name]) != held for name in TRACE_COLUMNS):
            raise TimelineError("trace columns have different lengths")
        if first_row > self.rows_consumed:
            raise TimelineError(f"trace rows {self.rows_consumed}..{first_row - 1} are "
                                f"missing: the columns start at row {first_row}")
        total = first_row + held
        if total < self.rows_consumed:
            raise TimelineError(f"the trace has {total} switches but the timeline already "
                                f"holds {self.rows_consumed}: it is a different trace")
        new = slice(self.rows_consumed - first_row, held)
        rows = {name: np.asarray(columns[name][new]) for name in TRACE_COLUMNS}
        count = total - self.rows_consumed
        now = int(now)
        # Everything is checked before anything changes: a bad batch leaves the
        # timeline as it was.
        latest = max(self._latest_start(), int(rows["time"].max()) if count else 0)
        if now < latest:
            raise TimelineError(f"now ({now}) is earlier than the last switch ({latest})")
        if count:
            self._append_rows(rows)
        self.rows_consumed = total
        self.set_now(now)
        return count

    def _append_rows(self, rows: dict[str, np.ndarray]) -> None:
        time = rows["time"].astype(np.int64, copy=False)
        cpu = rows["cpu"].astype(np.int64, copy=False)
        if cpu.min() < 0 or cpu.max() >= self.cpus:
            raise TimelineError(f"a switch on CPU {int(cpu.max())} but the timeline has "
                                f"{self.cpus} CPUs")
        if time.min() < self.origin:
            raise TimelineError(f"a switch at cycle {int(time.min())} is before the "
                                f"timeline's origin {self.origin}")
        order = np.lexsort((time, cpu))  # by CPU, then time; stable for equal times
        bounds = np.searchsorted(cpu[order], np.arange(self.cpus + 1))
        per_cpu = []
        for c in range(self.cpus):
            idx = order[bounds[c]:bounds[c + 1]]
            if len(idx):
                lane_rows = {k: v[idx] for k, v in rows.items()}
                self._check_lane(c, time[idx], lane_rows)
                per_cpu.append((c, time[idx], lane_rows))
        self._register_pids(np.concatenate((rows["old_pid"], rows["new_pid"])))
        for c, lane_time, lane_rows in per_cpu:
            self._append_lane(c, lane_time, lane_rows)

    def _register_pids(self, pids: np.ndarray) -> None:
        uniq = np.unique(pids.astype(np.int64))
        pos = np.searchsorted(self._sorted_pids, uniq)
        pos = np.minimum(pos, len(self._sorted_pids) - 1)
        fresh = uniq[self._sorted_pids[pos] != uniq]
        if not len(fresh):
            return
        first = len(self._proc_pids)
        self._proc_pids = np.concatenate((self._proc_pids, fresh))
        all_pids = np.concatenate((self._sorted_pids, fresh))
        all_index = np.concatenate((self._sorted_index,
                                    np.arange(first, first + len(fresh), dtype=np.int32)))
        order = np.argsort(all_pids, kind="stable")
        self._sorted_pids = all_pids[order]
        self._sorted_index = all_index[order]

    def _proc_index(self, pids: np.ndarray) -> np.ndarray:
        return self._sorted_index[np.searchsorted(self._sorted_pids, pids.astype(np.int64))]

    def _check_lane(self, c: int, time: np.ndarray, r: dict[str, np.ndarray]) -> None:
        lane = self._lanes[c]
        old_tid, old_pid, new_tid, new_pid = r["old_tid"], r["old_pid"], r["new_tid"], r["new_pid"]
        # Each switch must take off the CPU the thread the previous one put there.
        bad = np.flatnonzero((new_tid[:-1] != old_tid[1:]) | (new_pid[:-1] != old_pid[1:]))
        if len(bad):
            i = int(bad[0]) + 1
            raise TimelineError(
                f"inconsistent trace: CPU {c} at cycle {int(time[i])} switches out tid "
                f"{int(old_tid[i])} but tid {int(new_tid[i - 1])} was running there")
        if lane.n:
            a, last = lane.arrays, lane.n - 1
            if time[0] < a["start"][last]:
                raise TimelineError(f"CPU {c}: a switch at cycle {int(time[0])} is earlier "
                                    f"than the one at cycle {int(a['start'][last])}")
            if a["tid"][last] != old_tid[0] or a["pid"][last] != old_pid[0]:
                raise TimelineError(
                    f"inconsistent trace: CPU {c} at cycle {int(time[0])} switches out tid "
                    f"{int(old_tid[0])} but tid {int(a['tid'][last])} was running there")

    def _append_lane(self, c: int, time: np.ndarray, r: dict[str, np.ndarray]) -> None:
        lane = self._lanes[c]
        old_tid, old_pid, new_tid, new_pid = r["old_tid"], r["old_pid"], r["new_tid"], r["new_pid"]
        n = lane.n
        if n:
            last = n - 1
            lane.reserve(len(time))
        else:
            # What ran before this CPU's first recorded switch ran from the origin.
            lane.reserve(len(time) + 1)
            a = lane.arrays
            a["start"][0] = self.origin
            a["pid"][0] = old_pid[0]
            a["tid"][0] = old_tid[0]
            a["priority"][0] = r["old_priority"][0]
            a["proc"][0] = self._proc_index(old_pid[:1])[0]
            a["busy_before"][0] = 0
            lane.n = n = 1
            last = 0
        a = lane.arrays
        # close the open segment
        a["end"][last] = time[0]
        a["end_state"][last] = r["old_state"][0]
        a["end_wait"][last] = r["old_wait_reason"][0]
        a["end_priority"][last] = r["old_priority"][0]
        k = len(time)
        new = slice(n, n + k)
        a["start"][new] = time
        a["end"][n:n + k - 1] = time[1:]
        a["end"][n + k - 1] = time[-1]  # open: set_now moves it
        a["start"][n + k] = time[-1]
        a["pid"][new] = new_pid
        a["tid"][new] = new_tid
        a["priority"][new] = r["new_priority"]
        a["end_state"][n:n + k - 1] = r["old_state"][1:]
        a["end_state"][n + k - 1] = STILL_RUNNING
        a["end_wait"][n:n + k - 1] = r["old_wait_reason"][1:]
        a["end_wait"][n + k - 1] = NO_WAIT_REASON
        a["end_priority"][n:n + k - 1] = r["old_priority"][1:]
        a["end_priority"][n + k - 1] = UNKNOWN_PRIORITY
        a["proc"][new] = self._proc_index(new_pid)
        # busy_before depends only on starts, so it never changes once written
        starts = a["start"][last:n + k]
        busy = a["pid"][last:n + k - 1] != IDLE_PID
        a["busy_before"][new] = a["busy_before"][last] + np.cumsum(np.diff(starts) * busy)
        lane.n = n + k

    def _latest_start(self) -> int:
        latest = self.origin
        for lane in self._lanes:
            if lane.n:
                latest = max(latest, int(lane.arrays["start"][lane.n - 1]))
        return latest

    def set_now(self, now: int) -> None:
        """The open segment of every CPU runs to `now` (cycles)."""
        now = int(now)
        if now < self._latest_start():
            raise TimelineError(f"now ({now}) is earlier than the last switch "
                                f"({self._latest_start()})")
        for lane in self._lanes:
            if lane.n:
                lane.arrays["end"][lane.n - 1] = now
                lane.arrays["start"][lane.n] = now
        self.now = now
        self.version += 1

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return sum(lane.n for lane in self._lanes)

    def segments(self, cpu: int) -> Segments:
        lane = self._lanes[cpu]
        views = []
        for name in Segments._fields:
            v = lane.view(name)
            v.flags.writeable = False
            views.append(v)
        return Segments(*views)

    def segment(self, cpu: int, index: int) -> Segment:
        a = self._lanes[cpu].arrays
        return Segment(cpu, int(index), int(a["start"][index]), int(a["end"][index]),
                       int(a["pid"][index]), int(a["tid"][index]), int(a["priority"][index]),
                       int(a["end_state"][index]), int(a["end_wait"][index]),
                       int(a["end_priority"][index]))

    def pids(self) -> np.ndarray:
        """Every pid seen, ascending."""
        return self._sorted_pids.copy()

    def visible_range(self, cpu: int, t0: float, t1: float) -> tuple[int, int]:
        """Index range of the segments of `cpu` that overlap [t0, t1)."""
        lane = self._lanes[cpu]
        i0 = int(np.searchsorted(lane.view("end"), t0, side="right"))
        i1 = int(np.searchsorted(lane.view("start"), t1, side="left"))
        return i0, max(i0, i1)

    def segment_at(self, cpu: int, t: float, slack: float = 0.0) -> Segment | None:
        """The segment running on `cpu` at time `t`.  If that is idle (or nothing) and
        `slack` > 0, the longest non-idle segment within `t` ± `slack` instead: a sliver
        drawn one pixel wide can then still be pointed at."""
        if not 0 <= cpu < self.cpus:
            return None
        lane = self._lanes[cpu]
        if not lane.n or t < self.origin or t > self.now:
            return None
        start = lane.view("start")
        i = int(np.searchsorted(start, t, side="right")) - 1
        hit = i if i >= 0 and lane.arrays["end"][i] >= t else None
        if slack <= 0 or (hit is not None and lane.arrays["pid"][hit] != IDLE_PID):
            return None if hit is None else self.segment(cpu, hit)
        j0, j1 = self.visible_range(cpu, t - slack, t + slack)
        if j1 > j0:
            dur = lane.arrays["end"][j0:j1] - start[j0:j1]
            dur = np.where(lane.arrays["pid"][j0:j1] != IDLE_PID, dur, -1)
            best = int(np.argmax(dur))
            if dur[best] >= 0:
                return self.segment(cpu, j0 + best)
        return None if hit is None else self.segment(cpu, hit)

    def thread_columns(self, cpu: int, tid: int, t0: float, t1: float,
                       columns: int) -> tuple[np.ndarray, np.ndarray]:
        """Column runs [x0, x1) of [t0, t1) split into `columns` where `tid` ran on `cpu`
        (for highlighting a selected thread at any zoom)."""
        lane = self._lanes[cpu]
        i0, i1 = self.visible_range(cpu, t0, t1)
        mask = lane.arrays["tid"][i0:i1] == tid
        if tid == 0:
            mask &= lane.arrays["pid"][i0:i1] != IDLE_PID
        if not mask.any():
            empty = np.empty(0, np.float64)
            return empty, empty
        width = (t1 - t0) / columns
        xs = np.clip((lane.arrays["start"][i0:i1][mask] - t0) / width, 0, columns)
        xe = np.clip((lane.arrays["end"][i0:i1][mask] - t0) / width, 0, columns)
        c0 = np.minimum(np.floor(xs), columns - 1.0)
        c1 = np.maximum(np.ceil(xe), c0 + 1.0)
        # segments on a CPU never overlap, so c0 and c1 both ascend: merge touching runs
        brk = np.ones(len(c0), bool)
        brk[1:] = c0[1:] > c1[:-1]
        first = np.flatnonzero(brk)
        last = np.append(first[1:], len(c0)) - 1
        return c0[first], c1[last]

    # ------------------------------------------------------------------ level of detail
    def lod(self, cpu: int, t0: float, t1: float, columns: int) -> LodRow:
        """What to draw of `cpu` over [t0, t1) on `columns` pixel columns.

        If no more segments than columns are visible, every non-idle segment exactly
        (at least one column wide).  Otherwise one bar per column: the process that ran
        longest in it, as tall as the column's busy fraction, with equal neighbours merged.
        Never more rectangles than columns."""
        columns = int(columns)
        if columns <= 0 or not t1 > t0:
            raise TimelineError("level of detail needs a positive width and t1 > t0")
        lane = self._lanes[cpu]
        i0, i1 = self.visible_range(cpu, t0, t1)
        a = lane.arrays
        width = (t1 - t0) / columns
        if i1 - i0 <= columns:
            keep = i0 + np.flatnonzero((a["pid"][i0:i1] != IDLE_PID)
                                       & (a["end"][i0:i1] > a["start"][i0:i1]))
            xs = np.clip((a["start"][keep] - t0) / width, 0.0, columns)
            xe = np.clip((a["end"][keep] - t0) / width, 0.0, columns)
            xs = np.minimum(xs, columns - 1.0)
            xe = np.maximum(xe, xs + 1.0)  # a sliver still shows as one column
            return LodRow(xs, xe, a["pid"][keep].astype(np.int64),
                          np.ones(len(keep), np.float32), False)
        present, acc = _accumulate(
            [_column_parts(a["start"][i0:i1 + 1], a["proc"][i0:i1], t0, width, columns)],
            columns, len(self._proc_pids))
        busy_cols = present != 0
        busy_acc = acc[:, busy_cols]
        busy = busy_acc.sum(axis=1)
        covered = acc.sum(axis=1)  # segments are gap-free: idle is the rest
        drawn = np.flatnonzero(busy > 0)
        if not len(drawn):
            empty = np.empty(0, np.float64)
            return LodRow(empty, empty, np.empty(0, np.int64), np.empty(0, np.float32), True)
        dominant = present[busy_cols][np.argmax(busy_acc[drawn], axis=1)]
        fraction = busy[drawn] / np.maximum(covered[drawn], 1e-12)
        level = np.clip(np.rint(fraction * FILL_LEVELS), 1, FILL_LEVELS).astype(np.int64)
        brk = np.ones(len(drawn), bool)
        brk[1:] = ((np.diff(drawn) != 1) | (dominant[1:] != dominant[:-1])
                   | (level[1:] != level[:-1]))
        first = np.flatnonzero(brk)
        last = np.append(first[1:], len(drawn)) - 1
        return LodRow(drawn[first].astype(np.float64), drawn[last] + 1.0,
                      self._proc_pids[dominant[first]],
                      (level[first] / FILL_LEVELS).astype(np.float32), True)

    # ------------------------------------------------------------------ usage
    def busy_until(self, cpu: int, times: np.ndarray) -> np.ndarray:
        """Non-idle cycles on `cpu` in [origin, t) for each t (float64)."""
        lane = self._lanes[cpu]
        times = np.asarray(times, np.float64)
        if not lane.n:
            return np.zeros(len(times))
        start, end = lane.view("start"), lane.view("end")
        i = np.searchsorted(start, times, side="right") - 1
        inside = i >= 0
        j = np.maximum(i, 0)
        ran = np.clip(times - start[j], 0.0, (end[j] - start[j]).astype(np.float64))
        ran *= lane.view("pid")[j] != IDLE_PID
        return np.where(inside, lane.view("busy_before")[j] + ran, 0.0)

    def usage(self, t0: float, bin_cycles: float, nbins: int) -> Usage:
        """Busy cycles per CPU and per process in `nbins` bins of `bin_cycles` from t0.

        Per CPU comes from running sums (O(bins log n)); per process from the visible
        segments (O(n)); the two are computed independently and agree."""
        nbins = int(nbins)
        if nbins <= 0 or not bin_cycles > 0:
            raise TimelineError("usage needs at least one bin of positive width")
        edges = t0 + np.arange(nbins + 1, dtype=np.float64) * bin_cycles
        t1 = float(edges[-1])
        clipped = np.clip(edges, self.origin, self.now)
        covered = np.diff(clipped)
        cpu_busy = np.empty((self.cpus, nbins))
        parts = []
        for c in range(self.cpus):
            cpu_busy[c] = np.diff(self.busy_until(c, edges))
            i0, i1 = self.visible_range(c, t0, t1)
            if i1 > i0:
                a = self._lanes[c].arrays
                parts.append(_column_parts(a["start"][i0:i1 + 1], a["proc"][i0:i1], t0,
                                           bin_cycles, nbins))
        present, acc = _accumulate(parts, nbins, len(self._proc_pids))
        ran = (present != 0) & (acc.sum(axis=0) > 0)
        pids = self._proc_pids[present[ran]]
        order = np.argsort(pids, kind="stable")
        pids = pids[order]
        process_busy = acc[:, ran].T[order] * bin_cycles
        return Usage(edges, covered, cpu_busy, pids, np.ascontiguousarray(process_busy))


def _column_parts(bounds: np.ndarray, proc: np.ndarray, t0: float, width: float,
                  columns: int) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Split gap-free segments ([bounds[i], bounds[i + 1]) of process index proc[i]) over
    `columns` columns of `width` cycles from t0, as pieces (column, process, amount in
    columns).  Returns two piece sets: the one in the column each segment starts in
    (one per segment), and the rest for segments spanning columns: the column they end in
    and every column they cover whole (together at most 2 * columns pieces)."""
    xb = (bounds - t0) / width
    np.clip(xb, 0.0, columns, out=xb)
    cb = xb.astype(np.int64)  # floor: xb >= 0
    np.minimum(cb, columns - 1, out=cb)
    cs, ce = cb[:-1], cb[1:]
    head = np.minimum(xb[1:], cs + 1.0)
    head -= xb[:-1]
    wide = np.flatnonzero(ce > cs)
    if not len(wide):
        none = np.empty(0, np.int64)
        return (cs, proc, head), (none, none, np.empty(0))
    w_cs, w_ce, w_proc = cs[wide], ce[wide], proc[wide]
    tail = xb[1:][wide] - w_ce
    inner_count = w_ce - w_cs - 1
    total_inner = int(inner_count.sum())
    offsets = np.arange(total_inner) - np.repeat(np.cumsum(inner_count) - inner_count,
                                                 inner_count)
    cols = np.concatenate((w_ce, np.repeat(w_cs + 1, inner_count) + offsets))
    procs = np.concatenate((w_proc, np.repeat(w_proc, inner_count)))
    amounts = np.concatenate((tail, np.ones(total_inner)))
    return (cs, proc, head), (cols, procs, amounts)


def _accumulate(parts, columns: int, nprocs: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum piece amounts per (column, process index) over `parts`, a list of what
    _column_parts returns.  Returns (process indices, (columns, len) matrix); with many
    processes only those present get a matrix column, built in blocks of columns so
    memory stays bounded."""
    pieces = [piece for pair in parts for piece in pair if len(piece[0])]
    if columns * nprocs <= _ACCUMULATE_CELLS:
        acc = np.zeros(columns * nprocs)
        for cols, procs, amounts in pieces:
            acc += np.bincount(cols * nprocs + procs, amounts, minlength=columns * nprocs)
        return np.arange(nprocs), acc.reshape(columns, nprocs)
    seen = np.zeros(nprocs, bool)
    for _, procs, _ in pieces:
        seen[procs] = True
    present = np.flatnonzero(seen)
    k = max(len(present), 1)
    local = np.cumsum(seen) - 1
    pieces = [(cols, local[procs], amounts) for cols, procs, amounts in pieces]
    acc = np.zeros((columns, k))
    step = max(1, _ACCUMULATE_CELLS // k)
    for c0 in range(0, columns, step):
        c1 = min(columns, c0 + step)
        for cols, lp, amounts in pieces:
            m = (cols >= c0) & (cols < c1) if step < columns else slice(None)
            acc[c0:c1] += np.bincount((cols[m] - c0) * k + lp[m], amounts[m],
                                      minlength=(c1 - c0) * k).reshape(c1 - c0, k)
    return present, acc
