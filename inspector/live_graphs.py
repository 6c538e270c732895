"""The live CPU timelines: this machine's per-CPU utilisation, the selected process's
and thread's CPU % and the sampled "who ran" strip, drawn from a core.live History.

The sampler appends to the History on its own thread; `refresh()` runs on the GUI
thread after each sample. The History is a bounded deque of immutable points, so
`HistoryArrays` converts only the points appended since the last refresh and drops the
ones that fell off the front; the arrays then go to curves made once (setData) and to
one GraphicsObject that paints the strip with one QPainter.drawRects call per process
colour, as the simulated timeline (inspector/timeline.py) does.

The x axis is seconds since the host booted (the samples' own time base), so a point
keeps its place while the history scrolls.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPalette
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from core.live import History, HistoryPoint, Key
from inspector.time_plots import (
    CPU_PENS,
    LANE_HEIGHT,
    CpuRowsItem,
    PlotLegend,
    TimePlotsWidget,
    captioned,
)

DEFAULT_FOLLOW_SPAN_S = 60.0   # "now" and the minute before it
MIN_SPAN_S = 0.1               # deepest zoom: the shortest sampling interval
STACK_KERNEL_MAX_CPUS = 2      # up to this many CPUs, each shows its kernel share too
HIGHLIGHT_HEIGHT = 0.14        # of a CPU row: the selected thread's mark under its blocks
SELECTION_Y_STEPS = (1, 2, 5, 10, 20, 50, 100)  # steady y ranges for the selection graph
TIME_AXIS_LABEL = "time since boot (s)"
CPU_BUSY_TITLE = "CPU busy (%)"
STRIP_CAPTION = ("Who ran, sampled: the busiest thread last seen on this CPU at each "
                 "sample, not every thread that ran")

Names = Mapping[int, str] | Callable[[int], "str | None"] | None


class HistoryArrays:
    """A History's points as numpy columns, brought up to date incrementally.

    Per sample: `times` (seconds since boot) and `wall` (epoch); per sample and CPU:
    `busy` and `kernel` % (NaN where the sample has no figure, as a first sample) and
    the busiest thread last seen there, `top_pid`/`top_tid` (-1: none) with its
    `top_pct` (% of all CPUs over the interval)."""

    def __init__(self) -> None:
        self.rebuilds = 0   # conversions started over (history cleared or overtaken)
        self.clear()

    def clear(self, cpus: int = 0) -> None:
        self.points: list[HistoryPoint] = []
        self.cpus = cpus
        self.times = np.zeros(0)
        self.wall = np.zeros(0)
        self._set_grid(*_rows([], cpus)[2:])

    def _set_grid(self, busy, kernel, top_pid, top_tid, top_pct) -> None:
        self.busy, self.kernel = busy, kernel
        self.top_pid, self.top_tid, self.top_pct = top_pid, top_tid, top_pct

    def __len__(self) -> int:
        return len(self.points)

    def update(self, points: list[HistoryPoint]) -> bool:
        """Take the History's current points; False when nothing changed."""
        old = self.points
        kept = _overlap(old, points)
        if kept == len(old) == len(points):
            return False
        if kept == 0 and old:
            self.clear(self.cpus)  # the machine kept its CPUs: so do the curves
            self.rebuilds += 1
            old = self.points
        new = points[kept:]
        cpus = max([self.cpus] + [max(len(p.cpu_busy), len(p.who_ran)) for p in new])
        drop = len(old) - kept
        grid = [a[drop:] for a in (self.busy, self.kernel, self.top_pid, self.top_tid,
                                   self.top_pct)]
        if cpus > self.cpus:  # a CPU came online: the older samples have no figure for it
            grid = [np.pad(a, ((0, 0), (0, cpus - self.cpus)),
                           constant_values=np.nan if a.dtype.kind == "f" else -1)
                    for a in grid]
        times, wall, *rows = _rows(new, cpus)
        self.times = np.concatenate((self.times[drop:], times))
        self.wall = np.concatenate((self.wall[drop:], wall))
        self._set_grid(*(np.concatenate((a, b)) for a, b in zip(grid, rows)))
        self.points = points
        self.cpus = cpus
        return True

    def interval_s(self) -> float | None:
        """The median time between samples, None with fewer than two."""
        if len(self.times) < 2:
            return None
        return float(statistics.median(np.diff(self.times)))


