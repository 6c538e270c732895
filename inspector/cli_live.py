"""``koi live``: this machine's real processes and threads.

    koi live [--once] [--json] [--interval DUR] [--duration DUR] [--threads]
             [--source auto|procfs|ntquery|psutil]

* ``--once --json``: one snapshot as the formats.md section 6 document, then exit.
* ``--once``: one table of processes (``--threads``: with their threads), in tree order
  as Process Explorer shows them. With ``--interval`` the table is the second of two
  samples that far apart, so it has CPU %.
* no ``--once``: a sample every ``--interval`` (default 1s, at least 100ms) until
  ``--duration`` has passed or Ctrl-C: a table each time, or with ``--json`` one
  section 6 document per line (JSON Lines).

Sampling runs on core.live's background Sampler; each snapshot reaches the printer
(and, later, a session recorder) through the Sampler's per-snapshot callback.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time

from core.units import UnitError, format_duration, parse_duration

MIN_INTERVAL_NS = 100_000_000
DEFAULT_INTERVAL_NS = 1_000_000_000
# core.live.SOURCES, spelled out: `koi` builds every parser at start-up, and importing
# core.live there would load the simulated kernel (and numpy) for every command.
SOURCES = ("auto", "procfs", "ntquery", "psutil")


def _duration_at_least(minimum_ns: int, too_short: str):
    """An argparse type: a duration with a unit, at least ``minimum_ns``."""
    def parse(text: str) -> int:
        try:
            ns = parse_duration(text)
        except UnitError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if ns < minimum_ns:
            raise argparse.ArgumentTypeError(f"{text!r} {too_short}")
        return ns
    return parse


_interval = _duration_at_least(MIN_INTERVAL_NS, "is shorter than the shortest interval, 100ms")
_duration = _duration_at_least(1, "is not a positive duration")


def add_parser(commands) -> argparse.ArgumentParser:
    """Add ``live`` to `commands` (the subparsers object of ``koi``'s parser)."""
    live = commands.add_parser(
        "live", help="sample this machine's real processes and threads",
        description="Sample this machine's real processes and threads: Linux through "
                    "/proc, Windows through NtQuerySystemInformation, other systems "
                    "through psutil. States, wait reasons and priorities are shown on "
                    "the NT scale; docs/live.md says how each is mapped.",
    )
    live.add_argument("--once", action="store_true",
                      help="take one sample, print it and exit")
    live.add_argument("--json", action="store_true",
                      help="print JSON (formats.md section 6): one document with --once, "
                           "else one document per sample and line (JSON Lines)")
    live.add_argument("--interval", metavar="DUR", type=_interval,
                      help="time between samples, at least 100ms: a duration with a unit "
                           "('500ms', '2s') or a bare number of milliseconds; default 1s. "
                           "With --once: sample twice this far apart, to show CPU %%")
    live.add_argument("--duration", metavar="DUR", type=_duration,
                      help="stop after this long (default: run until interrupted)")
    live.add_argument("--threads", action="store_true",
                      help="in the table, list each process's threads under it")
    live.add_argument("--save", metavar="F.koi",
                      help="record every sample into a session file, written when the run "
                           "ends (--duration, Ctrl-C, or after the one --once sample)")
    live.add_argument("--source", choices=SOURCES, default="auto",
                      help="how to read the machine (default: the best one here)")
    return live


def run(args: argparse.Namespace) -> int:
    """Run ``koi live`` with parsed `args`; returns the exit status."""
    from inspector.cli import UsageError
    from core.live import LiveError, Sampler, open_source, raise_open_file_limit

    if args.once and args.duration is not None:
        raise UsageError("--duration does not apply to --once (it takes one sample)")
    if args.json and args.threads:
        raise UsageError("--threads is for the table; the JSON lists threads anyway")
    if args.save is not None and (args.save == "-" or not args.save):
        raise UsageError("--save needs a file name (a session is a database, not a stream)")
    raise_open_file_limit()
    try:
        source = open_source(args.source)
    except LiveError as exc:
        return _cannot_sample(exc)
    recording = LiveRecording(args.interval or DEFAULT_INTERVAL_NS) if args.save else None
    try:
        if args.once:
            return _saved(recording, args, _once(source, args, recording))
        interval_ns = args.interval or DEFAULT_INTERVAL_NS
        snapshots: queue.Queue = queue.Queue()
        sampler = Sampler(source, interval_ns / 1e9, history=2, callback=snapshots.put,
                          on_error=snapshots.put)
        wanted = None if args.duration is None else args.duration // interval_ns + 1
        printed = 0
        sampler.start()
        try:
            while wanted is None or printed < wanted:
                item = snapshots.get()
                if isinstance(item, BaseException):
                    if isinstance(item, LiveError):
                        return _cannot_sample(item)
                    raise item
                _emit(item, args)
                if recording is not None:
                    recording.add(item)
                printed += 1
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a run without --duration ends
        finally:
            sampler.stop()
        return _saved(recording, args, 0)
    except LiveError as exc:
        return _cannot_sample(exc)
    finally:
        source.close()


def _once(source, args: argparse.Namespace, recording=None) -> int:
    snap = source.sample()
    if args.interval is not None:
        time.sleep(args.interval / 1e9)
        snap = source.sample()
    _emit(snap, args)
    if recording is not None:
        recording.add(snap)
    return 0


class LiveRecording:
    """The samples of a `koi live` run as a session (source "live"): each snapshot's
    view state (the shape the app shows), every CPU's cumulative busy/idle time, and the
    processes and threads seen to come and go (the snapshot's `events`, sampled).
    `retention_ns` bounds what is kept (the app records for as long as it watches)."""

    def __init__(self, interval_ns: int, retention_ns: int | None = None) -> None:
        from core.live import ViewStateBuilder
        from core.session import Recorder

        self.views = ViewStateBuilder()
        self.recorder: Recorder | None = None
        self._recorder_cls = Recorder
        self.interval_ns = interval_ns
        self.retention_ns = retention_ns

    def add(self, snap) -> dict:
        """Record one snapshot, its events included; returns its view state."""
        if self.recorder is None:
            import platform

            host = f"{platform.node()} ({platform.system()} {platform.release()}, " \
                   f"{snap.cpus} CPUs, sampled with {snap.source})"
            self.recorder = self._recorder_cls(
                None, interval_ns=self.interval_ns, retention_ns=self.retention_ns,
                source="live", name=platform.node(),
                description=host, cpus=snap.cpus, extra={"host": snap.host,
                                                         "sampler": snap.source})
        time_us = round(snap.uptime_s * 1e6, 3)
        for event in snap.events or ():
            self.recorder.add_event(event)
        view = self.views.build(snap)
        self.recorder.add_state(time_us, view)
        busy = [(c.user_s + c.kernel_s + c.other_s) * 1e6 for c in snap.cpu_times]
        idle = [c.idle_s * 1e6 for c in snap.cpu_times]
        self.recorder.add_cpu_sample(time_us, busy, idle)
        return view


def _saved(recording, args: argparse.Namespace, status: int) -> int:
    """Write the recording (atomically) once the run is over."""
    if recording is None or status != 0:
        return status
    from core.session import SessionError

    if recording.recorder is None:
        print("koi: nothing was sampled, so no session was written", file=sys.stderr)
        return 1
    try:
        recording.recorder.save(args.save)
    except (SessionError, OSError) as exc:
        print(f"koi: cannot write {args.save}: {exc}", file=sys.stderr)
        return 2
    n = recording.recorder.samples
    print(f"koi: saved {n} sample{'' if n == 1 else 's'} to {args.save}", file=sys.stderr)
    return 0


def _cannot_sample(exc: BaseException) -> int:
    print(f"koi: cannot sample this machine: {' '.join(str(exc).split())}", file=sys.stderr)
    return 1


def _emit(snap, args: argparse.Namespace) -> None:
    from core.live import to_json_document

    if args.json:
        text = json.dumps(to_json_document(snap))
    else:
        text = format_table(snap, threads=args.threads)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ---- the table --------------------------------------------------------------------------

def cpu_time_text(seconds: float | None) -> str:
    """CPU time as Process Explorer writes it: H:MM:SS.mmm."""
    if seconds is None:
        return "-"
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h}:{m:02d}:{s:02d}.{ms:03d}"


