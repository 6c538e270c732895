"""Plots stacked one above the other on one time axis, as the simulated CPU timeline
(inspector/timeline.py) and the live machine's graphs (inspector/live_graphs.py) show
them: a plot of CPU rows on top, percentage graphs under it, and the "Follow now" /
"Zoom to fit" view range they share.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QFontMetrics, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolBar, QVBoxLayout, QWidget

AXIS_WIDTH = 72     # every plot of a stack has this left axis width so their x lines up
LANE_HEIGHT = 0.8   # of a CPU row; the rest is the gap between rows
GRAPH_MIN_HEIGHT = 24  # a graph's data area (ValueAxis keeps its labels apart at any height)
TIME_AXIS_HEIGHT = 36  # the time axis under the bottom plot, with its label
CPU_PENS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf")


def process_color(pid: int) -> QColor:
    """A stable colour per process: pids are multiples of 4, spread round the hue
    circle by the golden ratio so that neighbouring pids differ."""
    k = pid // 4 if pid % 4 == 0 else pid
    hue = (k * 0.6180339887498949) % 1.0
    sat = (0.50, 0.65, 0.80)[k % 3]
    val = (0.92, 0.80)[(k // 3) % 2]
    return QColor.fromHsvF(hue, sat, val)


class ValueAxis(pg.AxisItem):
    """A graph's value axis whose labels never crowd: pyqtgraph picks at least two
    intervals whatever the axis's length, so a short plot's labels overlapped; this one
    keeps its major ticks at least a text line and a half apart, on 1-2-5 steps."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float):
        levels = super().tickSpacing(minVal, maxVal, size)
        span = abs(maxVal - minVal)
        if not levels or span == 0:
            return levels
        fits = max(2, int(size // (1.5 * self.fontMetrics().height())))  # a middle tick too
        room = fits + 0.5  # the view's padding past the end ticks is not an interval
        if span / levels[0][0] <= room:
            return levels
        step = 10.0 ** math.floor(math.log10(span / room))
        for factor in (1, 2, 5, 10):
            if span / (step * factor) <= room:
                return [(step * factor, 0)]
        return [(step * 10, 0)]

    def fontMetrics(self) -> QFontMetrics:
        return QFontMetrics(self.style.get("tickFont") or self.font())


def stack_time_plots(rows_name: str, graphs: Sequence[tuple[str, str]], *, min_span_s: float,
                     time_label: str, time_units: str | None = None) -> list[pg.PlotWidget]:
    """New plots, top to bottom, by object name: the rows plot (x: seconds, y: one row
    per CPU, the first at the top), then `graphs` (name, title), 0-100 graphs whose x
    follows the rows plot. The mouse pans and zooms x only; only the bottom plot labels
    the time axis, the others keep its grid. A graph's title goes in the PlotLegend
    above it (`captioned`), not on its y axis, where a short plot would cut it."""
    stack = [(rows_name, None), *graphs]
    plots = [pg.PlotWidget(axisItems=None if label is None else {"left": ValueAxis("left")})
             for _, label in stack]
    rows, bottom = plots[0], plots[-1]
    for plot, (name, label) in zip(plots, stack):
        plot.setObjectName(name)
        item = plot.getPlotItem()
        item.setMouseEnabled(x=True, y=False)
        item.hideButtons()
        item.showGrid(x=False, y=label is not None, alpha=0.25)
        item.getAxis("left").setWidth(AXIS_WIDTH)
        if plot is bottom:
            item.setLabel("bottom", time_label, units=time_units)
        else:
            item.getAxis("bottom").setStyle(showValues=False)
        if label:
            item.setYRange(0, 100, padding=0.06)  # a line at 100 % clears the frame
            item.setXLink(rows.getPlotItem())
            # the bottom plot also holds the time axis and its label
            plot.setMinimumHeight(GRAPH_MIN_HEIGHT + (TIME_AXIS_HEIGHT if plot is bottom else 0))
        vb = item.getViewBox()
        vb.disableAutoRange()
        vb.setLimits(minXRange=min_span_s)
    rows.getPlotItem().getViewBox().invertY(True)
    return plots


class PlotLegend(QLabel):
    """The caption above a graph: its title, then a coloured mark and a name per curve.
    Above the plot rather than in it (a pyqtgraph legend covers a short plot's data and
    its text is cut by nothing but the plot's edge); it wraps when the pane is narrow."""

    def __init__(self, title: str = "", name: str = "") -> None:
        super().__init__()
        if name:
            self.setObjectName(name)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self._title = title
        self._entries: tuple[tuple[str, str, str], ...] = ()  # (name, colour, mark)
        self._render()

    def set_title(self, title: str) -> None:
        if title != self._title:
            self._title = title
            self._render()

    def set_entries(self, entries: Sequence[tuple[str, QColor | str]], mark: str = "━") -> None:
        """One entry per (name, colour); `mark` is drawn in the colour before the name
        (━ a line, ■ a filled area). Nothing is redrawn when nothing changed."""
        new = tuple((name, QColor(color).name(), mark) for name, color in entries)
        if new != self._entries:
            self._entries = new
            self._render()

    def names(self) -> list[str]:
        return [name for name, _, _ in self._entries]

    def title(self) -> str:
        return self._title

    def _render(self) -> None:
        parts = [f"<b>{html.escape(self._title)}</b>"] if self._title else []
        parts += [f'<span style="white-space:nowrap"><span style="color:{color}">{mark}</span>'
                  f"&nbsp;{html.escape(name)}</span>" for name, color, mark in self._entries]
        self.setText("&nbsp;&nbsp; ".join(parts))


def captioned(caption: QWidget, plot: QWidget) -> QWidget:
    """A caption above a plot, as one splitter pane."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 2, 0, 0)  # no left margin: the plots' x lines up
    layout.setSpacing(1)
    caption.setContentsMargins(6, 0, 0, 0)
    layout.addWidget(caption)
    layout.addWidget(plot, 1)
    return box


class CpuRowsItem(pg.GraphicsObject):
    """Base of the item in the top plot: one row per CPU (y: CPU number), blocks in
    their process's colour over a lane, the selected thread marked; the lane and the
    mark follow the palette. The tooltip is `describe(hit_at(pos))` for what lies under
    the pointer (`hit_at` gives None for nothing)."""

    def __init__(self, hit_at: Callable[[QPointF], object],
                 describe: Callable[[object], str]) -> None:
        super().__init__()
        self._hit_at = hit_at
        self._describe_hit = describe
        self._brushes: dict[int, QBrush] = {}
        self._lane_brush = QBrush(QColor(128, 128, 128, 36))
        self._highlight_brush = QBrush(QColor(0, 0, 0))
        self.hovered = None   # what hit_at gave for the pointer, None: nothing

    def set_palette(self, palette: QPalette) -> None:
        mid = QColor(palette.color(QPalette.ColorRole.Mid))
        mid.setAlpha(60)
        self._lane_brush = QBrush(mid)
        self._highlight_brush = QBrush(palette.color(QPalette.ColorRole.Highlight))
        self.update()

    def _brush(self, pid: int) -> QBrush:
        brush = self._brushes.get(pid)
        if brush is None:
            brush = self._brushes[pid] = QBrush(process_color(pid))
        return brush

    def hoverEvent(self, ev) -> None:
        if ev.isExit():
            self.hovered = None
            self.setToolTip("")
            return
        self.hovered = self._hit_at(ev.pos())
        self.setToolTip(self._describe_hit(self.hovered) if self.hovered is not None else "")


class TimePlotsWidget(QWidget):
    """Base of a widget that shows plots stacked on one time axis (`_stack_time_plots`)
    with "Follow now" and "Zoom to fit".

    Following keeps the newest part of the data in view while it grows: a pan stops
    following (the user looks at the past), a zoom keeps following at the new span.
    Times are in the data's own unit, `scale` of them to a second of the plots' x
    (cycles for the simulated timeline, seconds for the live graphs). A subclass says
    where its data lies with `time_extent` (first and last time, None without data), and
    may set `_cursor` to keep a moment at the right edge instead of the data's end (a
    replay's). The plots follow the palette; a subclass extends `_apply_palette` for its
    own items.
    """

    followNowChanged = Signal(bool)

    def __init__(self, parent: QWidget | None, *, scale: float, default_span: float,
                 min_span_s: float, name: str, follow_tip: str, fit_tip: str,
                 time_extent: Callable[[], tuple[float, float] | None]) -> None:
        super().__init__(parent)
        self._time_extent = time_extent
        self._scale = scale
        self._min_span_s = min_span_s
        self._follow = True
        self._follow_span = float(default_span)
        self._setting_range = False
        self._cursor: float | None = None
        self._time_plots: list[pg.PlotWidget] = []

        self.follow_action = QAction("Follow now", self)
        self.follow_action.setObjectName(f"{name}_follow_now")
        self.follow_action.setCheckable(True)
        self.follow_action.setChecked(True)
        self.follow_action.setToolTip(follow_tip)
        self.follow_action.toggled.connect(self.set_follow_now)
        self.fit_action = QAction("Zoom to fit", self)
        self.fit_action.setObjectName(f"{name}_zoom_fit")
        self.fit_action.setToolTip(fit_tip)
        self.fit_action.triggered.connect(self.zoom_to_fit)

    def _stack_time_plots(self, rows_name: str, graphs: Sequence[tuple[str, str]], *,
                          time_label: str, time_units: str | None = None) -> list[pg.PlotWidget]:
        """The widget's plots (see stack_time_plots); the top one holds the view range."""
        self._time_plots = stack_time_plots(rows_name, graphs, min_span_s=self._min_span_s,
                                            time_label=time_label, time_units=time_units)
        for plot in self._time_plots:
            plot.getPlotItem().getViewBox().sigRangeChangedManually.connect(
                self._on_range_changed_manually)
        return self._time_plots

    def _make_toolbar(self) -> QToolBar:
        toolbar = QToolBar()
        toolbar.addAction(self.follow_action)
        toolbar.addAction(self.fit_action)
        return toolbar

    # ------------------------------------------------------------------ view range
    @property
    def follow_now(self) -> bool:
        return self._follow

    @follow_now.setter
    def follow_now(self, on: bool) -> None:
        self.set_follow_now(on)

    def set_follow_now(self, on: bool) -> None:
        on = bool(on)
        if on and not self._follow:
            t0, t1 = self.x_range()
            if t1 > t0:
                self._follow_span = t1 - t0
        changed = on != self._follow
        self._follow = on
        self.follow_action.setChecked(on)
        if on:
            self._apply_follow()
        if changed:
            self.followNowChanged.emit(on)

    def _keep_up(self) -> None:
        """After the data or the cursor moved: a following view moves with it."""
        if self._follow:
            self._apply_follow()

    def _apply_follow(self) -> None:
        extent = self._time_extent()
        if extent is None:
            return
        first, last = extent
        end = last if self._cursor is None else self._cursor
        start = max(first, end - self._follow_span)
        self._set_range(start, start + self._follow_span)

    def _set_range(self, t0: float, t1: float) -> None:
        self._setting_range = True
        try:
            self._time_plots[0].getPlotItem().getViewBox().setXRange(
                t0 / self._scale, t1 / self._scale, padding=0)
        finally:
            self._setting_range = False

    def x_range(self) -> tuple[float, float]:
        """The visible time range."""
        (x0, x1), _ = self._time_plots[0].getPlotItem().getViewBox().viewRange()
        return x0 * self._scale, x1 * self._scale

    def set_x_range(self, t0: float, t1: float) -> None:
        """Show [t0, t1]; like a user zoom, it stops following."""
        self.set_follow_now(False)
        self._set_range(t0, t1)

    def zoom_to_fit(self) -> None:
        extent = self._time_extent()
        if extent is None:
            return
        self.set_follow_now(False)
        first, last = extent
        self._set_range(first, max(last, first + self._min_span_s * self._scale))

    def _on_range_changed_manually(self, *_) -> None:
        if self._setting_range or not self._follow:
            return
        t0, t1 = self.x_range()
        span = t1 - t0
        if abs(span - self._follow_span) <= 1e-6 * self._follow_span:
            self.set_follow_now(False)  # a pan: the user looks at the past
        else:
            self._follow_span = span    # a zoom: keep following at the new scale
            self._apply_follow()

    def map_to_viewport(self, t: float, cpu: float) -> QPoint:
        """Where time `t` on CPU row `cpu` is in the top plot's viewport."""
        rows = self._time_plots[0]
        scene = rows.getPlotItem().getViewBox().mapViewToScene(QPointF(t / self._scale, cpu))
        return rows.mapFromScene(scene)

    # ------------------------------------------------------------------ palette
    def changeEvent(self, ev) -> None:
        if ev.type() == ev.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(ev)

    def _apply_palette(self) -> None:
        """The plots in the application's light or dark palette."""
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        for plot in self._time_plots:
            plot.setBackground(base)
            for name in ("left", "bottom"):
                axis = plot.getPlotItem().getAxis(name)
                axis.setPen(text)
                axis.setTextPen(text)
