"""``koi``: KOI without a window.

    koi run SCENARIO.toml [--until DUR] [--seed N] [--cswitch-csv F] [--events-jsonl F]
            [--state-json F]
    koi dt TYPE [--build B] [--arch x64|x86] [-r[N]]
    koi layouts [--json | --markdown]
    koi gui [FILE]
    koi --version

The contract is /work/shared/spec/formats.md sections 1, 3 and 4 and docs/cli.md. Exit
status: 0 on success; 2 for bad usage or bad input, with one line on stderr; 1 for an
internal error, also one line. No traceback ever reaches the user.

Only the standard library and ``core`` are imported at start-up; Qt is loaded by
``koi gui`` alone, so ``koi dt`` stays quick.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence

from core import __version__
from core.layouts import DEFAULT_ARCH, DEFAULT_BUILD, Build, LayoutError, catalogue

PROG = "koi"
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2

# `-r` with no digit: expand every level, as WinDbg's `dt -r` does. Structures only
# nest so deep (pointers are never followed), so any depth past that is "all".
ALL_LEVELS = 1000
_RECURSION = re.compile(r"-r(?P<depth>\d*)")


class UsageError(Exception):
    """Bad usage or bad input: exit status 2, the message on one line."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line and exit 2 through `main`."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _depth(text: str) -> int:
    if text == "":
        return ALL_LEVELS
    if len(text) == 1 and text in "123456789":
        return int(text)
    raise argparse.ArgumentTypeError(f"the depth is one digit from 1 to 9, as in WinDbg (got -r{text})")


def _until(text: str) -> int:
    from core.units import UnitError, parse_duration

    try:
        return parse_duration(text)
    except UnitError as exc:
        raise argparse.ArgumentTypeError(f"--until: {exc}") from None


def _seed(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed: {text!r} is not an integer") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="KOI, the Kernel Object Inspector, without a window.",
        epilog="Exit status: 0 success, 2 bad usage or input, 1 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run", help="run a scenario headless and write its outputs",
        description="Run a scenario (.toml) on the simulated machine without a window and "
                    "write the outputs asked for; '-' writes one to stdout. Files are "
                    "replaced atomically: a failed run never leaves a half-written file.",
    )
    run.add_argument("scenario", metavar="SCENARIO.toml", help="the scenario file")
    run.add_argument("--until", metavar="DUR", type=_until,
                     help="how long to run (simulated): a duration with a unit, ns, us, ms or s "
                          "('250ms', '5s'), or a bare number of milliseconds; default the "
                          "scenario's [system] until, else 10s")
    run.add_argument("--seed", metavar="N", type=_seed,
                     help="random seed; default the scenario's [system] seed")
    run.add_argument("--cswitch-csv", metavar="F",
                     help="write every context switch as CSV (one row per switch)")
    run.add_argument("--events-jsonl", metavar="F",
                     help="write the events (process/thread creation and exit, priority "
                          "changes, failed calls) as JSON Lines")
    run.add_argument("--state-json", metavar="F",
                     help="write the final state of every process and thread as JSON")
    run.add_argument("--save", metavar="F.koi",
                     help="record the run as a session file: the state of every process and "
                          "thread at every clock tick, the context switches and the events "
                          "('koi session info F.koi' summarises it)")

    dt = commands.add_parser(
        "dt", help="print a structure layout as WinDbg's dt nt!TYPE does",
        description="Print a structure layout exactly as WinDbg's 'dt nt!TYPE' prints it "
                    "on the chosen Windows build.",
    )
    dt.add_argument("type", metavar="TYPE",
                    help="structure name, with or without nt!, any case (_EPROCESS, nt!_kthread)")
    dt.add_argument("--build", metavar="B",
                    help=f"Windows build: full version ({DEFAULT_BUILD}), the part after 10.0. "
                         "(19041.3570), a build number alone (19041: its newest shipped revision) "
                         f"or a kernel PDB GUID; default {DEFAULT_BUILD} (Windows 10 22H2). "
                         "'koi layouts' lists them")
    dt.add_argument("--arch", choices=("x64", "x86"),
                    help="architecture; default x64 where the build has it, else x86")
    dt.add_argument("-r", dest="depth", metavar="N", type=_depth, default=0,
                    help="-r[N]: expand embedded structures N levels (one digit, 1-9, no space "
                         "after -r); -r alone expands every level, as WinDbg's dt -r")

    layouts = commands.add_parser(
        "layouts", help="list the shipped Windows builds",
        description="List the shipped Windows builds: id, architecture, Windows name, "
                    "source of the layout data and how exact its bit positions are.",
    )
    style = layouts.add_mutually_exclusive_group()
    style.add_argument("--json", action="store_true", help="print JSON, one object per build")
    style.add_argument("--markdown", action="store_true",
                       help="print a Markdown table naming each source's repository, path, "
                            "commit and licence (the table in resources/layouts/SOURCES.md)")

    from inspector import cli_live, cli_session

    cli_live.add_parser(commands)
    cli_session.add_parser(commands)

    gui = commands.add_parser(
        "gui", help="open the desktop app (same as koi-inspector)",
        description="Open the desktop app, as koi-inspector does.",
    )
    gui.add_argument("file", metavar="FILE", nargs="?",
                     help="a file for the app to open ('koi-inspector --help' says which kinds)")
    return parser


