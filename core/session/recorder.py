"""Recording a session: object states sampled over time, the events, CPU samples and
the machine's context-switch trace, kept compressed in memory until saved.

Sampling is *driven*: the recorder advances the machine itself, one sampling interval
at a time, and samples after each step::

    recorder = Recorder(machine)                 # samples now, then every clock tick
    recorder.run_until(2_000_000_000)            # instead of machine.run_until(2 s)
    recorder.save("run.koi")

A sample at time t is therefore exactly ``machine.state()`` after
``machine.run_until(t)``, every event due at t included; nothing is scheduled inside the
simulation, and reading the state only splits CPU-time accounting segments, so the
simulation runs exactly as it would unrecorded (tests/test_session.py compares traces).

Sources without a Machine (the live sampler, anything later) feed documents instead:
``Recorder(None, source="live", ...)``, then ``add_state(time_us, doc)``,
``add_event(event)`` and ``add_cpu_sample(time_us, busy_us, idle_us)``.

Memory stays bounded: each sample is stored as a compressed keyframe or delta the moment
it is taken, events in compressed chunks, and history older than `retention_ns` or
beyond `max_bytes` is dropped a keyframe group at a time (the machine's own trace is
the machine's; rows before the retained window are left out of saves).
"""

from __future__ import annotations

import math
import os
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone

from core import __version__
from core.kernel.constants import CYCLES_PER_NS, NS_PER_US
from core.layouts import DEFAULT_ARCH, DEFAULT_BUILD

from . import codec
from .errors import SessionError

DEFAULT_KEYFRAME_EVERY = 64  # a slider move decodes at most one keyframe and 63 deltas
DEFAULT_MAX_BYTES = 256 << 20  # compressed history kept in memory
TRACE_CHUNK_ROWS = 1 << 16  # ~0.3-0.5 MB compressed: one chunk decodes in a few ms
EVENT_CHUNK_EVENTS = 4096

CYCLES_PER_US = CYCLES_PER_NS * NS_PER_US