def _overlap(old: list[HistoryPoint], points: list[HistoryPoint]) -> int:
    """How many of `old`'s newest points start `points` (0: none, start over)."""
    if not old or not points:
        return 0
    last = old[-1]
    for j in range(len(points) - 1, -1, -1):
        if points[j] is last:
            kept = j + 1
            if kept <= len(old) and points[0] is old[len(old) - kept]:
                return kept
            return 0
    return 0


def _rows(points: Sequence[HistoryPoint], cpus: int):
    n = len(points)
    times = np.fromiter((p.uptime_s for p in points), float, n)
    wall = np.fromiter((p.wall_time for p in points), float, n)
    busy = np.full((n, cpus), np.nan)
    kernel = np.full((n, cpus), np.nan)
    top_pid = np.full((n, cpus), -1, np.int64)
    top_tid = np.full((n, cpus), -1, np.int64)
    top_pct = np.full((n, cpus), np.nan)
    for i, p in enumerate(points):
        busy[i, :len(p.cpu_busy)] = p.cpu_busy
        kernel[i, :len(p.cpu_kernel)] = p.cpu_kernel
        for c, ran in enumerate(p.who_ran):
            if ran:  # busiest first
                top_pid[i, c], top_tid[i, c], top_pct[i, c] = ran[0]
    return times, wall, busy, kernel, top_pid, top_tid, top_pct


def rect_array(x, y, w, h) -> np.ndarray:
    """Rectangles laid out as QRectF is in memory: rows of float64 x, y, w, h."""
    rects = np.empty((len(x), 4))
    rects[:, 0], rects[:, 1], rects[:, 2], rects[:, 3] = x, y, w, h
    return rects


NO_RECTS = rect_array(*(np.zeros(0),) * 4)


def draw_rects(painter: QPainter, rects: np.ndarray, lo: int = 0, hi: int | None = None) -> None:
    """Rows lo..hi of a rect_array in one QPainter.drawRects call, straight from its
    memory (PySide6 takes a pointer to the first QRectF and a count; pyqtgraph's
    PrimitiveArray draws the same way)."""
    hi = len(rects) if hi is None else hi
    if hi > lo:
        first = shiboken6.wrapInstance(rects.ctypes.data + lo * rects.strides[0], QRectF)
        painter.drawRects(first, hi - lo)


class GroupedRects:
    """Rectangles sorted by a key (the pid) in one rect_array, each key's run drawn with
    one drawRects call: setting them is a few numpy calls however many keys there are."""

    def __init__(self) -> None:
        self.rects = NO_RECTS
        self.groups: list[tuple[int, int, int]] = []   # (key, first row, end row)

    def __len__(self) -> int:
        return len(self.rects)

    def set(self, keys: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray,
            h: float) -> None:
        order = np.argsort(keys)  # order within a key does not matter: blocks never overlap
        keys = keys[order]
        self.rects = rect_array(x[order], y[order], w[order], h)
        cuts = np.flatnonzero(np.diff(keys)) + 1
        starts, ends = np.r_[0, cuts], np.r_[cuts, len(keys)]
        self.groups = (list(zip(keys[starts].tolist(), starts.tolist(), ends.tolist()))
                       if len(keys) else [])

    def draw(self, painter: QPainter, brush_for: Callable[[int], QBrush]) -> None:
        for key, lo, hi in self.groups:
            painter.setBrush(brush_for(key))
            draw_rects(painter, self.rects, lo, hi)