def _prepare(argv: list[str]) -> list[str]:
    """Let dt take WinDbg's ``-r`` / ``-rN`` (argparse alone would read a bare ``-r``
    followed by TYPE as ``-r TYPE``)."""
    command_at = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if command_at is None or argv[command_at] != "dt":
        return argv
    out = argv[:command_at + 1]
    for i, arg in enumerate(argv[command_at + 1:], start=command_at + 1):
        if arg == "--":
            out += argv[i:]
            break
        m = _RECURSION.fullmatch(arg)
        out.append(f"-r={m['depth']}" if m else arg)
    return out


# ---- commands ----------------------------------------------------------------------------

def _cmd_run(args: argparse.Namespace) -> int:
    from core.runner import run_scenario
    from core.scenario import ScenarioError, load_scenario

    if args.save == "-":
        raise UsageError("--save needs a file name: a session is an SQLite file, not a stream")
    try:
        scenario = load_scenario(args.scenario)
        if args.save is not None:
            from core.session import record_scenario

            recorded = record_scenario(scenario, args.until, args.seed)
            result = recorded.result
        else:
            result = run_scenario(scenario, args.until, args.seed)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    # Every output is rendered before any is written, so a failure writes nothing.
    outputs = [(path, render) for path, render in (
        (args.cswitch_csv, result.cswitch_csv), (args.events_jsonl, result.events_jsonl),
        (args.state_json, result.state_json)) if path is not None]
    texts = [(path, render()) for path, render in outputs]
    for path, text in texts:
        if path == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            write_atomically(path, text)
    if args.save is not None:
        from core.session import SessionError, save_run

        try:
            save_run(recorded, args.save)
        except SessionError as exc:
            raise UsageError(str(exc)) from None
    return EXIT_OK


def write_atomically(path: str, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory and
    os.replace, so readers see the old file or the whole new one, never a part."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                                   suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file 0600; give it the mode a plain open() would have
        try:
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def _cmd_dt(args: argparse.Namespace) -> int:
    from core.dt import format_dt

    build = catalogue().find(args.build, args.arch)
    _emit(format_dt(build, args.type, depth=args.depth))
    return EXIT_OK


def split_source(source: str) -> tuple[str, str, str]:
    """``owner/repo/path@commit`` -> (``owner/repo``, ``path``, ``commit``)."""
    location, _, commit = source.rpartition("@") if "@" in source else (source, "", "")
    owner, _, rest = location.partition("/")
    repo, _, path = rest.partition("/")
    return f"{owner}/{repo}", path, commit


def _short_licence(licence: str) -> str:
    return licence.split(" (", 1)[0]


def _is_default(b: Build) -> bool:
    return (b.id, b.arch) == (DEFAULT_BUILD, DEFAULT_ARCH)


def layouts_table(builds: Sequence[Build]) -> str:
    header = ("BUILD", "ARCH", "WINDOWS", "SOURCE", "BIT POSITIONS")
    rows = [header] + [(b.id, b.arch, b.name, split_source(b.source)[0], b.bit_positions)
                       for b in builds]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1]
                     for r in rows)


