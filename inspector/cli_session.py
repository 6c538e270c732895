"""``koi session``: what a saved session (``.koi``) holds.

    koi session info F.koi [--json]

The lead's inspector/cli.py calls `add_parser` while building its sub-commands and
`run` for ``koi session``. A file that is not a session, is damaged, comes from a newer
KOI or carries code of its own is refused as bad input (UsageError: exit 2, one line).
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(commands) -> None:
    """Add ``session`` to `commands` (the ``koi`` parser's add_subparsers object)."""
    session = commands.add_parser(
        "session", help="what a saved session (.koi) holds",
        description="Inspect a saved session file (.koi): what a recording of a simulation "
                    "or of the live machine holds.")
    sub = session.add_subparsers(dest="session_command", metavar="SUBCOMMAND", required=True)
    info = sub.add_parser(
        "info", help="print the source, build, time span and counts of a session",
        description="Print what a session file holds: its source (simulation or live), the "
                    "Windows build and architecture whose layouts it uses, the time span it "
                    "covers, and how many processes, threads, context switches and events "
                    "it recorded. The file is only read, never modified.")
    info.add_argument("file", metavar="F.koi", help="the session file")
    info.add_argument("--json", action="store_true",
                      help="print one JSON object (every field, the scenario text included)")


def run(args: argparse.Namespace) -> int:
    from core.session import SessionError, open_session
    from inspector.cli import UsageError

    try:
        with open_session(args.file) as session:
            info = session.info()
    except SessionError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        text = json.dumps(info.as_dict(), indent=2)
    else:
        text = format_info(info)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return 0


def _duration(us: float | None) -> str:
    from core.units import format_duration

    if us is None:
        return "-"
    ns = round(us * 1000)
    return format_duration(ns) if ns >= 0 else "-" + format_duration(-ns)


def _span(start_us: float | None, end_us: float | None) -> str:
    if start_us is None:
        return "nothing recorded"
    return f"{_duration(start_us)} to {_duration(end_us)} ({_duration(end_us - start_us)})"


def format_info(info) -> str:
    """The human-readable `koi session info` text."""
    plural = "" if info.cpus == 1 else "s"
    schema = f"session schema {info.schema_version}"
    if info.schema_version != _current_version():
        schema += ", read through an upgrade"
    size = f"{info.file_bytes:,} bytes, " if info.file_bytes is not None else ""
    states = f"{info.samples:,} state{'' if info.samples == 1 else 's'}"
    if info.interval_us:
        states += f", one every {_duration(info.interval_us)}"
    rows = [
        ("file", f"{info.path} ({size}{schema})"),
        ("source", f"{info.source}: {info.name}" if info.name else info.source),
        ("build", f"{info.build} {info.arch}, {info.cpus} CPU{plural}"),
        ("recorded", f"by KOI {info.app_version}, {info.created}"),
        ("time span", f"{_span(info.start_us, info.end_us)}: {states}"),
        ("processes", f"{info.processes:,}"),
        ("threads", f"{info.threads:,}"),
    ]
    if info.jobs:
        rows.append(("jobs", f"{info.jobs:,}"))
    switches = f"{info.switches:,}"
    if info.switches:
        switches += f", {_duration(info.trace_start_us)} to {_duration(info.trace_end_us)}"
    rows.append(("switches", switches))
    events = f"{info.events:,}"
    if info.event_types:
        events += " (" + ", ".join(f"{t} {n:,}" for t, n in info.event_types.items()) + ")"
    rows.append(("events", events))
    rows.append(("cpu samples", f"{info.cpu_samples:,}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _current_version() -> int:
    from core.session import SCHEMA_VERSION

    return SCHEMA_VERSION