class WhoRanStripItem(CpuRowsItem):
    """One row per CPU (x: seconds since boot, y: CPU number); a block per sample
    interval, coloured by the process of the thread `History.who_ran_strip` gives."""

    sigBlockClicked = Signal(int, int)   # pid, tid

    def __init__(self, describe: Callable[[int, int], str]) -> None:
        super().__init__(self.block_at, lambda hit: describe(*hit))
        self._data: HistoryArrays | None = None
        self._cpus = 0
        self._selected: tuple[int, int] | None = None
        self._blocks = GroupedRects()   # by pid
        self._lanes = NO_RECTS
        self._highlight = NO_RECTS

    # ------------------------------------------------------------------ data
    def set_data(self, data: HistoryArrays) -> None:
        """Take the arrays after they changed (they are read, never written)."""
        self.prepareGeometryChange()
        self._data = data
        self._cpus = data.cpus
        t = data.times
        valid = data.top_pid[1:] >= 0   # the first sample's interval began before it
        rows, cpus = np.nonzero(valid)
        rows = rows + 1
        x, w = t[rows - 1], t[rows] - t[rows - 1]
        self._blocks.set(data.top_pid[rows, cpus], x, cpus - LANE_HEIGHT / 2, w, LANE_HEIGHT)
        cpus = data.cpus if len(t) else 0
        self._lanes = rect_array(np.full(cpus, t[0] if len(t) else 0.0),
                                 np.arange(cpus) - LANE_HEIGHT / 2,
                                 np.full(cpus, t[-1] - t[0] if len(t) else 0.0), LANE_HEIGHT)
        self._update_highlight()
        self.informViewBoundsChanged()
        self.update()

    def set_selected(self, pid: int | None, tid: int | None) -> None:
        """Mark the blocks of one thread (None: no mark)."""
        self._selected = None if pid is None or tid is None else (pid, tid)
        self._update_highlight()
        self.update()

    def _update_highlight(self) -> None:
        data = self._data
        if self._selected is None or data is None or len(data) < 2:
            self._highlight = NO_RECTS
            return
        pid, tid = self._selected
        rows, cpus = np.nonzero((data.top_pid[1:] == pid) & (data.top_tid[1:] == tid))
        rows = rows + 1
        t = data.times
        self._highlight = rect_array(t[rows - 1], cpus + LANE_HEIGHT / 2, t[rows] - t[rows - 1],
                                     HIGHLIGHT_HEIGHT)

    def highlighted(self) -> int:
        return len(self._highlight)

    def blocks(self, cpu: int) -> list[tuple[float, float, int, int]]:
        """The blocks of one CPU row, oldest first: (start s, end s, pid, tid)."""
        data = self._data
        if data is None or cpu >= data.cpus:
            return []
        t = data.times
        rows = np.flatnonzero(data.top_pid[1:, cpu] >= 0) + 1
        return [(float(t[i - 1]), float(t[i]), int(data.top_pid[i, cpu]),
                 int(data.top_tid[i, cpu])) for i in rows]

    @property
    def blocks_drawn(self) -> int:
        return len(self._blocks)

    def pids_drawn(self) -> list[int]:
        return [pid for pid, _, _ in self._blocks.groups]

    def brush_color(self, pid: int) -> QColor:
        return self._brush(pid).color()

    # ------------------------------------------------------------------ painting
    def boundingRect(self) -> QRectF:
        data = self._data
        if data is None or not len(data.times):
            return QRectF()
        t = data.times
        return QRectF(t[0], -0.5, max(t[-1] - t[0], MIN_SPAN_S), float(max(self._cpus, 1)))

    def paint(self, p: QPainter, *args) -> None:
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(self._lane_brush)
        draw_rects(p, self._lanes)
        self._blocks.draw(p, self._brush)
        if self._selected is not None:
            p.setBrush(self._highlight_brush)
            draw_rects(p, self._highlight)
        p.restore()

    # ------------------------------------------------------------------ mouse
    def block_at(self, pos: QPointF) -> tuple[int, int] | None:
        """(sample index, cpu) of the block under a point in view coordinates."""
        data = self._data
        if data is None or len(data) < 2:
            return None
        cpu = int(round(pos.y()))
        if not 0 <= cpu < data.cpus or abs(pos.y() - cpu) > LANE_HEIGHT / 2:
            return None
        i = int(np.searchsorted(data.times, pos.x(), side="left"))
        if not 1 <= i < len(data.times) or data.top_pid[i, cpu] < 0:
            return None
        return i, cpu

    def mouseClickEvent(self, ev) -> None:
        hit = self.block_at(ev.pos()) if ev.button() == Qt.MouseButton.LeftButton else None
        if hit is None:
            ev.ignore()
            return
        ev.accept()
        i, cpu = hit
        self.sigBlockClicked.emit(int(self._data.top_pid[i, cpu]),
                                  int(self._data.top_tid[i, cpu]))