def layouts_json(builds: Sequence[Build]) -> str:
    return json.dumps([
        {"id": b.id, "arch": b.arch, "name": b.name, "source": b.source,
         "source_format": b.source_format, "licence": b.licence,
         "bit_positions": b.bit_positions, "pdb_guid": b.pdb_guid, "pdb_age": b.pdb_age,
         "structs": len(b.struct_names), "default": _is_default(b), "notes": b.notes}
        for b in builds
    ], indent=2)


def layouts_markdown(builds: Sequence[Build]) -> str:
    lines = ["| build | arch | Windows | repository | path | commit | licence | bit positions |",
             "|---|---|---|---|---|---|---|---|"]
    for b in builds:
        repo, path, commit = split_source(b.source)
        lines.append(f"| {b.id} | {b.arch} | {b.name} | {repo} | `{path}` | `{commit}` | "
                     f"{_short_licence(b.licence)} | {b.bit_positions} |")
    return "\n".join(lines)


def _cmd_layouts(args: argparse.Namespace) -> int:
    builds = catalogue().builds
    if args.json:
        _emit(layouts_json(builds))
    elif args.markdown:
        _emit(layouts_markdown(builds))
    else:
        _emit(layouts_table(builds))
    return EXIT_OK


def _cmd_gui(args: argparse.Namespace) -> int:
    try:
        from inspector import app
    except ImportError as exc:  # PySide6 or a system library it needs is missing
        raise _GuiUnavailable(str(exc)) from None
    status = app.main([args.file] if args.file else [])
    return EXIT_OK if status is None else int(status)


class _GuiUnavailable(Exception):
    """The desktop app cannot be loaded on this machine."""


def _cmd_session(args: argparse.Namespace) -> int:
    from inspector import cli_session

    return cli_session.run(args)


def _cmd_live(args: argparse.Namespace) -> int:
    from inspector import cli_live

    return cli_live.run(args)


COMMANDS = {"run": _cmd_run, "dt": _cmd_dt, "layouts": _cmd_layouts, "gui": _cmd_gui,
            "session": _cmd_session, "live": _cmd_live}


# ---- plumbing ----------------------------------------------------------------------------

def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _fail(message: str) -> None:
    one_line = " ".join(str(message).split())
    print(f"{PROG}: {one_line}", file=sys.stderr)


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the flush at exit stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # stdout has no file descriptor (captured in a test): nothing to silence


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``koi`` with `argv` (default: the process's arguments); return the exit status."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(_prepare(args_in))
        return COMMANDS[args.command](args)
    except (UsageError, LayoutError) as exc:
        _fail(exc.args[0] if exc.args else exc)
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version end the parse this way
        code = exc.code
        return code if isinstance(code, int) else EXIT_OK if code is None else EXIT_USAGE
    except BrokenPipeError:  # the reader went away (koi dt _EPROCESS | head)
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except _GuiUnavailable as exc:
        _fail(f"cannot start the desktop app: {exc}")
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - the promise is one line, never a traceback
        _fail(f"internal error: {type(exc).__name__}: {exc}")
        return EXIT_INTERNAL


if __name__ == "__main__":
    # `python -m inspector.cli` runs this file as __main__; go through the real module so
    # that UsageError raised by the command modules (inspector.cli.UsageError) is caught
    from inspector.cli import main as _main

    sys.exit(_main())
