"""CPU timeline: segments from the context-switch trace, level of detail, usage binning
(core/timeline.py) and the pyqtgraph view (inspector/timeline.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPalette, QWheelEvent
from PySide6.QtWidgets import QApplication

from core.kernel import Machine, ms, us
from core.kernel import program as P
from core.kernel.constants import (
    CYCLES_PER_NS,
    CYCLES_PER_S,
    READY,
    TERMINATED,
    WAITING,
    UserRequest,
    WrPreempted,
    WrQuantumEnd,
    WrYieldExecution,
)
from core.timeline import (
    FILL_LEVELS,
    STILL_RUNNING,
    TRACE_COLUMNS,
    NameLookup,
    Timeline,
    TimelineError,
    end_reason_text,
)
from inspector.time_plots import PlotLegend, ValueAxis, process_color
from inspector.timeline import TimelineWidget

US = 1000 * CYCLES_PER_NS  # one microsecond in cycles
NONE = -1

# A hand-made trace on 2 CPUs (times in µs).  Thread A (tid 12) and B (tid 16) belong to
# process 8, C (tid 24) to process 20; idle threads are pid 0 / tid 0.
#   CPU 0: idle | A 300-900 (preempted by B) | B 900-2100 (waits) | idle 2100-now
#   CPU 1: idle | C 1500-2400 (quantum end, A takes over) | A 2400-3000 (exits) | idle
HAND_ROWS = [
    # time, cpu, old_tid, new_tid, old_pid, new_pid, old_pri, new_pri, old_state, old_wr
    (300, 0, 0, 12, 0, 8, 0, 9, READY, NONE),
    (900, 0, 12, 16, 8, 8, 9, 10, READY, WrPreempted),
    (1500, 1, 0, 24, 0, 20, 0, 8, READY, NONE),
    (2100, 0, 16, 0, 8, 0, 8, 0, WAITING, UserRequest),
    (2400, 1, 24, 12, 20, 8, 8, 9, READY, WrQuantumEnd),
    (3000, 1, 12, 0, 8, 0, 9, 0, TERMINATED, NONE),
]
HAND_NOW = 3600 * US
HAND_NAMES = NameLookup({0: "Idle", 8: "app.exe", 20: "svc.exe"},
                        {12: "A", 16: "B", 24: "C"})


def columns(rows) -> dict[str, np.ndarray]:
    dtypes = (np.int64, np.uint16, np.int32, np.int32, np.int32, np.int32, np.int8, np.int8,
              np.int8, np.int8)
    table = list(zip(*rows)) if rows else [()] * len(TRACE_COLUMNS)
    out = {name: np.array(col, dt) for name, col, dt in zip(TRACE_COLUMNS, table, dtypes)}
    out["time"] = out["time"] * US
    return out


def hand_columns() -> dict[str, np.ndarray]:
    return columns(HAND_ROWS)


def synthetic_columns(switches: int, cpus: int, seed: int = 1, processes: int = 12,
                      mean_us: float = 20.0) -> dict[str, np.ndarray]:
    """A consistent random trace: per CPU a chain of threads, about a quarter idle."""
    rng = np.random.default_rng(seed)
    per = switches // cpus
    parts = []
    for c in range(cpus):
        t = np.cumsum(rng.exponential(mean_us * US, per).astype(np.int64) + 3)
        idle = rng.random(per) < 0.25
        pid = np.where(idle, 0, 8 + 4 * 10 * rng.integers(0, processes, per))
        tid = np.where(idle, 0, pid + 4 * (1 + rng.integers(0, 8, per)))
        pri = np.where(idle, 0, rng.integers(1, 16, per))
        prev = lambda a: np.concatenate(([0], a[:-1]))  # noqa: E731
        state = rng.choice([READY, WAITING], per)
        parts.append((t, np.full(per, c), prev(tid), tid, prev(pid), pid, prev(pri), pri,
                      state, np.where(state == WAITING, UserRequest, WrPreempted)))
    cols = [np.concatenate(k) for k in zip(*parts)]
    order = np.argsort(cols[0], kind="stable")
    dtypes = (np.int64, np.uint16, np.int32, np.int32, np.int32, np.int32, np.int8, np.int8,
              np.int8, np.int8)
    return {n: c[order].astype(dt) for n, c, dt in zip(TRACE_COLUMNS, cols, dtypes)}


# ---------------------------------------------------------------------- segments


def test_segments_from_a_hand_made_trace():
    tl = Timeline.from_columns(hand_columns(), HAND_NOW, cpus=2)
    cpu0 = tl.segments(0)
    assert (cpu0.start // US).tolist() == [0, 300, 900, 2100]
    assert (cpu0.end // US).tolist() == [300, 900, 2100, 3600]
    assert cpu0.pid.tolist() == [0, 8, 8, 0]
    assert cpu0.tid.tolist() == [0, 12, 16, 0]
    assert cpu0.priority.tolist() == [0, 9, 10, 0]
    assert cpu0.end_state.tolist() == [READY, READY, WAITING, STILL_RUNNING]
    assert cpu0.end_wait.tolist() == [NONE, WrPreempted, UserRequest, NONE]
    assert cpu0.end_priority.tolist() == [0, 9, 8, -1]  # B decayed from 10 to 8
    cpu1 = tl.segments(1)
    assert (cpu1.start // US).tolist() == [0, 1500, 2400, 3000]
    assert (cpu1.end // US).tolist() == [1500, 2400, 3000, 3600]
    assert cpu1.tid.tolist() == [0, 24, 12, 0]
    assert cpu1.pid.tolist() == [0, 20, 8, 0]
    assert cpu1.end_state.tolist() == [READY, READY, TERMINATED, STILL_RUNNING]
    assert cpu1.end_wait.tolist() == [NONE, WrQuantumEnd, NONE, NONE]
    assert len(tl) == 8 and tl.rows_consumed == 6
    assert tl.pids().tolist() == [0, 8, 20]


def test_appending_switches_extends_without_rebuilding():
    cols = synthetic_columns(4000, 3, seed=4)
    now = int(cols["time"][-1]) + 50 * US
    whole = Timeline.from_columns(cols, now, cpus=3)
    grown = Timeline(3)
    for cut in (0, 1, 2, 700, 701, 2500, len(cols["time"])):
        taken_before = grown.rows_consumed
        prefix = {k: v[:cut] for k, v in cols.items()}  # the trace as it was then
        added = grown.extend(prefix, int(cols["time"][cut - 1]) if cut else 0)
        assert added == cut - taken_before
        # rows already taken stay where they are: the arrays only grow at the end
        assert grown.rows_consumed == cut
    grown.set_now(now)
    # a live feed may hand over only the new rows
    tail = Timeline(3)
    tail.extend({k: v[:1000] for k, v in cols.items()}, int(cols["time"][999]))
    tail.extend({k: v[900:] for k, v in cols.items()}, now, first_row=900)
    gap = Timeline(3)
    gap.extend({k: v[:1000] for k, v in cols.items()}, int(cols["time"][999]))
    with pytest.raises(TimelineError, match=r"rows 1000\.\.1099 are missing"):
        gap.extend({k: v[1100:] for k, v in cols.items()}, now, first_row=1100)
    for c in range(3):
        for a, b in zip(whole.segments(c), tail.segments(c)):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(whole.segments(c), grown.segments(c)):
            np.testing.assert_array_equal(a, b)
    # the busy running sum agrees with summing the segments
    s = whole.segments(1)
    busy = int(((s.end - s.start) * (s.pid != 0)).sum())
    assert whole.busy_until(1, np.array([now]))[0] == busy


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["old_tid"].__setitem__(1, 99), "inconsistent trace: CPU 0 at cycle"),
    (lambda c: c["cpu"].__setitem__(2, 5), "a switch on CPU 5 but the timeline has 2 CPUs"),
    (lambda c: c.pop("old_state"), "trace columns missing: old_state"),
])
def test_bad_traces_are_one_line_errors(mutate, message):
    cols = hand_columns()
    mutate(cols)
    with pytest.raises(TimelineError, match=message) as err:
        Timeline.from_columns(cols, HAND_NOW, cpus=2)
    assert "\n" not in str(err.value)


def test_a_bad_batch_leaves_the_timeline_as_it_was():
    cols = hand_columns()
    tl = Timeline.from_columns({k: v[:3] for k, v in cols.items()}, 1600 * US, cpus=2)
    before = [tuple(a.copy() for a in tl.segments(c)) for c in range(2)]
    cols["old_tid"][5] = 16  # CPU 1 at 3000 µs: tid 12 ran there, not 16
    with pytest.raises(TimelineError, match="CPU 1 at cycle"):
        tl.extend(cols, HAND_NOW)
    with pytest.raises(TimelineError, match="earlier than the last switch"):
        tl.extend(hand_columns(), 2500 * US)
    assert tl.rows_consumed == 3 and tl.now == 1600 * US
    for c in range(2):
        for a, b in zip(before[c], tl.segments(c)):
            np.testing.assert_array_equal(a, b)


def test_now_cannot_go_before_the_last_switch():
    with pytest.raises(TimelineError, match="earlier than the last switch"):
        Timeline.from_columns(hand_columns(), 2000 * US, cpus=2)


def test_why_a_segment_ended_uses_the_kernel_names():
    assert end_reason_text(READY, WrPreempted) == "Preempted (now Ready, WrPreempted)"
    assert end_reason_text(READY, WrQuantumEnd) == "Quantum end (now Ready, WrQuantumEnd)"
    assert end_reason_text(READY, WrYieldExecution).startswith("Yielded")
    assert end_reason_text(WAITING, UserRequest) == "Waiting: UserRequest"
    assert end_reason_text(TERMINATED, NONE) == "Terminated"
    assert end_reason_text(STILL_RUNNING, NONE) == "still running"


def test_segment_at_prefers_work_near_the_pointer():
    tl = Timeline.from_columns(hand_columns(), HAND_NOW, cpus=2)
    assert tl.segment_at(0, 500 * US).tid == 12
    assert tl.segment_at(0, 200 * US).idle
    # 20 µs left of A's start: idle exactly there, A within the slack
    assert tl.segment_at(0, 280 * US, slack=30 * US).tid == 12
    assert tl.segment_at(1, 4000 * US) is None


# ---------------------------------------------------------------------- level of detail


def test_lod_draws_few_segments_exactly():
    tl = Timeline.from_columns(hand_columns(), HAND_NOW, cpus=2)
    row = tl.lod(0, 0, 3600 * US, 360)  # 10 µs per column
    assert not row.merged
    assert row.x0.tolist() == [30.0, 90.0] and row.x1.tolist() == [90.0, 210.0]
    assert row.pid.tolist() == [8, 8] and row.fill.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("seed", [1, 2])
def test_lod_merges_per_column_without_losing_time(seed):
    cols = synthetic_columns(3000, 1, seed=seed, processes=4)
    now = int(cols["time"][-1]) + 7 * US
    tl = Timeline.from_columns(cols, now, cpus=1)
    seg = tl.segments(0)
    t0 = float(seg.start[500]) + 0.3 * US
    t1 = float(seg.start[2500])
    ncols = 97
    row = tl.lod(0, t0, t1, ncols)
    assert row.merged and 0 < len(row.x0) <= ncols
    assert np.all(row.x1 > row.x0) and np.all(row.x0[1:] >= row.x1[:-1])
    assert np.all(row.x0 == np.floor(row.x0)) and np.all(row.x1 == np.floor(row.x1))
    # brute force, column by column: busy time and the process that ran longest
    width = (t1 - t0) / ncols
    busy = np.zeros(ncols)
    per_pid: list[dict[int, float]] = [{} for _ in range(ncols)]
    for s, e, pid in zip(seg.start.tolist(), seg.end.tolist(), seg.pid.tolist()):
        for c in range(ncols):
            lo, hi = max(s, t0 + c * width), min(e, t0 + (c + 1) * width)
            if hi > lo and pid:
                busy[c] += hi - lo
                per_pid[c][pid] = per_pid[c].get(pid, 0.0) + hi - lo
    drawn = np.zeros(ncols, bool)
    for x0, x1, pid, fill in zip(row.x0.astype(int), row.x1.astype(int), row.pid, row.fill):
        drawn[x0:x1] = True
        for c in range(x0, x1):
            assert pid == max(per_pid[c], key=per_pid[c].get)
            assert abs(fill - busy[c] / width) <= 0.5 / FILL_LEVELS + 1e-9
    np.testing.assert_array_equal(drawn, busy > 0)  # the same time is covered


def test_lod_never_hands_more_rectangles_than_pixels():
    cols = synthetic_columns(200_000, 4, seed=3)
    now = int(cols["time"][-1])
    tl = Timeline.from_columns(cols, now, cpus=4)
    for t0, t1, px in ((0, now, 800), (now * 0.4, now * 0.41, 300), (0, now, 1)):
        rows = [tl.lod(c, t0, t1, px) for c in range(4)]
        assert sum(len(r.x0) for r in rows) <= px * 4
        for r in rows:
            assert np.all((r.x0 >= 0) & (r.x1 <= px + 1))


# ---------------------------------------------------------------------- usage


def test_usage_bins_per_cpu_and_per_process():
    tl = Timeline.from_columns(hand_columns(), HAND_NOW, cpus=2)
    u = tl.usage(0, 600 * US, 6)
    assert (u.cpu_busy[0] / US).tolist() == [300, 600, 600, 300, 0, 0]
    assert (u.cpu_busy[1] / US).tolist() == [0, 0, 300, 600, 600, 0]
    assert u.pids.tolist() == [8, 20]
    assert (u.process_busy[0] / US).tolist() == [300, 600, 600, 300, 600, 0]
    assert (u.process_busy[1] / US).tolist() == [0, 0, 300, 600, 0, 0]
    assert (u.covered / US).tolist() == [600] * 6
    # past "now" nothing is covered
    assert (tl.usage(3000 * US, 600 * US, 2).covered / US).tolist() == [600, 0]


def test_usage_per_process_adds_up_to_usage_per_cpu():
    cols = synthetic_columns(20_000, 4, seed=9, processes=30)
    now = int(cols["time"][-1]) + 11 * US
    tl = Timeline.from_columns(cols, now, cpus=4)
    u = tl.usage(now * 0.1, now / 157, 120)
    np.testing.assert_allclose(u.process_busy.sum(axis=0), u.cpu_busy.sum(axis=0),
                               rtol=1e-9, atol=1e-3)


# ---------------------------------------------------------------------- real simulation


def test_timeline_of_a_real_simulation_matches_the_kernel():
    m = Machine(cpus=2)
    a = m.create_process("a.exe")
    b = m.create_process("b.exe", "above_normal")
    threads = [m.create_thread(a, program=[P.cpu(ms(40)), P.sleep(ms(3)), P.repeat()]),
               m.create_thread(a, program=[P.cpu(ms(25)), P.repeat()]),
               m.create_thread(b, program=[P.cpu(us(900)), P.sleep(ms(5)), P.repeat()])]
    m.run_until(ms(150))
    tl = Timeline(2)
    tl.extend(m.trace.columns(), m.now)
    m.run_until(ms(300))
    tl.extend(m.trace.columns(), m.now)  # incremental, as the live view does
    assert tl.rows_consumed == len(m.trace)
    for c, (busy, idle) in enumerate(m.cpu_times()):
        s = tl.segments(c)
        assert s.end[-1] == m.now and np.all(s.start[1:] == s.end[:-1])
        assert int(((s.end - s.start) * (s.pid != 0)).sum()) == busy
    for t in threads:
        ran = sum(int(((s.end - s.start) * (s.tid == t.tid)).sum())
                  for s in map(tl.segments, range(2)))
        assert ran == t.user + t.kernel
    u = tl.usage(0, m.now / 10, 10)
    assert u.process_busy.sum() == pytest.approx(sum(bz for bz, _ in m.cpu_times()))


# ---------------------------------------------------------------------- the widget


@pytest.fixture
def widget(qtbot, no_mouse_rate_limit):
    w = TimelineWidget()
    qtbot.addWidget(w)
    w.resize(900, 600)
    w.show()
    qtbot.waitExposed(w)
    return w


def hand_widget(w: TimelineWidget) -> TimelineWidget:
    w.set_trace(hand_columns(), HAND_NOW, HAND_NAMES, cpus=2)
    w.zoom_to_fit()
    w.timeline_plot.grab()  # lay out and paint once
    return w


def test_tooltip_describes_the_segment_under_the_mouse(widget, qtbot):
    hand_widget(widget)
    text = widget.describe(widget.timeline.segment_at(0, 1000 * US))
    assert text.splitlines() == [
        "Thread 16 (B)", "Process app.exe (8)", "CPU 0 · Priority: 10 (switched out at 8)",
        "Start: 900.000 µs", "Duration: 1.200 ms", "Ended: Waiting: UserRequest"]
    view = widget.timeline_plot.viewport()
    qtbot.mouseMove(view, widget.map_to_viewport(2700 * US, 1))
    qtbot.waitUntil(lambda: widget.timeline_item.hovered is not None)
    tip = widget.timeline_item.toolTip()
    assert tip.splitlines()[:2] == ["Thread 12 (A)", "Process app.exe (8)"]
    assert "Ended: Terminated" in tip and "Start: 2400.000 µs" in tip


def test_names_come_lazily_from_a_state_callable(widget):
    calls = []

    def state():
        calls.append(1)
        return {"processes": [{"pid": 20, "name": "svc.exe",
                               "threads": [{"tid": 24, "name": "C"}]}]}
    widget.set_trace(hand_columns(), HAND_NOW, state, cpus=2)
    text = widget.describe(widget.timeline.segment_at(1, 2000 * US))
    assert "Thread 24 (C)" in text and "svc.exe (20)" in text
    before = len(calls)
    widget.describe(widget.timeline.segment_at(0, 500 * US))  # pid 8: unknown
    assert len(calls) == before  # nothing new ran since the names were fetched
    widget.update_trace(hand_columns(), HAND_NOW + 10 * US)
    widget.describe(widget.timeline.segment_at(0, 500 * US))
    widget.describe(widget.timeline.segment_at(0, 500 * US))
    assert len(calls) == before + 1  # asked again once, not on every hover


def test_clicking_a_segment_emits_its_thread(widget, qtbot):
    hand_widget(widget)
    view = widget.timeline_plot.viewport()
    with qtbot.waitSignal(widget.threadClicked) as blocker:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton,
                         pos=widget.map_to_viewport(1800 * US, 1))
    assert blocker.args == [20, 24]
    assert widget.timeline_item._selected_tid == 24
    with qtbot.assertNotEmitted(widget.threadClicked):  # idle time selects nothing
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton,
                         pos=widget.map_to_viewport(100 * US, 0))


def wheel_zoom_in(widget: TimelineWidget, t_cycles: float) -> None:
    """Two notches of the mouse wheel over time `t_cycles` of the timeline."""
    view = widget.timeline_plot.viewport()
    at = widget.map_to_viewport(t_cycles, 0.5)
    wheel = QWheelEvent(QPointF(at), QPointF(view.mapToGlobal(at)), QPoint(0, 0),
                        QPoint(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view, wheel)


def test_mouse_wheel_zooms_time_only(widget, qtbot):
    hand_widget(widget)
    t0, t1 = widget.x_range_cycles()
    y_before = widget.timeline_plot.getPlotItem().getViewBox().viewRange()[1]
    wheel_zoom_in(widget, 1800 * US)
    z0, z1 = widget.x_range_cycles()
    assert z1 - z0 < 0.9 * (t1 - t0)
    assert z0 < 1800 * US < z1
    assert widget.timeline_plot.getPlotItem().getViewBox().viewRange()[1] == y_before
    # the usage plots share the time axis
    (u0, u1), _ = widget.cpu_usage_plot.getPlotItem().getViewBox().viewRange()
    assert (u0 * CYCLES_PER_S, u1 * CYCLES_PER_S) == pytest.approx((z0, z1))


def test_follow_now_tracks_new_switches_until_the_user_pans(widget, qtbot):
    cols = synthetic_columns(6000, 2, seed=5)
    times = cols["time"]
    half = {k: v[:3000] for k, v in cols.items()}
    widget.set_trace(half, int(times[2999]), cpus=2)
    assert widget.follow_now
    span = float(times[999])
    widget.set_x_range_cycles(0, span)
    assert not widget.follow_now
    widget.set_follow_now(True)  # takes the current span as the follow window
    widget.update_trace({k: v[:4000] for k, v in cols.items()}, int(times[3999]))
    assert widget.x_range_cycles() == pytest.approx((times[3999] - span, times[3999]))
    # the user drags the timeline to the right: back in time, following stops
    view = widget.timeline_plot.viewport()
    start = widget.map_to_viewport(times[3999] - span / 2, 0.5)
    with qtbot.waitSignal(widget.followNowChanged) as blocker:
        qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
        qtbot.mouseMove(view, start + QPoint(40, 0))
        qtbot.mouseMove(view, start + QPoint(120, 0))
        qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=start + QPoint(120, 0))
    assert blocker.args == [False] and not widget.follow_action.isChecked()
    parked = widget.x_range_cycles()
    assert parked[1] < times[3999]
    widget.update_trace(cols, int(times[-1]))
    assert widget.x_range_cycles() == pytest.approx(parked)
    widget.follow_action.trigger()  # back on: jumps to now
    assert widget.follow_now and widget.x_range_cycles()[1] == pytest.approx(times[-1])


def test_a_zoom_while_following_keeps_following_at_the_new_span(widget):
    cols = synthetic_columns(6000, 2, seed=5)
    times = cols["time"]
    widget.set_trace({k: v[:3000] for k, v in cols.items()}, int(times[2999]), cpus=2)
    widget.set_x_range_cycles(0, float(times[999]))
    widget.set_follow_now(True)  # following the last third of the trace
    t0, t1 = widget.x_range_cycles()
    assert t1 == pytest.approx(times[2999])
    wheel_zoom_in(widget, (t0 + t1) / 2)
    z0, z1 = widget.x_range_cycles()
    assert widget.follow_now and z1 - z0 < 0.9 * (t1 - t0)
    assert z1 == pytest.approx(times[2999])  # still ending at now
    widget.update_trace(cols, int(times[-1]))
    assert widget.x_range_cycles() == pytest.approx((times[-1] - (z1 - z0), times[-1]))


def test_following_keeps_the_replay_cursor_in_view(widget):
    cols = synthetic_columns(6000, 2, seed=5)
    times = cols["time"]
    widget.set_trace(cols, int(times[-1]), cpus=2)
    widget.set_x_range_cycles(0, float(times[999]))
    widget.set_follow_now(True)
    span = float(times[999])
    widget.set_cursor(times[3000])
    assert widget.cursor_cycles == times[3000]
    assert all(line.isVisible() and line.value() == pytest.approx(times[3000] / CYCLES_PER_S)
               for line in widget.cursor_lines)
    assert widget.x_range_cycles() == pytest.approx((times[3000] - span, times[3000]))
    widget.zoom_to_fit()  # the whole trace, not up to the cursor
    assert widget.x_range_cycles() == pytest.approx((0, times[-1]))
    widget.set_follow_now(True)
    widget.set_cursor(None)
    assert not any(line.isVisible() for line in widget.cursor_lines)
    assert widget.x_range_cycles()[1] == pytest.approx(times[-1])


def test_plots_and_legends_take_a_new_palette(widget, qtbot):
    hand_widget(widget)
    widget.set_x_range_cycles(0, 3600 * US)
    with qtbot.waitSignal(widget.usageUpdated):
        pass
    dark = QPalette(widget.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor(20, 20, 30))
    dark.setColor(QPalette.ColorRole.Text, QColor(230, 230, 200))
    dark.setColor(QPalette.ColorRole.WindowText, QColor(230, 230, 200))
    widget.setPalette(dark)
    for plot in (widget.timeline_plot, widget.cpu_usage_plot, widget.process_usage_plot):
        assert plot.backgroundBrush().color() == QColor(20, 20, 30)
        assert plot.getPlotItem().getAxis("bottom").textPen().color() == QColor(230, 230, 200)
    # the legends above the graphs are labels: their text takes the palette's
    for legend in (widget._legend, widget._cpu_legend):
        assert legend.palette().color(legend.foregroundRole()) == QColor(230, 230, 200)
    assert len(widget._legend.names() + widget._cpu_legend.names()) == 4  # 2 processes, 2 CPUs


def test_usage_plots_show_the_binned_usage(widget, qtbot):
    hand_widget(widget)
    widget.set_x_range_cycles(0, 3600 * US)
    with qtbot.waitSignal(widget.usageUpdated):
        pass  # the range change schedules a refresh on the event loop
    u = widget.usage
    expect = u.cpu_busy / np.where(u.covered > 0, u.covered, np.inf) * 100
    for c, curve in enumerate(widget.cpu_curves):
        np.testing.assert_allclose(curve.yData, expect[c])
    # the stack's top is the whole machine's usage: the mean over CPUs
    np.testing.assert_allclose(widget.stack_top(), expect.mean(axis=0))
    assert widget.stacked_pids == [8, 20]  # busiest first, at the bottom
    # whatever the bins, they hold the hand-computed busy times
    assert (u.cpu_busy.sum(axis=1) / US).tolist() == [1800, 1500]
    assert (u.process_busy.sum(axis=1) / US).tolist() == [2400, 900]


def legend_texts(widget) -> list[str]:
    return widget._legend.names()


def test_the_legend_follows_the_stack_order_when_the_ranking_changes(widget, qtbot):
    hand_widget(widget)
    widget.set_x_range_cycles(0, 3600 * US)
    with qtbot.waitSignal(widget.usageUpdated):
        pass
    u = widget.usage
    assert legend_texts(widget) == ["app.exe (8)", widget.process_label(20)]
    # the other process now the busiest: the legend follows, in the colours of the bands
    swapped = u._replace(pids=u.pids[::-1].copy())  # 20 gets the larger busy time
    x = np.arange(len(u.process_busy[0]) + 1, dtype=float)
    widget._set_stack(x, swapped, np.full(len(x) - 1, 2.0 * u.process_busy.max()))
    assert widget.stacked_pids == [20, 8]
    assert legend_texts(widget) == [widget.process_label(20), "app.exe (8)"]
    text = widget._legend.text()
    assert text.index(process_color(20).name()) < text.index(process_color(8).name())


def test_a_large_trace_is_drawn_within_the_pixel_budget(widget):
    cols = synthetic_columns(400_000, 8, seed=2)
    widget.set_trace(cols, int(cols["time"][-1]), cpus=8)
    widget.zoom_to_fit()
    widget.timeline_plot.grab()
    width = widget.timeline_plot.getPlotItem().getViewBox().width()
    assert 0 < widget.timeline_item.rects_drawn <= (width + 2) * 8
    t0, t1 = widget.x_range_cycles()
    widget.set_x_range_cycles(t0 + (t1 - t0) * 0.5, t0 + (t1 - t0) * 0.5005)
    widget.timeline_plot.grab()
    assert 0 < widget.timeline_item.rects_drawn <= (width + 2) * 8


def test_a_legend_shows_names_as_text_in_their_colours(qtbot):
    legend = PlotLegend("CPU usage (%)")
    qtbot.addWidget(legend)
    legend.set_entries([("<script> & co (8)", "#ff0000"), ("b.exe (12)", QColor(0, 128, 0))],
                       mark="■")
    assert legend.names() == ["<script> & co (8)", "b.exe (12)"]
    text = legend.text()
    assert "&lt;script&gt; &amp; co (8)" in text and "<script>" not in text
    assert text.index("#ff0000") < text.index("#008000") and "■" in text
    assert legend.title() == "CPU usage (%)" and "<b>CPU usage (%)</b>" in text


@pytest.mark.parametrize("size", [30, 40, 60, 90, 150, 300])
@pytest.mark.parametrize("lo, hi", [(-6, 106), (0, 1.02), (0, 5.1)])
def test_a_value_axis_keeps_its_labels_a_line_and_a_half_apart(qtbot, size, lo, hi):
    """pyqtgraph's own spacing put five labels on a 25-pixel graph, over each other."""
    axis = ValueAxis("left")
    (spacing, values), *_ = axis.tickValues(lo, hi, size)
    inside = [v for v in values if lo <= v <= hi]
    assert len(inside) >= 2  # 0 and the middle, at least: the graph can still be read
    assert spacing / (hi - lo) * size >= 1.5 * axis.fontMetrics().height() or len(inside) <= 3