class LiveGraphsWidget(TimePlotsWidget):
    """Live CPU timelines of this machine, fed by a core.live History.

    `set_history(history, names, interval_s)` once, then `refresh()` on the GUI thread
    after each sample. `names` maps a pid to its process name: a dict, or a callable
    taking the pid (asked only when a tooltip needs a name). `set_selection` picks the
    process (and thread) whose CPU % the bottom graph shows.
    """

    threadClicked = Signal(int, int)     # pid, tid

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            parent, scale=1.0, default_span=DEFAULT_FOLLOW_SPAN_S, min_span_s=MIN_SPAN_S,
            name="live", follow_tip="Keep the newest samples in view (panning turns it off)",
            fit_tip="Show every sample kept", time_extent=self._history_extent)
        self.history: History | None = None
        self.data = HistoryArrays()
        self._names: Names = None
        self._interval_s: float | None = None
        self._process_key: Key | None = None
        self._thread_key: Key | None = None
        self.cpu_curves: list[pg.PlotCurveItem] = []
        self.kernel_curves: list[pg.PlotCurveItem] = []

        self.strip_plot, self.cpu_plot, self.selection_plot = self._stack_time_plots(
            "live_who_ran", (("live_cpu_usage", CPU_BUSY_TITLE),
                             ("live_selection_usage", "% of all CPUs")),
            time_label=TIME_AXIS_LABEL)
        for plot in self._time_plots:
            # 86400 s, not 86.4 ks (and no relabelling each time the view scrolls)
            for side in ("bottom", "left"):
                plot.getPlotItem().getAxis(side).enableAutoSIPrefix(False)
        self.strip_plot.getPlotItem().getViewBox().sigXRangeChanged.connect(
            self._fit_selection_y)
        self.info_label = QLabel()
        self.info_label.setObjectName("live_sampling_info")
        toolbar = self._make_toolbar()
        toolbar.addSeparator()
        toolbar.addWidget(self.info_label)

        self.strip_item = WhoRanStripItem(self.describe)
        self.strip_item.sigBlockClicked.connect(self.threadClicked)
        self.strip_plot.addItem(self.strip_item)
        self._cpu_legend = PlotLegend(CPU_BUSY_TITLE, "live_cpu_legend")
        sel = self.selection_plot.getPlotItem()
        self.process_curve = pg.PlotCurveItem(skipFiniteCheck=True)
        self.thread_curve = pg.PlotCurveItem(skipFiniteCheck=True)
        for curve in (self.process_curve, self.thread_curve):
            sel.addItem(curve)
            curve.hide()

        self.strip_caption = QLabel(STRIP_CAPTION)
        self.strip_caption.setObjectName("live_who_ran_caption")
        self.strip_caption.setWordWrap(True)
        self.selection_label = PlotLegend(name="live_selection_label")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(captioned(self.strip_caption, self.strip_plot))
        splitter.addWidget(captioned(self._cpu_legend, self.cpu_plot))
        splitter.addWidget(captioned(self.selection_label, self.selection_plot))
        for i, stretch in enumerate((2, 2, 1)):
            splitter.setStretchFactor(i, stretch)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(toolbar)
        layout.addWidget(splitter)
        self._apply_palette()
        self._show_selection_label("")
        self._update_info()

    # ------------------------------------------------------------------ data in
    def set_history(self, history: History | None, names: Names = None,
                    interval_s: float | None = None) -> None:
        """Show a History (None: nothing). `interval_s` is the sampler's nominal
        interval; without it the label shows the measured one."""
        self.history = history
        self._names = names
        self._interval_s = interval_s
        self.data = HistoryArrays()
        self.refresh(force=True)
        if not self.follow_now:  # parked on another history's range: show this one whole
            self.zoom_to_fit()

    def set_names(self, names: Names) -> None:
        self._names = names

    def refresh(self, force: bool = False) -> bool:
        """Take the samples appended since the last call; False when there were none.
        Cheap: only the new points are converted and existing curves get setData."""
        points = self.history.points() if self.history is not None else []
        if not self.data.update(points) and not force:
            return False
        data = self.data
        if len(self.cpu_curves) != data.cpus:
            self._make_cpu_curves(data.cpus)
        self._update_cpu_curves()
        self.strip_item.set_data(data)
        self._update_selection_curves()
        self._update_info()
        self._keep_up()
        return True

    # ------------------------------------------------------------------ CPU plot
    def _make_cpu_curves(self, cpus: int) -> None:
        """Only when the number of CPUs changes: one curve per CPU, and with few CPUs
        a filled kernel curve under each busy one."""
        plot = self.cpu_plot.getPlotItem()
        for curve in self.cpu_curves + self.kernel_curves:
            plot.removeItem(curve)
        self.cpu_curves, self.kernel_curves = [], []
        stacked = 0 < cpus <= STACK_KERNEL_MAX_CPUS
        for c in range(cpus):
            color = QColor(CPU_PENS[c % len(CPU_PENS)])
            curve = pg.PlotCurveItem(pen=pg.mkPen(color, width=1), skipFiniteCheck=True)
            if stacked:
                curve.setFillLevel(0)
                curve.setBrush(_alpha(color, 50))
                kernel = pg.PlotCurveItem(pen=pg.mkPen(color.darker(140), width=1),
                                          fillLevel=0, brush=_alpha(color, 130),
                                          skipFiniteCheck=True)
                plot.addItem(kernel)
                self.kernel_curves.append(kernel)
            plot.addItem(curve)
            self.cpu_curves.append(curve)
        self._cpu_legend.set_title(
            CPU_BUSY_TITLE + (", the darker fill under each line its kernel time" if stacked
                              else ""))
        self._cpu_legend.set_entries(
            [(f"CPU {c}", CPU_PENS[c % len(CPU_PENS)]) for c in range(cpus)] if cpus <= 16
            else [(f"one line per CPU ({cpus})", CPU_PENS[0])])
        svb = self.strip_plot.getPlotItem().getViewBox()
        svb.setLimits(yMin=-0.5, yMax=max(cpus, 1) - 0.5)
        svb.setYRange(-0.5, max(cpus, 1) - 0.5, padding=0)
        step = max(1, -(-cpus // 16))
        self.strip_plot.getPlotItem().getAxis("left").setTicks(
            [[(c, f"CPU {c}") for c in range(0, cpus, step)], []])
        self.strip_plot.setMinimumHeight(min(40 + 14 * cpus, 260))

    def _update_cpu_curves(self) -> None:
        data = self.data
        for c, curve in enumerate(self.cpu_curves):
            has = ~np.isnan(data.busy[:, c])  # as History.cpu_series: no figure, no point
            curve.setData(data.times[has], data.busy[has, c])
        for c, curve in enumerate(self.kernel_curves):
            has = ~np.isnan(data.kernel[:, c])
            curve.setData(data.times[has], data.kernel[has, c])

    # ------------------------------------------------------------------ selection
    def set_selection(self, pid_key: Key | None, tid_key: Key | None, label: str = "") -> None:
        """Graph one process's CPU % and, with `tid_key`, one of its threads' too;
        (None, None) clears the graph. `label` names the selection above it."""
        self._process_key, self._thread_key = pid_key, tid_key
        self._show_selection_label(label)
        self.strip_item.set_selected(None if pid_key is None else pid_key[0],
                                     None if tid_key is None else tid_key[0])
        self._update_selection_curves()

    def _show_selection_label(self, label: str) -> None:
        if self._process_key is None and self._thread_key is None:
            self.selection_label.set_title("Select a process or thread to graph its CPU %")
        else:
            self.selection_label.set_title(f"CPU % of {label}" if label else "CPU %")
        self._show_selection_entries()

    def _show_selection_entries(self) -> None:
        pal = self.palette()
        entries = []
        if self._process_key is not None:
            entries.append(("the process (all its threads)", pal.color(QPalette.ColorRole.Text)))
        if self._thread_key is not None:
            entries.append(("the thread", pal.color(QPalette.ColorRole.Highlight)))
        self.selection_label.set_entries(entries)

    def _update_selection_curves(self) -> None:
        # as History.process_series: the samples with figures, 0 where it used none
        pts = [p for p in self.data.points if p.cpu_busy]
        times = np.fromiter((p.uptime_s for p in pts), float, len(pts))
        pk, tk = self._process_key, self._thread_key
        for curve, values in (
                (self.process_curve,
                 None if pk is None else (p.process_cpu.get(pk, 0.0) for p in pts)),
                (self.thread_curve,
                 None if tk is None else (p.thread_cpu.get(tk, 0.0) for p in pts))):
            if values is None:
                curve.hide()
            else:
                curve.setData(times, np.fromiter(values, float, len(pts)))
                curve.show()
        self._fit_selection_y()

    def _fit_selection_y(self, *_) -> None:
        """A y range from 0 that holds the visible part of the selection's curves, on
        1-2-5 steps so it does not jitter as samples come in."""
        (x0, x1), _ = self.strip_plot.getPlotItem().getViewBox().viewRange()
        top = 0.0
        for curve in (self.process_curve, self.thread_curve):
            if not curve.isVisible() or curve.xData is None or not len(curve.xData):
                continue
            lo, hi = np.searchsorted(curve.xData, (x0, x1))
            seen = curve.yData[max(lo - 1, 0):hi + 1]
            if len(seen):
                top = max(top, float(seen.max()))
        ceiling = next((s for s in SELECTION_Y_STEPS if s >= top * 1.05), 100)
        self.selection_plot.getPlotItem().setYRange(0, ceiling, padding=0.02)

    # ------------------------------------------------------------------ text
    def process_label(self, pid: int) -> str:
        names = self._names
        if isinstance(names, Mapping):
            name = names.get(pid)
        elif callable(names):
            name = names(pid)
        else:
            name = None
        return f"{name} ({pid})" if name else f"pid {pid}"

    def describe(self, i: int, cpu: int) -> str:
        """The tooltip of the strip block of sample `i` on `cpu`."""
        data = self.data
        pid, tid = int(data.top_pid[i, cpu]), int(data.top_tid[i, cpu])
        return "\n".join((
            f"Process {self.process_label(pid)}",
            f"Thread {tid}",
            f"CPU {cpu} · the thread used {data.top_pct[i, cpu]:.1f} % of all CPUs "
            "in the interval",
            f"Interval: {data.times[i - 1]:.2f} – {data.times[i]:.2f} s since boot "
            f"(sampled at {clock_text(data.wall[i])})",
            "Sampled: the busiest thread last seen on this CPU, not every thread that ran",
        ))

    def _update_info(self) -> None:
        data = self.data
        if self._interval_s is not None:
            every = f"every {self._interval_s:g} s"
        else:
            measured = data.interval_s()
            every = "interval n/a" if measured is None else f"every {measured:.2f} s (measured)"
        maxlen = self.history.maxlen if self.history is not None else 0
        if not len(data):
            kept = "no samples yet"
        else:
            span = float(data.times[-1] - data.times[0])
            kept = f"{len(data)} of {maxlen} samples kept ({duration_text(span)})"
        self.info_label.setText(f"Sampling {every} · {kept}")

    # ------------------------------------------------------------------ view range
    def _history_extent(self) -> tuple[float, float] | None:
        t = self.data.times
        return (float(t[0]), float(t[-1])) if len(t) else None

    # ------------------------------------------------------------------ palette
    def _apply_palette(self) -> None:
        """Plots follow the application's light or dark palette."""
        pal = self.palette()
        super()._apply_palette()
        self.process_curve.setPen(pg.mkPen(pal.color(QPalette.ColorRole.Text), width=1.5))
        self.thread_curve.setPen(pg.mkPen(pal.color(QPalette.ColorRole.Highlight), width=1.5))
        self.strip_item.set_palette(pal)
        self._show_selection_entries()  # their marks are the curves' palette colours


def _alpha(color: QColor, alpha: int) -> QBrush:
    c = QColor(color)
    c.setAlpha(alpha)
    return QBrush(c)


def clock_text(epoch: float) -> str:
    """Local wall-clock time of a sample, to the second."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def duration_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["HistoryArrays", "LiveGraphsWidget", "WhoRanStripItem", "STRIP_CAPTION"]
