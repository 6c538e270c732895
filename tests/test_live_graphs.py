"""The live CPU timelines (inspector/live_graphs.py) over a core.live History filled by
a Sampler from scripted snapshots, so every value drawn is known."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from core.live import (
    CpuTimes,
    CpuUsage,
    History,
    ProcessInfo,
    Sampler,
    Snapshot,
    ThreadInfo,
    apply_deltas,
)
from inspector.live_graphs import (
    DEFAULT_FOLLOW_SPAN_S,
    STRIP_CAPTION,
    TIME_AXIS_LABEL,
    LiveGraphsWidget,
    clock_text,
)
from inspector.timeline import process_color

T0 = 5000.0          # seconds since boot of the first sample
WALL0 = 1.7e9
APP, SVC = (100, 5), (200, 9)            # process keys: (pid, start stamp)
APP_MAIN, APP_IDLE, SVC_MAIN = (101, 5), (102, 5), (201, 9)
NAMES = {100: "app", 200: "svc"}


# ---- scripted samples: sample i, CPU c ----------------------------------------------------

def busy_at(i: int, c: int) -> float:
    return float((10 * i + 7 * c) % 100)


def kernel_at(i: int, c: int) -> float:
    return busy_at(i, c) / 4


def app_pct(i: int) -> float:
    return (i % 4) * 2.5          # 0 every fourth sample: left out, as sources do


def svc_pct(i: int) -> float:
    return 12.5 + i % 3


def who_at(i: int, c: int) -> tuple[int, int] | None:
    """The busiest thread seen on CPU c in sample i's interval (None: no thread)."""
    if (i + c) % 5 == 0:
        return None
    return (100, 101) if (i + c) % 2 == 0 else (200, 201)


def scripted(i: int, cpus: int) -> Snapshot:
    """Sample i as a source returns it: per-interval figures filled from sample 1 on."""
    snap = Snapshot(host="linux", source="test", wall_time=WALL0 + i, uptime_s=T0 + i,
                    monotonic=T0 + i, cpus=cpus, processes=[], cpu_times=[])
    if i == 0:
        return snap  # nothing to compare a first sample with
    snap.interval_s = 1.0
    snap.cpu_usage = [CpuUsage(c, busy_at(i, c), busy_at(i, c) - kernel_at(i, c),
                               kernel_at(i, c), 100 - busy_at(i, c)) for c in range(cpus)]
    snap.process_cpu_percent = {k: v for k, v in ((APP, app_pct(i)), (SVC, svc_pct(i))) if v}
    snap.thread_cpu_percent = {k: v for k, v in ((APP_MAIN, app_pct(i)),
                                                 (SVC_MAIN, svc_pct(i))) if v}
    snap.who_ran = []
    for c in range(cpus):
        top = who_at(i, c)
        # a less busy thread seen there too: the strip shows only the busiest
        snap.who_ran.append([] if top is None else [(*top, 9.0 + c), (100, 102, 0.5)])
    return snap


class ScriptedSource:
    def __init__(self, cpus: int):
        self.cpus = cpus
        self.calls = 0

    def sample(self) -> Snapshot:
        snap = scripted(self.calls, self.cpus)
        self.calls += 1
        return snap


def sampled(samples: int, cpus: int = 4, history: int = 600) -> Sampler:
    sampler = Sampler(ScriptedSource(cpus), 1.0, history=history)
    take(sampler, samples)
    return sampler


def take(sampler: Sampler, samples: int) -> None:
    for _ in range(samples):
        sampler.sample_now()


def expected_blocks(history: History, cpu: int) -> list[tuple[float, float, int, int]]:
    """who_ran_strip as intervals: a block runs from the sample before to its own."""
    times = list(history.times())
    return [(times[times.index(t) - 1], t, pid, tid)
            for t, pid, tid in history.who_ran_strip(cpu) if t > times[0]]


def curve_data(curve) -> tuple[list[float], list[float]]:
    x, y = curve.getData()
    return list(x), list(y)


