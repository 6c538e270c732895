"""Write the koi(1) and koi-inspector(1) manual pages from the programs' own parsers.

    python packaging/make_manpages.py OUT_DIR

The pages are generated at build time from ``inspector.cli.build_parser()`` and the
parser of ``inspector/app.py``, so they cannot drift from ``--help``. Neither module
imports Qt at load time, so this runs without a display. Writes OUT_DIR/koi.1 and
OUT_DIR/koi-inspector.1 (plain roff; the packager compresses them).
Exit status 0, or 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def roff(text: str) -> str:
    """Escape text for a roff body line."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line
                     for line in text.splitlines())


def _options(parser: argparse.ArgumentParser) -> list[str]:
    lines = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            names = ", ".join(f"\\fB{roff(name)}\\fR" for name in action.option_strings)
            if action.nargs != 0:
                names += f" \\fI{roff(action.metavar or action.dest.upper())}\\fR"
        else:
            names = f"\\fI{roff(action.metavar or action.dest)}\\fR"
        help_text = action.help or ""
        try:  # argparse expands %(default)s and the like in help strings; do the same
            help_text = help_text % dict(vars(action), prog=parser.prog)
        except (KeyError, TypeError, ValueError):
            pass
        lines += [".TP", names, roff(help_text)]
    return lines


def _usage(parser: argparse.ArgumentParser) -> str:
    usage = parser.format_usage().strip()
    return usage[len("usage: "):] if usage.startswith("usage: ") else usage


def manpage(parser: argparse.ArgumentParser, name: str, summary: str, version: str,
            date: str, see_also: str) -> str:
    title = roff(name.upper())
    lines = [
        f'.TH {title} 1 "{date}" "KOI {version}" "User Commands"',
        ".SH NAME", f"{roff(name)} \\- {roff(summary)}",
        ".SH SYNOPSIS", ".nf", roff(_usage(parser)), ".fi",
    ]
    if parser.description:
        lines += [".SH DESCRIPTION", roff(parser.description)]
    lines += [".SH OPTIONS"] + _options(parser)

    commands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if commands is not None:
        lines.append(".SH COMMANDS")
        for choice in commands._choices_actions:
            sub = commands.choices[choice.dest]
            lines += [".SS " + roff(choice.dest), ".nf", roff(_usage(sub)), ".fi"]
            if sub.description:
                lines.append(roff(sub.description))
            sub_options = _options(sub)
            if sub_options:
                lines += [".PP"] + sub_options
    if parser.epilog:
        lines += [".SH EXIT STATUS", roff(parser.epilog)]
    lines += [".SH SEE ALSO", see_also]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="make_manpages.py",
                                  description="Write koi.1 and koi-inspector.1.")
    cli.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    args = cli.parse_args(argv)

    os.environ["COLUMNS"] = "80"  # argparse wraps usage to the terminal; make it fixed
    from core import __version__
    from inspector import app, cli as koi_cli

    # The page's date: SOURCE_DATE_EPOCH when the build sets one, so builds are reproducible.
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None
    when = (datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc) if epoch
            else datetime.datetime.now(datetime.timezone.utc))
    date = when.strftime("%Y-%m-%d")

    pages = {
        "koi.1": manpage(koi_cli.build_parser(), "koi",
                         "the Kernel Object Inspector without a window", __version__, date,
                         "\\fBkoi\\-inspector\\fR(1)"),
        "koi-inspector.1": manpage(app._parser(), "koi-inspector",
                                   "the Kernel Object Inspector desktop app", __version__, date,
                                   "\\fBkoi\\fR(1)"),
    }
    try:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for file_name, text in pages.items():
            (args.out_dir / file_name).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"make_manpages.py: cannot write {args.out_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"make_manpages.py: wrote {', '.join(pages)} to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
