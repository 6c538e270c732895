"""The CPU timeline view: one row per CPU with the thread that ran there over time
(coloured by process), and below it CPU usage per CPU and stacked per process.

The segments live in core.timeline.Timeline (numpy); this module only draws them.  One
GraphicsObject paints every row: on each paint it asks the core for a level-of-detail
cut of the visible window at the screen's pixel resolution and draws it with one
QPainter.drawRects call per process colour, so the work per frame is bounded by the
number of pixels, never by the number of segments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from core.kernel.constants import CYCLES_PER_NS, CYCLES_PER_S, cycles_to_us_text
from core.timeline import (
    IDLE_PID,
    UNKNOWN_PRIORITY,
    NameLookup,
    Segment,
    Timeline,
    Usage,
    end_reason_text,
)
from inspector.time_plots import (
    CPU_PENS,
    LANE_HEIGHT,
    CpuRowsItem,
    PlotLegend,
    TimePlotsWidget,
    captioned,
    process_color,
)

try:  # pyqtgraph's own fast path from numpy to QPainter.drawRects (BarGraphItem uses it)
    from pyqtgraph.Qt.internals import PrimitiveArray as _PrimitiveArray
except ImportError:  # an internal API: fall back to a list of QRectF
    _PrimitiveArray = None

MIN_SPAN_S = 1e-8          # deepest zoom: 10 ns across the view
DEFAULT_FOLLOW_SPAN = 500_000_000 * CYCLES_PER_NS  # half a second behind "now"
STACKED_PROCESSES = 8      # the busiest processes get their own band; the rest is "Other"
USAGE_BIN_PIXELS = 3       # one usage bin per this many pixels
OTHER_COLOR = QColor(150, 150, 150)
CPU_USAGE_TITLE = "CPU usage (%)"
PROCESS_USAGE_TITLE = "% of all CPUs, by process"

Names = NameLookup | Mapping | Callable[[], "NameLookup | Mapping"] | None


def format_cycles(cycles: float) -> str:
    """A duration in the unit that reads best (ns, µs, ms, s)."""
    ns = cycles / CYCLES_PER_NS
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.3f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.3f} ms"
    return f"{ns / 1e9:.3f} s"


def nice_bin_cycles(span_cycles: float, bins: int) -> int:
    """A 1-2-5 bin width in whole ns, so bins stay put while the view pans."""
    target_ns = max(span_cycles / max(bins, 1) / CYCLES_PER_NS, 1.0)
    decade = 10 ** math.floor(math.log10(target_ns))
    for step in (1, 2, 5, 10):
        if step * decade >= target_ns:
            return int(step * decade) * CYCLES_PER_NS
    return int(10 * decade) * CYCLES_PER_NS


class _RectBatch:
    """Rectangles for one QPainter.drawRects call, filled from numpy columns."""

    def __init__(self) -> None:
        self._array = _PrimitiveArray(QRectF, 4) if _PrimitiveArray is not None else None
        self._rects: list[QRectF] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def set(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray) -> None:
        self._count = len(x)
        if self._array is not None:
            self._array.resize(len(x))
            m = self._array.ndarray()
            m[:, 0], m[:, 1], m[:, 2], m[:, 3] = x, y, w, h
        else:
            self._rects = [QRectF(*r) for r in zip(x.tolist(), y.tolist(), w.tolist(),
                                                   h.tolist())]

    def draw(self, painter: QPainter) -> None:
        if not self._count:
            return
        if self._array is not None:
            painter.drawRects(*self._array.drawargs())
        else:
            painter.drawRects(self._rects)


class TimelineItem(CpuRowsItem):
    """Every CPU row of the timeline in one item (x: seconds, y: CPU number)."""

    sigSegmentClicked = Signal(object)   # core.timeline.Segment

    def __init__(self, describe: Callable[[Segment], str]) -> None:
        super().__init__(self.segment_at, describe)
        self._timeline: Timeline | None = None
        self._selected_tid: int | None = None
        self._cache_key = None
        self._batches: list[tuple[QBrush, _RectBatch]] = []
        self._lanes = _RectBatch()
        self._highlight = _RectBatch()
        self.rects_drawn = 0     # after the last paint: what was handed to Qt

    # ------------------------------------------------------------------ data
    def set_timeline(self, timeline: Timeline | None) -> None:
        self._timeline = timeline
        self.data_changed()

    def data_changed(self) -> None:
        self.prepareGeometryChange()
        self._cache_key = None
        self.informViewBoundsChanged()
        self.update()

    def set_selected_tid(self, tid: int | None) -> None:
        self._selected_tid = tid
        self._cache_key = None
        self.update()

    def set_palette(self, palette: QPalette) -> None:
        self._cache_key = None
        super().set_palette(palette)

    # ------------------------------------------------------------------ geometry
    def boundingRect(self) -> QRectF:
        tl = self._timeline
        if tl is None:
            return QRectF()
        x0 = tl.origin / CYCLES_PER_S
        width = max((tl.now - tl.origin) / CYCLES_PER_S, MIN_SPAN_S)
        return QRectF(x0, -0.5, width, float(tl.cpus))

    # ------------------------------------------------------------------ painting
    def paint(self, p: QPainter, *args) -> None:
        tl = self._timeline
        vb = self.getViewBox()
        if tl is None or vb is None or tl.now <= tl.origin:
            return
        (vx0, vx1), _ = vb.viewRange()
        x0 = max(vx0, tl.origin / CYCLES_PER_S)
        x1 = min(vx1, tl.now / CYCLES_PER_S)
        tr = p.transform()
        sx, dx, sy, dy = tr.m11(), tr.dx(), tr.m22(), tr.dy()
        if not x1 > x0 or sx <= 0 or sy == 0:
            return
        # Columns are whole device pixels, so merged bars are crisp.
        px0 = math.floor(sx * x0 + dx)
        px1 = max(math.ceil(sx * x1 + dx), px0 + 1)
        t0 = (px0 - dx) / sx * CYCLES_PER_S
        t1 = (px1 - dx) / sx * CYCLES_PER_S
        key = (id(tl), tl.version, px0, px1, round(t0, 3), round(t1, 3), sy, dy,
               self._selected_tid)
        if key != self._cache_key:
            self._rebuild(tl, px0, px1 - px0, t0, t1, sy, dy)
            self._cache_key = key
        p.save()
        p.resetTransform()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(self._lane_brush)
        self._lanes.draw(p)
        for brush, batch in self._batches:
            p.setBrush(brush)
            batch.draw(p)
        if self._selected_tid is not None:
            p.setBrush(self._highlight_brush)
            self._highlight.draw(p)
        p.restore()

    def _rebuild(self, tl: Timeline, px0: int, columns: int, t0: float, t1: float,
                 sy: float, dy: float) -> None:
        row_h = abs(sy)
        lane_h = row_h * LANE_HEIGHT
        centres = sy * np.arange(tl.cpus) + dy
        bottoms = centres + lane_h / 2  # device y grows downwards
        self._lanes.set(np.full(tl.cpus, float(px0)), bottoms - lane_h,
                        np.full(tl.cpus, float(columns)), np.full(tl.cpus, lane_h))
        xs, ws, ys, hs, pids = [], [], [], [], []
        for c in range(tl.cpus):
            row = tl.lod(c, t0, t1, columns)
            if not len(row.x0):
                continue
            xs.append(row.x0 + px0)
            ws.append(row.x1 - row.x0)
            h = row.fill * lane_h
            hs.append(h)
            ys.append(bottoms[c] - h)
            pids.append(row.pid)
        self._batches = []
        self.rects_drawn = 0
        if pids:
            x, w, y, h, pid = (np.concatenate(v) for v in (xs, ws, ys, hs, pids))
            order = np.argsort(pid, kind="stable")
            pid = pid[order]
            cuts = np.flatnonzero(np.diff(pid)) + 1
            for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(pid)]):
                sel = order[lo:hi]
                batch = _RectBatch()
                batch.set(x[sel], y[sel], w[sel], h[sel])
                self._batches.append((self._brush(int(pid[lo])), batch))
            self.rects_drawn = len(pid)
        if self._selected_tid is not None:
            strip = max(2.0, min(4.0, row_h - lane_h))
            hx, hw, hy = [], [], []
            for c in range(tl.cpus):
                c0, c1 = tl.thread_columns(c, self._selected_tid, t0, t1, columns)
                hx.append(c0 + px0)
                hw.append(c1 - c0)
                hy.append(np.full(len(c0), bottoms[c]))
            x = np.concatenate(hx)
            self._highlight.set(x, np.concatenate(hy), np.concatenate(hw),
                                np.full(len(x), strip))

    # ------------------------------------------------------------------ mouse
    def segment_at(self, pos: QPointF) -> Segment | None:
        """The segment under a point in item (view) coordinates; one pixel of slack so
        that a sliver drawn one pixel wide can be pointed at."""
        tl = self._timeline
        if tl is None:
            return None
        cpu = int(round(pos.y()))
        if abs(pos.y() - cpu) > 0.5:
            return None
        px = self.pixelWidth()
        slack = px * CYCLES_PER_S if px > 0 else 0.0
        return tl.segment_at(cpu, pos.x() * CYCLES_PER_S, slack)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        seg = self.segment_at(ev.pos())
        if seg is None or seg.idle:
            ev.ignore()
            return
        ev.accept()
        self.sigSegmentClicked.emit(seg)


class TimelineWidget(TimePlotsWidget):
    """CPU timeline, per-CPU usage and stacked per-process usage, sharing the time axis.

    Feed it with `set_trace(columns, now_cycles, names)` (columns as
    Machine.trace.columns() returns them) and then `update_trace(...)` while the
    simulation runs: only switches not seen yet are taken.  `names` is a NameLookup, a
    Machine.state()-shaped dict, or a callable returning either (called lazily, when a
    tooltip or legend meets an id it does not know).
    """

    threadClicked = Signal(int, int)     # pid, tid
    usageUpdated = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            parent, scale=CYCLES_PER_S, default_span=DEFAULT_FOLLOW_SPAN,
            min_span_s=MIN_SPAN_S, name="timeline",
            follow_tip="Keep the newest switches in view while the simulation runs "
                       "(panning turns it off)",
            fit_tip="Show the whole trace", time_extent=self._trace_extent)
        self.timeline: Timeline | None = None
        self._names_source: Names = None
        self._names = NameLookup()
        self._names_version = -1
        self._selected: tuple[int, int] | None = None
        self.usage: Usage | None = None
        self.stacked_pids: list[int] = []   # bottom to top; -1 is "Other"

        self.timeline_plot, self.cpu_usage_plot, self.process_usage_plot = \
            self._stack_time_plots("timeline_plot",
                                   (("timeline_cpu_usage", CPU_USAGE_TITLE),
                                    ("timeline_process_usage", PROCESS_USAGE_TITLE)),
                                   time_label="time", time_units="s")
        self.timeline_plot.getPlotItem().getViewBox().sigXRangeChanged.connect(
            self._schedule_usage)

        self.timeline_item = TimelineItem(self.describe)
        self.timeline_item.sigSegmentClicked.connect(self._on_segment_clicked)
        self.timeline_plot.addItem(self.timeline_item)
        self.cpu_curves: list[pg.PlotCurveItem] = []
        self._stack_curves: list[pg.PlotCurveItem] = []
        self._legend = PlotLegend(PROCESS_USAGE_TITLE, "timeline_process_legend")
        self._cpu_legend = PlotLegend(CPU_USAGE_TITLE, "timeline_cpu_legend")
        # Replay's "now": one vertical line through every plot at the moment shown
        self.cursor_lines = []
        for plot in (self.timeline_plot, self.cpu_usage_plot, self.process_usage_plot):
            line = pg.InfiniteLine(angle=90, movable=False,
                                   pen=pg.mkPen((255, 140, 0), width=2))
            line.setZValue(1000)
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
            self.cursor_lines.append(line)
        self._apply_palette()

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.timeline_plot)
        splitter.addWidget(captioned(self._cpu_legend, self.cpu_usage_plot))
        splitter.addWidget(captioned(self._legend, self.process_usage_plot))
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._make_toolbar())
        layout.addWidget(splitter)

        # Usage is recomputed once per burst of range or data changes, not per event.
        self._usage_timer = QTimer(self)
        self._usage_timer.setSingleShot(True)
        self._usage_timer.setInterval(0)
        self._usage_timer.timeout.connect(self.refresh_usage)

    # ------------------------------------------------------------------ data in
    def set_trace(self, columns: Mapping[str, np.ndarray], now_cycles: int,
                  names: Names = None, cpus: int | None = None, origin: int = 0) -> None:
        """Show a trace from scratch (a new machine or a loaded run)."""
        self.timeline = Timeline.from_columns(columns, now_cycles, cpus, origin)
        self._set_names(names)
        tl = self.timeline
        tvb = self.timeline_plot.getPlotItem().getViewBox()
        tvb.setLimits(xMin=origin / CYCLES_PER_S, yMin=-0.5, yMax=tl.cpus - 0.5)
        tvb.setYRange(-0.5, tl.cpus - 0.5, padding=0)
        for plot in (self.cpu_usage_plot, self.process_usage_plot):
            plot.getPlotItem().getViewBox().setLimits(xMin=origin / CYCLES_PER_S)
        step = max(1, math.ceil(tl.cpus / 16))
        self.timeline_plot.getPlotItem().getAxis("left").setTicks(
            [[(c, f"CPU {c}") for c in range(0, tl.cpus, step)], []])
        self.timeline_plot.setMinimumHeight(min(40 + 18 * tl.cpus, 320))
        self._make_cpu_curves(tl.cpus)
        self.timeline_item.set_timeline(tl)
        if self.follow_now:
            self._apply_follow()
        else:
            self.zoom_to_fit()
        self._schedule_usage()

    def update_trace(self, columns: Mapping[str, np.ndarray], now_cycles: int,
                     names: Names = None, first_row: int = 0) -> int:
        """Take the switches appended since the last call; returns how many.

        `columns` may hold the whole trace or only its rows from `first_row` on.  A trace
        shorter than what is shown is a new one: the view starts over."""
        tl = self.timeline
        if tl is None or first_row + len(columns["time"]) < tl.rows_consumed:
            self.set_trace(columns, now_cycles, names if names is not None
                           else self._names_source, cpus=tl.cpus if tl else None)
            return len(columns["time"])
        added = tl.extend(columns, now_cycles, first_row)
        if names is not None:
            self._set_names(names)
        self.timeline_item.data_changed()
        self._keep_up()
        self._schedule_usage()
        return added

    # ------------------------------------------------------------------ names
    def _set_names(self, names: Names) -> None:
        self._names_source = names
        self._names_version = -1
        self._names = NameLookup()
        self._refresh_names()

    def _refresh_names(self) -> None:
        source = self._names_source
        if callable(source):
            source = source()
        if isinstance(source, NameLookup):
            self._names = source
        elif isinstance(source, Mapping):
            self._names = NameLookup.from_state(source)
        self._names_version = self.timeline.version if self.timeline is not None else -1

    def _name(self, kind: str, key: int) -> str | None:
        found = getattr(self._names, kind)(key)
        # A callable source is asked again, at most once per change of the trace.
        if (found is None and callable(self._names_source) and self.timeline is not None
                and self._names_version != self.timeline.version):
            self._refresh_names()
            found = getattr(self._names, kind)(key)
        return found

    def process_label(self, pid: int) -> str:
        if pid == IDLE_PID:
            return "Idle (0)"
        name = self._name("process", pid)
        return f"{name} ({pid})" if name else f"pid {pid}"

    def describe(self, seg: Segment) -> str:
        """The tooltip of a segment."""
        start = f"{cycles_to_us_text(seg.start)} µs"
        if seg.idle:
            return "\n".join((f"Idle — CPU {seg.cpu}", f"Start: {start}",
                              f"Duration: {format_cycles(seg.duration)}"))
        thread = self._name("thread", seg.tid)
        priority = f"Priority: {seg.priority}"
        if seg.end_priority not in (UNKNOWN_PRIORITY, seg.priority):
            priority += f" (switched out at {seg.end_priority})"
        return "\n".join((
            f"Thread {seg.tid}" + (f" ({thread})" if thread else ""),
            f"Process {self.process_label(seg.pid)}",
            f"CPU {seg.cpu} · {priority}",
            f"Start: {start}",
            f"Duration: {format_cycles(seg.duration)}",
            f"Ended: {end_reason_text(seg.end_state, seg.end_wait)}",
        ))

    # ------------------------------------------------------------------ view range
    def _trace_extent(self) -> tuple[float, float] | None:
        tl = self.timeline
        return None if tl is None else (float(tl.origin), float(tl.now))

    def x_range_cycles(self) -> tuple[float, float]:
        """The visible range in cycles (x_range: the timeline's unit is cycles)."""
        return self.x_range()

    def set_x_range_cycles(self, t0: float, t1: float) -> None:
        """Show [t0, t1) (cycles); like a user zoom, it stops following now."""
        self.set_x_range(t0, t1)

    def set_cursor(self, cycles: float | None) -> None:
        """Mark the moment a replay shows (None: no cursor, the live end is now).
        Following keeps the cursor in view instead of the end of the trace."""
        self._cursor = None if cycles is None else float(cycles)
        for line in self.cursor_lines:
            line.setVisible(cycles is not None)
            if cycles is not None:
                line.setValue(cycles / CYCLES_PER_S)
        self._keep_up()

    @property
    def cursor_cycles(self) -> float | None:
        return self._cursor

    # ------------------------------------------------------------------ selection
    def _on_segment_clicked(self, seg: Segment) -> None:
        self.select_thread(seg.pid, seg.tid)
        self.threadClicked.emit(seg.pid, seg.tid)

    def select_thread(self, pid: int | None, tid: int | None) -> None:
        """Mark where a thread ran on every CPU (None: no selection)."""
        self._selected = None if tid is None else (pid, tid)
        self.timeline_item.set_selected_tid(tid)

    # ------------------------------------------------------------------ usage plots
    def _make_cpu_curves(self, cpus: int) -> None:
        plot = self.cpu_usage_plot.getPlotItem()
        for curve in self.cpu_curves:
            plot.removeItem(curve)
        self.cpu_curves = []
        for c in range(cpus):
            # stepMode is given with the data: an empty step curve is rejected
            curve = pg.PlotCurveItem(pen=pg.mkPen(CPU_PENS[c % len(CPU_PENS)], width=1),
                                     skipFiniteCheck=True)
            plot.addItem(curve)
            self.cpu_curves.append(curve)
        self._cpu_legend.set_entries(
            [(f"CPU {c}", CPU_PENS[c % len(CPU_PENS)]) for c in range(cpus)] if cpus <= 16
            else [(f"one line per CPU ({cpus})", CPU_PENS[0])])

    def _schedule_usage(self, *_) -> None:
        if self.timeline is not None:
            self._usage_timer.start()

    def refresh_usage(self) -> None:
        """Recompute both usage plots for the visible range (normally done on a timer
        after the view or the data changes)."""
        self._usage_timer.stop()
        tl = self.timeline
        if tl is None:
            return
        v0, v1 = self.x_range_cycles()
        lo, hi = max(v0, tl.origin), min(v1, tl.now)
        if not hi > lo:
            self._clear_usage()
            return
        pixels = max(self.cpu_usage_plot.getPlotItem().getViewBox().width(), 60)
        bin_cycles = nice_bin_cycles(v1 - v0, int(pixels // USAGE_BIN_PIXELS))
        t0 = math.floor(lo / bin_cycles) * bin_cycles
        nbins = max(1, math.ceil((hi - t0) / bin_cycles))
        usage = tl.usage(t0, bin_cycles, nbins)
        self.usage = usage
        x = usage.edges / CYCLES_PER_S
        covered = np.where(usage.covered > 0, usage.covered, np.inf)
        for c, curve in enumerate(self.cpu_curves):
            curve.setData(x, usage.cpu_busy[c] / covered * 100.0, stepMode="center")
            curve.show()
        self._set_stack(x, usage, covered * tl.cpus)
        self.usageUpdated.emit()

    def _set_stack(self, x: np.ndarray, usage: Usage, capacity: np.ndarray) -> None:
        totals = usage.process_busy.sum(axis=1)
        order = np.argsort(-totals, kind="stable")
        top = order[:STACKED_PROCESSES]
        rest = order[STACKED_PROCESSES:]
        layers = [usage.process_busy[i] for i in top]
        pids = [int(usage.pids[i]) for i in top]
        if len(rest):
            layers.append(usage.process_busy[rest].sum(axis=0))
            pids.append(-1)
        plot = self.process_usage_plot.getPlotItem()
        while len(self._stack_curves) < len(layers):
            curve = pg.PlotCurveItem(fillLevel=0, skipFiniteCheck=True)
            plot.addItem(curve)
            self._stack_curves.append(curve)
        running = np.zeros(len(x) - 1)
        entries = []
        for k, curve in enumerate(self._stack_curves):
            if k >= len(layers):
                curve.hide()
                continue
            running = running + layers[k] / capacity * 100.0
            color = OTHER_COLOR if pids[k] == -1 else process_color(pids[k])
            edge = QColor(color).darker(130)
            curve.setPen(QPen(edge, 0))
            curve.setBrush(QBrush(color))
            curve.setZValue(-k)  # lower layers drawn over the cumulative ones above
            curve.setData(x, running, stepMode="center")
            curve.show()
            entries.append(("Other" if pids[k] == -1 else self.process_label(pids[k]), color))
        self._legend.set_entries(entries, mark="■")
        self.stacked_pids = pids

    def _clear_usage(self) -> None:
        for curve in self.cpu_curves + self._stack_curves:
            curve.hide()
        self.usage = None
        self.stacked_pids = []
        self._legend.set_entries([])
        self.usageUpdated.emit()

    def stack_top(self) -> np.ndarray:
        """The stacked plot's upper edge (% of all CPUs per bin)."""
        if not self.stacked_pids:
            return np.zeros(0)
        return np.asarray(self._stack_curves[len(self.stacked_pids) - 1].yData)

    def _apply_palette(self) -> None:
        """Plots follow the application's light or dark palette."""
        super()._apply_palette()
        self.timeline_item.set_palette(self.palette())