# ---- the widget ------------------------------------------------------------------------------

@pytest.fixture
def widget(qtbot, no_mouse_rate_limit):
    w = LiveGraphsWidget()
    qtbot.addWidget(w)
    w.resize(900, 700)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_cpu_curves_are_the_history_series(widget):
    sampler = sampled(20, cpus=4)
    widget.set_history(sampler.history, NAMES, 1.0)
    assert len(widget.cpu_curves) == 4 and widget.kernel_curves == []
    for c, curve in enumerate(widget.cpu_curves):
        times, busy = sampler.history.cpu_series(c)
        assert curve_data(curve) == (list(times), list(busy))
        # the first sample has no figure: the curve starts at the second
        assert curve_data(curve) == ([T0 + i for i in range(1, 20)],
                                     [busy_at(i, c) for i in range(1, 20)])
    bottom = widget.selection_plot.getPlotItem().getAxis("bottom")
    assert bottom.labelText == TIME_AXIS_LABEL


def test_few_cpus_show_kernel_time_stacked_under_busy(widget):
    sampler = sampled(12, cpus=2)
    widget.set_history(sampler.history, NAMES)
    assert len(widget.kernel_curves) == 2
    for c in range(2):
        assert curve_data(widget.cpu_curves[c])[1] == [busy_at(i, c) for i in range(1, 12)]
        assert curve_data(widget.kernel_curves[c]) == (
            [T0 + i for i in range(1, 12)], [kernel_at(i, c) for i in range(1, 12)])
    assert widget._cpu_legend.names() == ["CPU 0", "CPU 1"]
    assert "kernel time" in widget._cpu_legend.title()


def test_refresh_sets_new_data_on_the_same_plot_items(widget):
    sampler = sampled(10, cpus=4)
    widget.set_history(sampler.history, NAMES)
    curves = list(widget.cpu_curves)
    items = list(widget.cpu_plot.getPlotItem().items)
    take(sampler, 3)
    assert widget.refresh()
    assert widget.cpu_curves == curves
    assert widget.cpu_plot.getPlotItem().items == items
    assert curve_data(curves[2])[1] == [busy_at(i, 2) for i in range(1, 13)]
    assert widget.strip_item.blocks(1) == expected_blocks(sampler.history, 1)
    assert not widget.refresh()          # no new sample: nothing to do
    assert widget.data.rebuilds == 0     # each refresh converted only the new points


def test_strip_blocks_are_the_busiest_thread_per_sample_in_process_colours(widget, qtbot):
    sampler = sampled(30, cpus=4)
    widget.set_history(sampler.history, NAMES)
    widget.zoom_to_fit()
    for c in range(4):
        blocks = widget.strip_item.blocks(c)
        assert blocks == expected_blocks(sampler.history, c)
        assert blocks == [(T0 + i - 1, T0 + i, *who_at(i, c)) for i in range(1, 30)
                          if who_at(i, c) is not None]
    assert widget.strip_item.pids_drawn() == [100, 200]
    assert widget.strip_item.blocks_drawn == sum(
        who_at(i, c) is not None for i in range(1, 30) for c in range(4))
    # what is painted: the block's middle is its process's colour
    image = widget.strip_plot.viewport().grab().toImage()
    for i, c in ((7, 0), (8, 0), (12, 2)):
        pid = who_at(i, c)[0]
        assert widget.strip_item.brush_color(pid) == process_color(pid)
        at = widget.map_to_viewport(T0 + i - 0.5, c)
        painted, want = image.pixelColor(at), process_color(pid)
        assert abs(painted.red() - want.red()) <= 2 and abs(painted.green() - want.green()) <= 2
        assert abs(painted.blue() - want.blue()) <= 2
    caption = widget.strip_caption
    assert caption.text() == STRIP_CAPTION and caption.isVisible()
    assert "sampled" in caption.text() and "not every thread that ran" in caption.text()