def process_state(p) -> str:
    """One word for a process, from its threads: Running if one is, Suspended if every
    thread waits suspended (as Process Explorer decides), Terminated once exited."""
    if p.exited:
        return "Terminated"
    states = [t.state for t in p.threads]
    if not states or all(s is None for s in states):
        return "-"
    if "Running" in states:
        return "Running"
    if "Ready" in states:
        return "Ready"
    if all(t.state == "Waiting" and t.wait_reason == "Suspended" for t in p.threads):
        return "Suspended"
    return "Waiting"


def tree_order(processes) -> list[tuple[int, object]]:
    """(depth, process) in tree order: children under their parent, by pid. A process
    whose parent is not listed (or is itself) is a root."""
    by_pid = {p.pid: p for p in processes}
    children: dict[int, list] = {}
    roots = []
    for p in sorted(processes, key=lambda p: p.pid):
        if p.ppid is not None and p.ppid != p.pid and p.ppid in by_pid:
            children.setdefault(p.ppid, []).append(p)
        else:
            roots.append(p)
    out: list[tuple[int, object]] = []
    seen: set[int] = set()

    def walk(root) -> None:
        stack = [(0, root)]
        while stack:
            depth, p = stack.pop()
            if p.pid in seen:  # a parent cycle: never print a process twice
                continue
            seen.add(p.pid)
            out.append((depth, p))
            stack.extend((depth + 1, c) for c in reversed(children.get(p.pid, ())))

    for root in roots:
        walk(root)
    for p in sorted(processes, key=lambda p: p.pid):
        if p.pid not in seen:  # in a parent cycle (pids recycled mid-sample): no root
            walk(p)
    return out