class Recorder:
    """Records a Machine (or documents fed to it) for saving as a session file.

    machine: the Machine to record, or None for a source that feeds documents.
    interval_ns: simulated time between samples; default the machine's clock tick.
    retention_ns: keep at least this much history (None: no time limit).
    max_bytes: keep at most about this much compressed history in memory.
    keyframe_every: a complete document every N samples, deltas in between.
    source, build, arch, name, description, cpus, extra: the session's metadata
        (formats.md section 5; docs/sessions.md).
    past_events: events the machine emitted before the recorder was attached.
    trace_from: first row of the machine's trace to keep (default: all of it).
    sample_now: take the first sample at once (with a machine).
    """

    def __init__(self, machine=None, *, interval_ns: int | None = None,
                 retention_ns: int | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                 keyframe_every: int = DEFAULT_KEYFRAME_EVERY, source: str | None = None,
                 build: str = DEFAULT_BUILD, arch: str = DEFAULT_ARCH, name: str = "",
                 description: str = "", cpus: int | None = None, extra: dict | None = None,
                 past_events=(), trace_from: int = 0, sample_now: bool = True) -> None:
        if interval_ns is None:
            interval_ns = machine.clock_interval_ns if machine is not None else 0
        if type(interval_ns) is not int or interval_ns < 0 or (machine is not None and interval_ns == 0):
            raise SessionError(f"the sampling interval must be a positive integer of ns, not {interval_ns!r}")
        if retention_ns is not None and retention_ns <= 0:
            raise SessionError(f"retention must be positive, not {retention_ns!r}")
        if max_bytes <= 0:
            raise SessionError(f"max_bytes must be positive, not {max_bytes!r}")
        if keyframe_every < 1:
            raise SessionError(f"keyframe_every must be at least 1, not {keyframe_every!r}")
        self.machine = machine
        self.interval_ns = interval_ns
        self.retention_ns = retention_ns
        self.max_bytes = max_bytes
        self.keyframe_every = keyframe_every
        self.meta = {
            "source": source or ("simulation" if machine is not None else "live"),
            "build": build, "arch": arch, "name": name, "description": description,
            "cpus": cpus if cpus is not None else (machine.ncpu if machine is not None else 0),
            "extra": dict(extra or {}),
        }
        # state samples: row dicts ready for the state_sample table
        self._samples: deque[dict] = deque()
        self._keyframes: deque[tuple[int, float]] = deque()  # (seq, time_us)
        self._seq = 0
        self._prev: codec.FlatState | None = None
        self._last_time_us = -math.inf
        self._bytes = 0
        self._cutoff_us = -math.inf  # history before this has been dropped
        # object lifetimes
        self._live: dict[tuple, dict] = {}
        self._ended: deque[dict] = deque()
        # events: sealed chunks, and the lines of the chunk being filled
        self._event_chunks: deque[dict] = deque()
        self._event_lines: list[str] = []
        self._event_times: list[float] = []
        self._event_types: Counter = Counter()
        # CPU samples
        self._cpu: deque[dict] = deque()
        self._cpu_seq = 0
        # trace: complete chunks already encoded (the last partial one is encoded per save)
        self._trace_chunks: deque[dict] = deque()
        self._trace_next_row = trace_from
        for event in past_events:
            self.add_event(event)
        if machine is not None:
            machine.subscribe(self.add_event)
            self._next_ns = self._grid_after(self._machine_ns())
            if sample_now:
                self.sample()

    # ---- driving a machine -----------------------------------------------------------------
    def _machine_ns(self) -> int:
        return self.machine.now // CYCLES_PER_NS

    def _grid_after(self, ns: int) -> int:
        """The first multiple of the interval strictly after `ns`."""
        return (ns // self.interval_ns + 1) * self.interval_ns

    def run_until(self, time_ns: int, advance=None, sample_end: bool = False) -> None:
        """Run the machine to `time_ns`, sampling at every multiple of the interval on the
        way. `advance(ns)` runs the machine (default ``machine.run_until``; the scenario
        runner passes its own, which reports livelocks). With `sample_end`, also sample at
        `time_ns` itself if that is not a sampling instant."""
        if self.machine is None:
            raise SessionError("this recorder has no machine to run; feed it with add_state")
        advance = advance or self.machine.run_until
        time_ns = int(time_ns)
        if self._next_ns <= self._machine_ns():  # the machine was run past us directly
            self._next_ns = self._grid_after(self._machine_ns())
        while self._next_ns <= time_ns:
            advance(self._next_ns)
            self.sample()
            self._next_ns += self.interval_ns
        advance(time_ns)
        if sample_end and self.machine.time_us != self._last_time_us:
            self.sample()

    def sample(self) -> None:
        """Record the machine's state (and per-CPU times) as it is now."""
        m = self.machine
        doc = m.state()
        self.add_state(doc["time_us"], doc)
        times = m.cpu_times()
        self.add_cpu_sample(doc["time_us"], [b / CYCLES_PER_US for b, _ in times],
                            [i / CYCLES_PER_US for _, i in times])

    def detach(self) -> None:
        """Stop receiving the machine's events (what was recorded stays)."""
        if self.machine is not None:
            try:
                self.machine.unsubscribe(self.add_event)
            except ValueError:
                pass  # already detached

    # ---- feeding ---------------------------------------------------------------------------
    def add_state(self, time_us: float, doc: dict) -> None:
        """Record state document `doc` (the shape of ``Machine.state()``) at `time_us`.
        The recorder keeps `doc` until the next sample: do not modify it afterwards."""
        if type(time_us) not in (int, float) or not math.isfinite(time_us):
            raise SessionError(f"a sample time is a finite number of µs, not {time_us!r}")
        if time_us < self._last_time_us:
            raise SessionError(f"state at {time_us} µs is earlier than the previous sample "
                               f"({self._last_time_us} µs); samples are added in time order")
        flat = codec.flatten(doc, self._prev)
        seq = self._seq
        if self._prev is None or seq - self._keyframes[-1][0] >= self.keyframe_every:
            blob = codec.compress_json(doc)
            self._keyframes.append((seq, time_us))
        else:
            blob = codec.compress_json(codec.diff(self._prev, flat))
        self._samples.append({"seq": seq, "time_us": time_us,
                              "keyframe": self._keyframes[-1][0], "data": blob})
        self._bytes += len(blob)
        self._seq = seq + 1
        self._track_lives(flat, time_us)
        self._prev = flat
        self._last_time_us = time_us
        self._prune()

    def add_event(self, event: dict) -> None:
        """Record one event (formats.md section 3: a dict with `time_us` and `type`)."""
        self._event_lines.append(codec.encode_event(event))
        self._event_times.append(event["time_us"])
        self._event_types[event["type"]] += 1
        if len(self._event_lines) >= EVENT_CHUNK_EVENTS:
            chunk = self._event_chunk()
            self._event_chunks.append(chunk)
            self._bytes += len(chunk["data"])
            self._event_lines, self._event_times = [], []
            self._event_types = Counter()

    def add_cpu_sample(self, time_us: float, busy_us, idle_us) -> None:
        """Record every CPU's cumulative busy and idle time (µs) at `time_us`."""
        if len(busy_us) != len(idle_us):
            raise SessionError("a CPU sample needs as many idle times as busy times")
        row = {"seq": self._cpu_seq, "time_us": time_us,
               "busy_us": codec.encode_floats(busy_us), "idle_us": codec.encode_floats(idle_us)}
        self._cpu_seq += 1
        self._cpu.append(row)
        self._bytes += len(row["busy_us"]) + len(row["idle_us"])

    # ---- object lifetimes ------------------------------------------------------------------
    def _track_lives(self, flat: codec.FlatState, time_us: float) -> None:
        # An object is the same one while its key and its creation time stay the same (a
        # pid reused by a new process starts a new lifetime). Only the objects that came,
        # went or changed are visited: a process whose fields and threads are the previous
        # sample's very objects (codec.flatten) has had nothing come or go.
        prev = self._prev
        old_procs = prev.procs if prev is not None else {}
        old_threads = prev.threads if prev is not None else {}
        old_jobs = prev.jobs if prev is not None else {}
        ended: list[tuple] = []
        visit = []  # (key, fields) of objects that are new or may have been replaced
        for pid, fields in flat.procs.items():
            threads = flat.threads.get(pid)
            before = old_threads.get(pid)
            if old_procs.get(pid) is fields and before is threads:
                continue
            visit.append((("p", pid), fields))
            before = before or {}
            for tid, t in (threads or {}).items():
                if before.get(tid) is not t:
                    visit.append((("t", pid, tid), t))
            ended.extend(("t", pid, tid) for tid in before if not threads or tid not in threads)
        for pid in old_procs:
            if pid not in flat.procs:
                ended.append(("p", pid))
                ended.extend(("t", pid, tid) for tid in old_threads.get(pid, ()))
        visit.extend((("j", name), f) for name, f in flat.jobs.items())
        ended.extend(("j", name) for name in old_jobs if name not in flat.jobs)

        live = self._live
        for key, fields in visit:
            life = live.get(key)
            if life is not None and codec.differs(life["_created"], fields.get("create_time_us")):
                ended.append(key)
        prev_time = self._last_time_us
        for key in ended:
            life = live.pop(key, None)
            if life is not None:
                life["last_us"], life["gone_us"] = prev_time, time_us
                self._ended.append(life)
        for key, fields in visit:
            if key in live:
                continue
            name = fields.get("name")
            kind = key[0]
            pid = key[1] if kind != "j" and type(key[1]) is int else None
            live[key] = {
                "kind": {"p": "process", "t": "thread", "j": "job"}[kind], "pid": pid,
                "tid": key[2] if kind == "t" and type(key[2]) is int else None,
                "job": str(key[1]) if kind == "j" else None,
                "name": name if isinstance(name, str) else None,
                "first_us": time_us, "last_us": time_us, "gone_us": None,
                "_created": fields.get("create_time_us")}

    # ---- retention -------------------------------------------------------------------------
    def _prune(self) -> None:
        """Drop the oldest keyframe group while history is longer than the retention or
        larger than max_bytes (never the group being written)."""
        while len(self._keyframes) > 1:
            next_kf_time = self._keyframes[1][1]
            too_long = (self.retention_ns is not None and
                        (self._last_time_us - next_kf_time) * NS_PER_US >= self.retention_ns)
            if not (too_long or self._bytes > self.max_bytes):
                return
            next_kf = self._keyframes[1][0]
            self._keyframes.popleft()
            while self._samples[0]["seq"] < next_kf:
                self._bytes -= len(self._samples.popleft()["data"])
            self._cut(next_kf_time)

    def _cut(self, cutoff_us: float) -> None:
        self._cutoff_us = cutoff_us
        while self._cpu and self._cpu[0]["time_us"] < cutoff_us:
            row = self._cpu.popleft()
            self._bytes -= len(row["busy_us"]) + len(row["idle_us"])
        while self._event_chunks and self._event_chunks[0]["t_last_us"] < cutoff_us:
            self._bytes -= len(self._event_chunks.popleft()["data"])
        cutoff_cycles = self._cutoff_cycles()
        while self._trace_chunks and self._trace_chunks[0]["t_last"] < cutoff_cycles:
            self._bytes -= len(self._trace_chunks.popleft()["data"])
        while self._ended and self._ended[0]["last_us"] < cutoff_us:
            self._ended.popleft()
        for life in (*self._ended, *self._live.values()):
            if life["first_us"] < cutoff_us:
                life["first_us"] = cutoff_us

    def _cutoff_cycles(self) -> float:
        return -math.inf if self._cutoff_us == -math.inf else self._cutoff_us * CYCLES_PER_US

    # ---- what a save writes ----------------------------------------------------------------
    @property
    def samples(self) -> int:
        """State samples held."""
        return len(self._samples)

    @property
    def nbytes(self) -> int:
        """Compressed bytes held (samples, events, CPU samples, encoded trace chunks)."""
        return self._bytes

    def _event_chunk(self) -> dict:
        times = self._event_times
        return {"count": len(times), "t_first_us": min(times), "t_last_us": max(times),
                "type_counts": codec.to_json(dict(self._event_types)),
                "data": codec.encode_event_chunk(self._event_lines)}

    def _trace(self) -> list[dict]:
        if self.machine is None:
            return []
        cols = self.machine.trace.columns()
        n = len(cols["time"])
        cutoff = self._cutoff_cycles()
        chunks = self._trace_chunks
        start = self._trace_next_row
        while n - start >= TRACE_CHUNK_ROWS:  # complete chunks: encoded once, kept
            chunk = self._encode_trace(cols, start, start + TRACE_CHUNK_ROWS)
            if chunk["t_last"] >= cutoff:
                chunks.append(chunk)
                self._bytes += len(chunk["data"])
            start += TRACE_CHUNK_ROWS
        self._trace_next_row = start
        rows = [c for c in chunks if c["t_last"] >= cutoff]
        if n > start:
            rows.append(self._encode_trace(cols, start, n))
        return rows

    @staticmethod
    def _encode_trace(cols: dict, lo: int, hi: int) -> dict:
        t_first, t_last, layout, blob = codec.encode_trace_chunk(cols, lo, hi)
        return {"first_row": lo, "count": hi - lo, "t_first": t_first, "t_last": t_last,
                "layout": layout, "data": blob}

    def content(self):
        """Everything recorded so far, encoded for the writer (store.SessionContent)."""
        from .store import SessionContent

        meta = dict(self.meta)
        meta["extra"] = codec.to_json(meta["extra"])
        meta.update(app_version=__version__, interval_us=self.interval_ns / NS_PER_US,
                    created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        events = list(self._event_chunks)
        if self._event_lines:
            events.append(self._event_chunk())
        objects = [{k: v for k, v in life.items() if k != "_created"} for life in self._ended]
        objects += [{k: v for k, v in life.items() if k != "_created"} | {"last_us": self._last_time_us}
                    for life in self._live.values()]
        objects.sort(key=lambda o: (o["first_us"], o["kind"] != "process",
                                    o["pid"] or 0, o["tid"] or 0))
        for i, o in enumerate(objects):
            o["id"] = i
        trace = self._trace()
        for i, c in enumerate(trace):
            c["id"] = i
        for i, c in enumerate(events):
            c["id"] = i
        return SessionContent(meta=meta, samples=list(self._samples), objects=objects,
                              trace_chunks=trace, event_chunks=events,
                              cpu_samples=list(self._cpu))

    def save(self, path: str | os.PathLike, description: str | None = None) -> None:
        """Write what was recorded as a session file, atomically (store.save_content)."""
        from .store import save_content

        content = self.content()
        if description is not None:
            content.meta["description"] = description
        save_content(path, content)

    def to_session(self):
        """What was recorded so far, opened as a Session (reader.Session) in memory: the
        same reading API as a saved file, without touching the disk."""
        import sqlite3

        from .reader import Session
        from .store import write_content

        conn = sqlite3.connect(":memory:", check_same_thread=False)
        write_content(conn, self.content())
        return Session._from_connection(conn, "<recording>")


# ---- scenarios (koi run --save) ------------------------------------------------------------

@dataclass
class RecordedRun:
    """A scenario run with a recorder attached from time 0: `result` is what
    ``run_scenario`` returns (for the other ``koi run`` outputs), `recorder` the session."""
    result: object  # core.runner.RunResult
    recorder: Recorder

    def save(self, path: str | os.PathLike) -> None:
        self.recorder.save(path)


def _build_of(text: str) -> tuple[str, str]:
    """The full build id and arch a scenario's ``[system] build`` names."""
    from core.layouts import LayoutError, catalogue

    try:
        b = catalogue().find(text, None)
    except LayoutError:
        return text, DEFAULT_ARCH
    return b.id, b.arch


def record_scenario(scenario, until_ns: int | None = None, seed: int | None = None, *,
                    interval_ns: int | None = None, retention_ns: int | None = None,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> RecordedRun:
    """Run `scenario` as ``run_scenario`` does, recording it: a sample at time 0 (after
    the objects due then exist), one every `interval_ns` (default one clock tick) and
    one at the end. Raises ScenarioError as ``run_scenario`` does."""
    from core.runner import RunResult, build_machine

    run = build_machine(scenario, seed)
    until = scenario.until_ns if until_ns is None else until_ns
    build, arch = _build_of(scenario.system.build)
    recorder = Recorder(
        run.machine, interval_ns=interval_ns, retention_ns=retention_ns, max_bytes=max_bytes,
        source="simulation", build=build, arch=arch,
        name=os.path.basename(scenario.filename), description=scenario.source,
        extra={"seed": scenario.system.seed if seed is None else seed, "until_us": until / NS_PER_US},
        past_events=list(run.events))
    recorder.run_until(until, advance=run.run_until, sample_end=True)
    recorder.detach()
    return RecordedRun(RunResult(run, until), recorder)


def save_run(run, path: str | os.PathLike, scenario_text: str | None = None) -> None:
    """Save a scenario run as a session file (``koi run --save``). `run` is what
    `record_scenario` returned (states over the whole run), or a plain RunResult (its
    final state only, with the whole trace and every event). `scenario_text` replaces
    the scenario text kept in the file (default: the scenario's own)."""
    if isinstance(run, RecordedRun):
        run.recorder.save(path, scenario_text)
        return
    scenario = run.run.scenario
    build, arch = _build_of(scenario.system.build)
    recorder = Recorder(run.machine, source="simulation", build=build, arch=arch,
                        name=os.path.basename(scenario.filename), description=scenario.source,
                        extra={"seed": run.machine.seed, "until_us": run.until_ns / NS_PER_US},
                        past_events=run.events)
    recorder.detach()
    recorder.save(path, scenario_text)