def test_strip_tooltip_names_process_thread_cpu_and_time(widget, qtbot):
    sampler = sampled(30, cpus=4)
    widget.set_history(sampler.history, NAMES)
    widget.zoom_to_fit()
    i, cpu = 8, 1                       # sample 8's interval on CPU 1
    assert who_at(i, cpu) == (200, 201)
    qtbot.mouseMove(widget.strip_plot.viewport(), widget.map_to_viewport(T0 + i - 0.5, cpu))
    qtbot.waitUntil(lambda: widget.strip_item.hovered == (i, cpu))
    assert widget.strip_item.toolTip().splitlines() == [
        "Process svc (200)",
        "Thread 201",
        "CPU 1 · the thread used 10.0 % of all CPUs in the interval",
        f"Interval: {T0 + i - 1:.2f} – {T0 + i:.2f} s since boot "
        f"(sampled at {clock_text(WALL0 + i)})",
        "Sampled: the busiest thread last seen on this CPU, not every thread that ran",
    ]
    # a name source that does not know the pid: the pid alone, nothing made up
    widget.set_names(lambda pid: {100: "app"}.get(pid))
    assert widget.describe(i, cpu).splitlines()[0] == "Process pid 200"
    assert who_at(11, cpu) == (100, 101)
    assert widget.describe(11, cpu).splitlines()[0] == "Process app (100)"


def test_clicking_a_strip_block_emits_its_thread(widget, qtbot):
    sampler = sampled(30, cpus=4)
    widget.set_history(sampler.history, NAMES)
    widget.zoom_to_fit()
    view = widget.strip_plot.viewport()
    with qtbot.waitSignal(widget.threadClicked) as blocker:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton,
                         pos=widget.map_to_viewport(T0 + 11 - 0.5, 3))
    assert blocker.args == list(who_at(11, 3)) == [100, 101]
    with qtbot.assertNotEmitted(widget.threadClicked):  # an interval with no thread seen
        assert who_at(12, 3) is None
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton,
                         pos=widget.map_to_viewport(T0 + 12 - 0.5, 3))


def test_selection_graph_follows_the_selected_process_and_thread(widget):
    sampler = sampled(25, cpus=4)
    history = sampler.history
    widget.set_history(history, NAMES)
    assert not widget.process_curve.isVisible() and not widget.thread_curve.isVisible()
    assert widget.selection_label.title() == "Select a process or thread to graph its CPU %"
    assert widget.selection_label.names() == []

    widget.set_selection(APP, None, "app (100)")
    assert widget.selection_label.title() == "CPU % of app (100)"
    assert widget.selection_label.names() == ["the process (all its threads)"]
    assert widget.process_curve.isVisible() and not widget.thread_curve.isVisible()
    times, pct = history.process_series(APP)
    assert curve_data(widget.process_curve) == (list(times), list(pct))
    assert list(pct) == [app_pct(i) for i in range(1, 25)]   # 0 where it used none
    assert widget.strip_item.highlighted() == 0

    widget.set_selection(APP, APP_MAIN, "app (100) thread 101")
    assert widget.thread_curve.isVisible()
    assert curve_data(widget.thread_curve) == tuple(map(list, history.thread_series(APP_MAIN)))
    assert widget.strip_item.highlighted() == sum(
        who_at(i, c) == (100, 101) for i in range(1, 25) for c in range(4))
    # the mark is painted under the thread's blocks, not under another thread's
    widget.zoom_to_fit()
    image = widget.strip_plot.viewport().grab().toImage()
    mark = widget.palette().color(widget.palette().ColorRole.Highlight)
    assert who_at(7, 1) == (100, 101) and who_at(8, 1) == (200, 201)
    assert image.pixelColor(widget.map_to_viewport(T0 + 6.5, 1.47)) == mark
    assert image.pixelColor(widget.map_to_viewport(T0 + 7.5, 1.47)) != mark

    widget.set_selection(SVC, SVC_MAIN, "svc (200) thread 201")
    assert curve_data(widget.process_curve)[1] == [svc_pct(i) for i in range(1, 25)]
    assert curve_data(widget.thread_curve)[1] == [svc_pct(i) for i in range(1, 25)]
    # the y range holds the curve (12.5..14.5 %) on a 1-2-5 step
    (_, _), (y0, y1) = widget.selection_plot.getPlotItem().getViewBox().viewRange()
    assert y0 < 0 < 14.5 < 20 <= y1 < 21

    widget.set_selection(APP, APP_IDLE, "app (100) thread 102")  # never busy: all 0
    assert curve_data(widget.thread_curve)[1] == [0.0] * 24
    take(sampler, 2)  # new samples reach the selection graph too
    widget.refresh()
    assert curve_data(widget.process_curve)[1][-2:] == [app_pct(25), app_pct(26)]

    widget.set_selection(None, None)
    assert not widget.process_curve.isVisible() and not widget.thread_curve.isVisible()
    assert widget.strip_item.highlighted() == 0