def _pct(value: float | None, known: bool) -> str:
    if not known:
        return "-"
    return f"{value or 0.0:.1f}"


def _num(value) -> str:
    return "-" if value is None else str(value)


def format_table(snap, threads: bool = False) -> str:
    """The snapshot as a text table, processes in tree order."""
    from core.live.model import iso_utc

    known = snap.interval_s is not None
    pct_p = snap.process_cpu_percent or {}
    pct_t = snap.thread_cpu_percent or {}
    sw_t = snap.thread_switch_delta or {}
    lines = [f"{iso_utc(snap.wall_time)}  {snap.host} ({snap.source})  {snap.cpus} CPUs  "
             f"{len(snap.processes)} processes  {snap.thread_count()} threads"
             + (f"  interval {format_duration(round(snap.interval_s * 1000) * 1_000_000)}"
                if known else "")]
    if snap.cpu_usage:
        lines.append("  ".join(f"CPU{u.cpu} {u.busy_percent:5.1f}%" for u in snap.cpu_usage))
    skipped = {k: v for k, v in snap.skipped.items() if v}
    if skipped:
        lines.append("not sampled: " + ", ".join(f"{v} {k}" for k, v in skipped.items()))
    lines.append(f"{'PID':>7} {'PPID':>7} {'THR':>4} {'PRI':>3} {'CLASS':<12} {'STATE':<10} "
                 f"{'CPU%':>5} {'CPU TIME':>13}  NAME")
    for depth, p in tree_order(snap.processes):
        total = None if p.user_time_s is None or p.kernel_time_s is None \
            else p.user_time_s + p.kernel_time_s
        name = p.name if p.name is not None else "?"
        if not p.readable:
            name += " (access denied)"
        lines.append(
            f"{p.pid:>7} {_num(p.ppid):>7} {len(p.threads):>4} {_num(p.base_priority):>3} "
            f"{p.priority_class or '-':<12} {process_state(p):<10} "
            f"{_pct(pct_p.get(p.key), known):>5} {cpu_time_text(total):>13}  "
            f"{'  ' * depth}{name}")
        if threads:
            for t in p.threads:
                total_t = None if t.user_time_s is None or t.kernel_time_s is None \
                    else t.user_time_s + t.kernel_time_s
                state = t.state or "-"
                if t.state == "Waiting" and t.wait_reason:
                    state += f":{t.wait_reason}"
                where = t.native.get("wchan")
                delta = sw_t.get(t.key) if known else None
                lines.append(
                    f"{'':>7} {'tid':>7} {t.tid:<8} pri {_num(t.priority):>2} "
                    f"cpu {_num(t.cpu):>2}  {state:<24} {_pct(pct_t.get(t.key), known):>5} "
                    f"{cpu_time_text(total_t):>13}  switches {_num(t.context_switches)}"
                    + (f" (+{delta})" if delta else "")
                    + f"  {t.name or ''}" + (f"  [{where}]" if where else ""))
    return "\n".join(lines)
