"""How long loading KOI's shipped layouts takes, always in a fresh interpreter.

Measures, each in a new Python process repeated --repeat times (min and median):

1. import + load all: ``import core.layouts`` and ``core.dt``, ``catalogue()``, parse
   every structure of every shipped build, then print one ``dt`` (_EPROCESS). Timed
   inside the child, from before the imports to after the print; the target is
   under 0.3 s.
2. the same child's wall time, interpreter start-up included.
3. ``koi dt _EPROCESS`` end to end: the installed ``koi`` command (else
   ``python -m inspector.cli``), wall time from spawn to exit.

    python bench/bench_layouts.py [--repeat N] [--check]

--check exits 1 when the median of (1) misses the target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.3

CHILD = r"""
import sys, time, json
t0 = time.perf_counter()
from core.layouts import catalogue
from core.dt import format_dt
t_import = time.perf_counter()
cat = catalogue()
t_catalogue = time.perf_counter()
structs = 0
for build in cat.builds:
    for name in build.struct_names:
        build.struct(name)
        structs += 1
t_parse = time.perf_counter()
sys.stdout.write(format_dt(cat.find(), "_EPROCESS") + "\n")
sys.stdout.flush()
t_end = time.perf_counter()
print(json.dumps({"import": t_import - t0, "catalogue": t_catalogue - t_import,
                  "parse": t_parse - t_catalogue, "dt": t_end - t_parse, "total": t_end - t0,
                  "builds": len(cat.builds), "structs": structs}), file=sys.stderr)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def koi_command() -> list[str]:
    script = Path(sys.executable).with_name("koi")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("koi")
    return [found] if found else [sys.executable, "-m", "inspector.cli"]


def load_all_once() -> tuple[dict, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          cwd=ROOT, env=_env(), check=True)
    wall = time.perf_counter() - start
    if not proc.stdout.startswith("nt!_EPROCESS\n"):
        raise SystemExit(f"unexpected dt output: {proc.stdout[:80]!r}")
    return json.loads(proc.stderr.strip().splitlines()[-1]), wall


def koi_dt_once(command: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([*command, "dt", "_EPROCESS"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=ROOT, env=_env(), check=True)
    wall = time.perf_counter() - start
    if not proc.stdout.startswith(b"nt!_EPROCESS\n"):
        raise SystemExit(f"unexpected koi dt output: {proc.stdout[:80]!r}")
    return wall


def _ms(values: list[float]) -> str:
    return f"min {min(values) * 1e3:7.1f} ms   median {statistics.median(values) * 1e3:7.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs of each measurement (10)")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 when the import+load median is over {TARGET_S} s")
    args = parser.parse_args(argv)

    runs = [load_all_once() for _ in range(args.repeat)]
    inner = [r["total"] for r, _ in runs]
    parts = {k: [r[k] for r, _ in runs] for k in ("import", "catalogue", "parse", "dt")}
    command = koi_command()
    koi = [koi_dt_once(command) for _ in range(args.repeat)]

    first = runs[0][0]
    print(f"KOI layouts benchmark: Python {sys.version.split()[0]}, {args.repeat} fresh "
          f"interpreters each; {first['builds']} builds, {first['structs']} structures")
    print(f"import + load all + dt   {_ms(inner)}   (target < {TARGET_S * 1e3:.0f} ms)")
    for name, label in (("import", "import core"), ("catalogue", "catalogue()"),
                        ("parse", "parse every struct"), ("dt", "format + print dt")):
        print(f"  {label:<22} {_ms(parts[name])}")
    print(f"same, process wall time  {_ms([w for _, w in runs])}")
    print(f"koi dt _EPROCESS wall    {_ms(koi)}   ({' '.join(Path(c).name for c in command)})")

    met = statistics.median(inner) < TARGET_S
    print("target met" if met else "TARGET MISSED")
    return 0 if met or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