def test_follow_keeps_now_in_view_until_the_user_pans(widget, qtbot):
    sampler = sampled(200, cpus=2)
    widget.set_history(sampler.history, NAMES, 1.0)
    assert widget.follow_now and widget.follow_action.isChecked()
    last = T0 + 199
    assert widget.x_range() == pytest.approx((last - DEFAULT_FOLLOW_SPAN_S, last))
    take(sampler, 5)
    widget.refresh()
    assert widget.x_range() == pytest.approx((last + 5 - DEFAULT_FOLLOW_SPAN_S, last + 5))
    # a zoom, then following again: the new span is kept
    widget.set_x_range(last - 20, last)
    assert not widget.follow_now
    widget.set_follow_now(True)
    assert widget.x_range() == pytest.approx((last + 5 - 20, last + 5))
    # the user drags the plot to the right: back in time, following stops
    view = widget.strip_plot.viewport()
    start = widget.map_to_viewport(last - 5, 0.5)
    with qtbot.waitSignal(widget.followNowChanged) as blocker:
        qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
        qtbot.mouseMove(view, start + QPoint(40, 0))
        qtbot.mouseMove(view, start + QPoint(120, 0))
        qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=start + QPoint(120, 0))
    assert blocker.args == [False] and not widget.follow_action.isChecked()
    parked = widget.x_range()
    assert parked[1] < last + 5
    take(sampler, 5)
    widget.refresh()
    assert widget.x_range() == pytest.approx(parked)
    # the CPU plots share the time axis
    (c0, c1), _ = widget.cpu_plot.getPlotItem().getViewBox().viewRange()
    assert (c0, c1) == pytest.approx(parked)
    widget.follow_action.trigger()  # back on: jumps to now
    assert widget.follow_now and widget.x_range()[1] == pytest.approx(last + 10)


def test_the_graphs_stay_bounded_when_the_history_wraps(widget):
    sampler = sampled(3, cpus=2, history=5)
    history = sampler.history
    widget.set_history(history, NAMES, 1.0)
    for _ in range(9):                  # refreshed after every sample, as in the app
        take(sampler, 1)
        widget.refresh()
        assert len(widget.data) == len(history) <= 5
        for c in range(2):
            assert curve_data(widget.cpu_curves[c]) == tuple(map(list, history.cpu_series(c)))
            assert widget.strip_item.blocks(c) == expected_blocks(history, c)
    assert widget.data.rebuilds == 0
    assert curve_data(widget.cpu_curves[0])[0] == [T0 + i for i in range(7, 12)]
    # the sampler overtook the view (more samples than kept between two refreshes)
    take(sampler, 7)
    widget.refresh()
    assert widget.data.rebuilds == 1
    assert curve_data(widget.cpu_curves[1]) == tuple(map(list, history.cpu_series(1)))
    assert widget.strip_item.blocks(0) == expected_blocks(history, 0)
    # samples 14..18 kept: the oldest has no interval start, so no block
    assert widget.strip_item.blocks(0) == [(T0 + i - 1, T0 + i, *who_at(i, 0))
                                           for i in range(15, 19) if who_at(i, 0)]
    assert "5 of 5 samples kept (4 s)" in widget.info_label.text()
    curves = list(widget.cpu_curves)
    history.clear()
    widget.refresh()
    assert widget.cpu_curves == curves and curve_data(curves[0]) == ([], [])
    assert widget.strip_item.blocks(0) == [] and widget.strip_item.blocks_drawn == 0
    assert widget.info_label.text() == "Sampling every 1 s · no samples yet"


