"""The ``koi`` command line: formats.md sections 1 and 4, run in-process and as a real process."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import core
import inspector
from core.dt import format_dt
from core.layouts import catalogue
from inspector import cli

ROOT = Path(__file__).resolve().parent.parent

# The builds the foundation issue requires, as (id, arch, bit-position exactness or None).
REQUIRED = [
    ("5.1.2600.5512", "x86", None),     # XP SP3
    ("5.2.3790.3959", "x64", None),     # Server 2003 SP2 / XP x64
    ("6.0.6002.18005", "x86", None),    # Vista SP2
    ("6.0.6002.18005", "x64", None),
    ("6.1.7601.17514", "x86", None),    # 7 SP1
    ("6.1.7601.17514", "x64", None),
    ("6.1.7601.24540", "x64", "exact"),
    ("6.2.9200.16384", "x64", None),    # 8
    ("6.3.9600.20237", "x64", "exact"),  # 8.1
    ("10.0.10240.16384", "x64", None),  # 10 1507
    ("10.0.14393.6343", "x64", "exact"),  # 1607
    ("10.0.17763.5933", "x64", "exact"),  # 1809
    ("10.0.18362.836", "x64", "exact"),   # 1903
    ("10.0.19041.3570", "x64", "exact"),  # 10 22H2, the default
    ("10.0.19045.2965", "x86", None),
    ("10.0.20348.2529", "x64", "exact"),  # Server 2022
    ("10.0.22000.2538", "x64", "exact"),  # 11 21H2
    ("10.0.22621.382", "x64", None),    # 11 22H2
    ("10.0.22631.2428", "x64", None),   # 11 23H2
    ("10.0.26100", "x64", "partly inferred"),  # 11 24H2
]

EPROCESS_19041_LINES = [
    "   +0x000 Pcb              : _KPROCESS",
    "   +0x440 UniqueProcessId  : Ptr64 Void",
    "   +0x448 ActiveProcessLinks : _LIST_ENTRY",
    "   +0x460 Flags2           : Uint4B",
    "   +0x460 JobNotReallyActive : Pos 0, 1 Bit",
    "   +0x460 DefaultPagePriority : Pos 12, 3 Bits",
    "   +0x4e8 CommitChargeJob  : Ptr64 _EJOB",
    "   +0x5a8 ImageFileName    : [15] UChar",
    "   +0x87a Protection       : _PS_PROTECTION",
    "   +0x920 LastAppStateUptime : Pos 0, 61 Bits",
]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(err: str) -> None:
    assert err.startswith("koi: ")
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err


# ---- koi dt -------------------------------------------------------------------------------

def test_dt_prints_windbg_lines_for_eprocess_on_win10_22h2(capsys):
    status, out, err = run(capsys, "dt", "_EPROCESS", "--build", "10.0.19041.3570", "--arch", "x64")
    assert (status, err) == (0, "")
    assert out.endswith("\n") and not out.endswith("\n\n")
    lines = out.splitlines()
    assert lines[0] == "nt!_EPROCESS"
    for expected in EPROCESS_19041_LINES:
        assert expected in lines
    assert lines.index(EPROCESS_19041_LINES[1]) < lines.index(EPROCESS_19041_LINES[2])
    line = re.compile(r"^   \+0x[0-9a-f]{3,} \S+ *: \S.*$")
    assert all(line.match(x) for x in lines[1:])


def test_dt_default_build_is_win10_22h2_x64(capsys):
    _, explicit, _ = run(capsys, "dt", "_EPROCESS", "--build", "10.0.19041.3570", "--arch", "x64")
    _, default, _ = run(capsys, "dt", "_EPROCESS")
    assert default == explicit


@pytest.mark.parametrize("spelling", ["nt!_EPROCESS", "_eprocess", "NT!_EProcess"])
def test_dt_type_with_or_without_nt_in_any_case(capsys, spelling):
    status, out, _ = run(capsys, "dt", spelling)
    assert status == 0
    assert out.splitlines()[0] == "nt!_EPROCESS"
    assert EPROCESS_19041_LINES[1] in out.splitlines()


def test_dt_x86_prints_ptr32(capsys):
    status, out, err = run(capsys, "dt", "_EPROCESS", "--build", "10.0.19045.2965", "--arch", "x86")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert "   +0x0e4 UniqueProcessId  : Ptr32 Void" in lines
    assert "   +0x0e8 ActiveProcessLinks : _LIST_ENTRY" in lines
    assert "Ptr64" not in out


def test_dt_build_without_x64_defaults_to_x86(capsys):
    status, out, _ = run(capsys, "dt", "_EPROCESS", "--build", "5.1.2600.5512")
    assert status == 0
    assert "Ptr32" in out and "Ptr64" not in out


def test_dt_output_is_core_format_dt(capsys):
    build = catalogue().find("10.0.22000.2538", "x64")
    _, out, _ = run(capsys, "dt", "_KTHREAD", "--build", "22000.2538")
    assert out == format_dt(build, "_KTHREAD") + "\n"


@pytest.mark.parametrize("argv,depth", [
    (["dt", "-r1", "_EPROCESS"], 1),
    (["dt", "_EPROCESS", "-r2"], 2),
    (["dt", "-r9", "_KTHREAD"], 9),
    (["dt", "-r", "_EPROCESS"], cli.ALL_LEVELS),
    (["dt", "_KPROCESS", "-r"], cli.ALL_LEVELS),
])
def test_dt_recursion_option_as_windbg(capsys, argv, depth):
    status, out, err = run(capsys, *argv)
    assert (status, err) == (0, "")
    type_name = next(a for a in argv[1:] if not a.startswith("-"))
    assert out == format_dt(catalogue().find(), type_name, depth=depth) + "\n"


def test_dt_r1_expands_embedded_structures_one_level(capsys):
    _, out, _ = run(capsys, "dt", "-r1", "_EPROCESS")
    lines = out.splitlines()
    pcb = lines.index("   +0x000 Pcb              : _KPROCESS")
    assert lines[pcb + 1] == "      +0x000 Header           : _DISPATCHER_HEADER"
    assert not any(x.startswith("         +") for x in lines)  # nothing two levels deep
    _, full, _ = run(capsys, "dt", "-r", "_EPROCESS")
    assert any(x.startswith("         +") for x in full.splitlines())


@pytest.mark.parametrize("argv", [
    ["dt", "_EPROCESS", "-r0"],
    ["dt", "_EPROCESS", "-r10"],
    ["dt", "_EPROCESS", "-rx"],
])
def test_dt_rejects_depths_windbg_rejects(capsys, argv):
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert_one_line_error(err)


def test_unknown_type_exits_2_with_one_line(capsys):
    status, out, err = run(capsys, "dt", "_FOO")
    assert (status, out) == (2, "")
    assert err == "koi: unknown type _FOO in build 10.0.19041.3570 x64\n"


@pytest.mark.parametrize("argv,fragment", [
    (["dt", "_EPROCESS", "--build", "1.2.3"], "unknown build 1.2.3"),
    (["dt", "_EPROCESS", "--build", "5.1.2600.5512", "--arch", "x64"], "not shipped for x64"),
    (["dt", "_EPROCESS", "--arch", "arm64"], "--arch"),
    (["dt"], "TYPE"),
    (["dt", "_EPROCESS", "extra"], "unrecognized arguments: extra"),
    ([], "COMMAND"),
    (["run", "x.toml"], "x.toml: cannot read file"),
    (["layouts", "--json", "--markdown"], "not allowed"),
    (["--bogus", "layouts"], "unrecognized arguments: --bogus"),
])
def test_bad_usage_exits_2_with_one_line(capsys, argv, fragment):
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert_one_line_error(err)
    assert fragment in err


def test_internal_error_exits_1_with_one_line(capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("core.dt.format_dt", boom)
    status, out, err = run(capsys, "dt", "_EPROCESS")
    assert (status, out) == (1, "")
    assert err == "koi: internal error: RuntimeError: boom\n"


def test_broken_pipe_is_quiet(capsys, monkeypatch):
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    status = cli.main(["dt", "_EPROCESS"])
    monkeypatch.undo()
    assert status == 0
    assert capsys.readouterr().err == ""


# ---- koi --version, --help -----------------------------------------------------------------

def test_version(capsys):
    status, out, err = run(capsys, "--version")
    assert (status, out, err) == (0, f"koi {core.__version__}\n", "")
    assert re.fullmatch(r"koi \d+\.\d+\.\d+\S*\n", out)


def test_help_lists_only_commands_that_exist(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for command in ("dt", "layouts", "gui", "session", "live"):
        assert command in out
    for later in ("{run",):
        assert later not in out


def test_dt_help_documents_recursion(capsys):
    status, out, _ = run(capsys, "dt", "--help")
    assert status == 0
    assert "-r" in out and "--build" in out and "--arch" in out


# ---- koi layouts ---------------------------------------------------------------------------

def test_layouts_lists_every_required_build(capsys):
    status, out, err = run(capsys, "layouts")
    assert (status, err) == (0, "")
    rows = {tuple(line.split()[:2]): line for line in out.splitlines()[1:]}
    for build_id, arch, exactness in REQUIRED:
        assert (build_id, arch) in rows, (build_id, arch)
        if exactness:
            assert rows[build_id, arch].endswith(exactness)
    assert "JPCERTCC/Windows-Symbol-Tables" in rows["10.0.19041.3570", "x64"]
    assert "Windows 11 24H2" in rows["10.0.26100", "x64"]
    assert "Rickebo/ntoskrnlib" in rows["10.0.26100", "x64"]


def test_layouts_has_one_row_per_build_in_aligned_columns(capsys):
    _, out, _ = run(capsys, "layouts")
    lines = out.splitlines()
    header = lines[0]
    assert header.split("  ")[0].strip() == "BUILD"
    starts = [header.index(h) for h in ("ARCH", "WINDOWS", "SOURCE", "BIT POSITIONS")]
    assert len(lines) == 1 + len(catalogue().builds)
    for line in lines[1:]:
        for col in starts:
            assert line[col - 1] == " " and line[col] != " ", (line, col)
    assert all(line == line.rstrip() for line in lines)
    exactness = {line[starts[-1]:] for line in lines[1:]}
    assert exactness == {"exact", "derived", "partly inferred"}


def test_layouts_json(capsys):
    status, out, err = run(capsys, "layouts", "--json")
    assert (status, err) == (0, "")
    data = json.loads(out)
    builds = catalogue().builds
    assert [(d["id"], d["arch"]) for d in data] == [(b.id, b.arch) for b in builds]
    for d, b in zip(data, builds):
        assert (d["name"], d["source"], d["licence"], d["bit_positions"]) == \
            (b.name, b.source, b.licence, b.bit_positions)
        assert d["structs"] > 0
    assert [(d["id"], d["arch"]) for d in data if d["default"]] == [("10.0.19041.3570", "x64")]


def test_sources_md_table_is_koi_layouts_markdown(capsys):
    """resources/layouts/SOURCES.md carries the table `koi layouts --markdown` prints."""
    _, table, _ = run(capsys, "layouts", "--markdown")
    sources = (ROOT / "resources" / "layouts" / "SOURCES.md").read_text(encoding="utf-8")
    assert table in sources
    for b in catalogue().builds:
        repo, path, commit = cli.split_source(b.source)
        assert f"| {b.id} | {b.arch} | {b.name} | {repo} | `{path}` | `{commit}` |" in sources
        assert len(commit) == 40


# ---- koi gui -------------------------------------------------------------------------------

@pytest.fixture
def fake_app(monkeypatch):
    calls = []
    app = types.ModuleType("inspector.app")

    def main(argv=None):
        calls.append(argv)
        return 0

    app.main = main
    monkeypatch.setitem(sys.modules, "inspector.app", app)
    monkeypatch.setattr(inspector, "app", app, raising=False)
    return calls


@pytest.mark.parametrize("argv,forwarded", [
    (["gui"], []),
    (["gui", "scenario.toml"], ["scenario.toml"]),
])
def test_gui_hands_over_to_the_app(capsys, fake_app, argv, forwarded):
    status, _, _ = run(capsys, *argv)
    assert status == 0
    assert fake_app == [forwarded]


def test_gui_without_qt_says_so_in_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "inspector.app", None)  # makes the import fail
    monkeypatch.delattr(inspector, "app", raising=False)
    status, out, err = run(capsys, "gui")
    assert (status, out) == (1, "")
    assert_one_line_error(err)
    assert "cannot start the desktop app" in err


# ---- as a real process ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def koi() -> list[str]:
    """The installed ``koi`` entry point, else ``python -m inspector.cli``."""
    script = Path(sys.executable).with_name("koi")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("koi")
    if found:
        return [found]
    return [sys.executable, "-m", "inspector.cli"]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_process_dt_matches_in_process(koi, capsys):
    proc = subprocess.run([*koi, "dt", "nt!_EPROCESS", "--build", "10.0.19041.3570"],
                          capture_output=True, text=True, cwd=ROOT, env=subprocess_env(),
                          timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")
    _, out, _ = run(capsys, "dt", "_EPROCESS")
    assert proc.stdout == out
    for expected in EPROCESS_19041_LINES:
        assert expected in proc.stdout.splitlines()


def test_process_python_m_version():
    proc = subprocess.run([sys.executable, "-m", "inspector.cli", "--version"],
                          capture_output=True, text=True, cwd=ROOT, env=subprocess_env(),
                          timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"koi {core.__version__}\n", "")


@pytest.mark.parametrize("argv,status", [
    (["dt", "_FOO"], 2),
    (["dt", "_EPROCESS", "--build", "99.9"], 2),
    (["dt"], 2),
    (["nonsense"], 2),
])
def test_process_errors_are_one_line_without_traceback(koi, argv, status):
    proc = subprocess.run([*koi, *argv], capture_output=True, text=True, cwd=ROOT,
                          env=subprocess_env(), timeout=60)
    assert proc.returncode == status
    assert proc.stdout == ""
    assert_one_line_error(proc.stderr)


def test_process_closed_pipe_is_quiet(koi):
    """``koi dt _EPROCESS | head``: the reader leaves before koi writes."""
    proc = subprocess.Popen([*koi, "dt", "-r", "_EPROCESS"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env=subprocess_env())
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert err == ""
