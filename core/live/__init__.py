"""KOI on the machine it runs on: the host's real processes and threads.

    from core.live import open_source, Sampler, to_json_document, to_view_state

    source = open_source()             # /proc on Linux, NtQuerySystemInformation on
    snap = source.sample()             # Windows, psutil elsewhere
    to_json_document(snap)             # formats.md section 6
    to_view_state(snap)                # the shape of Machine.state()

    sampler = Sampler(source, interval_s=1.0, callback=on_snapshot)  # background thread
    sampler.start(); ...; sampler.stop()

Each source's `sample()` returns a Snapshot and fills in its per-interval figures (CPU
%, per-CPU utilisation, the sampled "who ran" strip) against the source's previous
sample. docs/live.md describes what is mapped to what, and what has no equivalent.
"""

from __future__ import annotations

import os
import sys

from .model import (
    CpuTimes,
    CpuUsage,
    JobInfo,
    Key,
    LiveError,
    ProcessInfo,
    Snapshot,
    ThreadInfo,
    ViewStateBuilder,
    apply_deltas,
    lifecycle_events,
    nt_priority,
    nt_priority_class,
    process_view,
    thread_view,
    to_json_document,
    to_view_state,
)
from .sampler import DEFAULT_INTERVAL_S, MIN_INTERVAL_S, History, HistoryPoint, Sampler

SOURCES = ("auto", "procfs", "ntquery", "psutil")


def open_source(kind: str = "auto"):
    """A sampler source for this host: "procfs" (Linux /proc), "ntquery" (Windows
    NtQuerySystemInformation), "psutil" (any OS psutil supports), or "auto" for the
    best one here. Raises LiveError when the host cannot be sampled that way."""
    if kind not in SOURCES:
        raise LiveError(f"unknown live source {kind!r} (use {', '.join(SOURCES)})")
    if kind == "auto":
        if sys.platform.startswith("linux") and os.path.isfile("/proc/stat"):
            kind = "procfs"
        elif sys.platform == "win32":
            kind = "ntquery"
        else:
            kind = "psutil"
    if kind == "procfs":
        from .linux import LinuxSource
        return LinuxSource()
    if kind == "ntquery":
        from .windows import WindowsSource
        return WindowsSource()
    try:
        from .generic import PsutilSource
    except ImportError as exc:
        raise LiveError(f"psutil is needed to sample this host: {exc}") from None
    return PsutilSource()


def raise_open_file_limit(wanted: int = 1 << 16) -> int:
    """On Linux, let the sampler keep a /proc file open per thread (see linux.py);
    elsewhere a no-op returning 0."""
    if not sys.platform.startswith("linux"):
        return 0
    from .linux import raise_open_file_limit as _raise
    return _raise(wanted)


__all__ = [
    "CpuTimes", "CpuUsage", "DEFAULT_INTERVAL_S", "History", "HistoryPoint", "JobInfo", "Key",
    "LiveError", "MIN_INTERVAL_S", "ProcessInfo", "SOURCES", "Sampler", "Snapshot",
    "ThreadInfo", "ViewStateBuilder", "apply_deltas", "lifecycle_events", "nt_priority",
    "nt_priority_class", "open_source", "process_view", "raise_open_file_limit", "thread_view",
    "to_json_document", "to_view_state",
]