def test_label_gives_the_sampling_interval_and_samples_kept(widget):
    sampler = sampled(20, cpus=4)
    widget.set_history(sampler.history, NAMES, 1.0)
    assert widget.info_label.text() == "Sampling every 1 s · 20 of 600 samples kept (19 s)"
    widget.set_history(sampler.history, NAMES)  # no nominal interval: the measured one
    assert widget.info_label.text() == (
        "Sampling every 1.00 s (measured) · 20 of 600 samples kept (19 s)")
    widget.set_history(History(maxlen=50), NAMES)
    assert widget.info_label.text() == "Sampling interval n/a · no samples yet"


# ---- end to end: figures computed by apply_deltas from raw counters -----------------------------

class CounterSource:
    """Raw counters, as /proc gives them; deltas applied like a real source."""

    def __init__(self):
        self.prev = None
        self.calls = 0

    def sample(self) -> Snapshot:
        i = self.calls
        self.calls += 1
        # thread 31 of process 30 runs 0.5 s a second on CPU 1; 41 of 40 0.1 s on CPU 0
        t31 = ThreadInfo(tid=31, pid=30, start_stamp=1, run_time_ns=i * 500_000_000, cpu=1,
                         create_time_us=0.0)
        t41 = ThreadInfo(tid=41, pid=40, start_stamp=1, run_time_ns=i * 100_000_000, cpu=0,
                         create_time_us=0.0)
        procs = [ProcessInfo(pid=30, start_stamp=1, name="busy", threads=(t31,)),
                 ProcessInfo(pid=40, start_stamp=1, name="light", threads=(t41,))]
        cpus = [CpuTimes(cpu=0, user_s=i * 0.1, kernel_s=0.0, idle_s=i * 0.9),
                CpuTimes(cpu=1, user_s=i * 0.25, kernel_s=i * 0.25, idle_s=i * 0.5)]
        snap = Snapshot(host="linux", source="test", wall_time=WALL0 + i, uptime_s=T0 + i,
                        monotonic=T0 + i, cpus=2, processes=procs, cpu_times=cpus)
        apply_deltas(self.prev, snap)
        self.prev = snap
        return snap


def test_graphs_from_real_deltas(widget, qtbot):
    sampler = Sampler(CounterSource(), 1.0, history=100)
    take(sampler, 6)
    widget.set_history(sampler.history, {30: "busy", 40: "light"}, 1.0)
    assert curve_data(widget.cpu_curves[1])[1] == pytest.approx([50.0] * 5)
    assert curve_data(widget.kernel_curves[1])[1] == pytest.approx([25.0] * 5)
    assert curve_data(widget.cpu_curves[0])[1] == pytest.approx([10.0] * 5)
    assert [b[2:] for b in widget.strip_item.blocks(1)] == [(30, 31)] * 5
    assert [b[2:] for b in widget.strip_item.blocks(0)] == [(40, 41)] * 5
    widget.set_selection((30, 1), (31, 1), "busy (30)")
    # 0.5 s of one of two CPUs each second: 25 % of the machine
    assert curve_data(widget.process_curve)[1] == pytest.approx([25.0] * 5)
    widget.zoom_to_fit()
    assert widget.describe(3, 1).splitlines()[:3] == [
        "Process busy (30)", "Thread 31",
        "CPU 1 · the thread used 25.0 % of all CPUs in the interval"]
