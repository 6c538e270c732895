"""Collect the licence texts of everything a frozen KOI bundle carries besides KOI.

    BUILD_VENV/bin/python packaging/third_party.py OUT_DIR

Run with the build venv's interpreter (the one PyInstaller froze): it reads that
environment's package metadata. Writes:

- ``OUT_DIR/python-packages.txt`` and ``OUT_DIR/python/NAME-VERSION/``: every Python
  distribution KOI depends on (pyproject.toml's dependencies and what they require, plus
  PyInstaller, whose bootloader starts the executables), with the licence files its
  wheel ships;
- ``OUT_DIR/python/Python-X.Y.Z/LICENSE.txt``: the interpreter's own licence.

The Debian package's DEP-5 copyright file points here for the full texts. (The system
libraries PyInstaller copies from the build machine are not listed: the .deb leaves
them out and depends on their Debian packages instead.)
Exit status 0, or 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import re
import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The bootloader of every frozen executable comes from PyInstaller (GPL-2.0+ with an
# exception for the bootloader); its other parts never reach the bundle.
ALSO_BUNDLED = ("pyinstaller",)
LICENCE_FILE = re.compile(r"(^|/)(LICEN[CS]E|COPYING|NOTICE|AUTHORS)[^/]*$", re.IGNORECASE)


class ThirdPartyError(Exception):
    """Exit 2 with this one-line message."""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str | None:
    """The distribution a requirement string names, or None when it applies only to an
    extra or to another platform or Python."""
    name, _, marker = requirement.partition(";")
    if marker.strip():
        try:
            from packaging.markers import Marker
        except ImportError:  # no packaging: keep every requirement that is not an extra's
            if "extra" in marker:
                return None
        else:
            if "extra" in marker or not Marker(marker).evaluate():
                return None
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", name)
    return found.group(1) if found else None


def _dependency_closure() -> list[metadata.Distribution]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pending = [n for n in map(_requirement_name, project["dependencies"]) if n]
    seen: dict[str, metadata.Distribution] = {}

    def find(name: str) -> metadata.Distribution:
        try:
            return metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ThirdPartyError(f"{name} is not installed in this environment "
                                  f"({sys.prefix}); run with the build venv's python") from None

    while pending:
        name = pending.pop()
        if _canonical(name) not in seen:
            seen[_canonical(name)] = dist = find(name)
            pending.extend(n for n in map(_requirement_name, dist.requires or []) if n)
    for name in ALSO_BUNDLED:  # itself only: its own requirements stay on the build machine
        seen[_canonical(name)] = find(name)
    return sorted(seen.values(), key=lambda d: _canonical(d.metadata["Name"]))


def _licence_of(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    if meta.get("License-Expression"):
        return meta["License-Expression"]
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or []
                   if c.startswith("License ::")]
    if classifiers:
        return " / ".join(classifiers)
    first_line = (meta.get("License") or "").strip().splitlines()
    return first_line[0] if first_line else "see its licence files"


def write_python(out_dir: Path) -> list[str]:
    rows = []
    for dist in _dependency_closure():
        name, version = dist.metadata["Name"], dist.version
        target = out_dir / "python" / f"{name}-{version}"
        copied = 0
        for file in dist.files or []:
            if LICENCE_FILE.search(str(file)) and not str(file).endswith((".py", ".pyc")):
                source = Path(dist.locate_file(file))
                if source.is_file():
                    # Keep the path below dist-info/licenses/ so numpy's many LICENSE.txt
                    # files (one per vendored component) do not overwrite each other.
                    relative = Path(*Path(str(file)).parts[1:]) if len(Path(str(file)).parts) > 1 else Path(file.name)
                    (target / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target / relative)
                    copied += 1
        where = f"python/{target.name}/" if copied else "no licence file in its wheel"
        rows.append(f"{name:<28} {version:<12} {_licence_of(dist):<50} {where}")

    python_licence = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "LICENSE.txt"
    version = ".".join(map(str, sys.version_info[:3]))
    if python_licence.is_file():
        target = out_dir / "python" / f"Python-{version}"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(python_licence, target / "LICENSE.txt")
        rows.insert(0, f"{'Python':<28} {version:<12} {'PSF-2.0':<50} python/Python-{version}/")
    else:
        rows.insert(0, f"{'Python':<28} {version:<12} {'PSF-2.0':<50} (no LICENSE.txt found at {python_licence})")
    (out_dir / "python-packages.txt").write_text(
        "Python and the Python distributions inside KOI's executables and _internal/\n\n"
        + "\n".join(rows) + "\n", encoding="utf-8")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="third_party.py",
        description="Collect the licence texts of the components bundled with frozen KOI.")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="directory to write into")
    args = parser.parse_args(argv)
    try:
        if args.out_dir.exists():
            shutil.rmtree(args.out_dir)
        args.out_dir.mkdir(parents=True)
        python_rows = write_python(args.out_dir)
    except ThirdPartyError as exc:
        print(f"third_party.py: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"third_party.py: {exc.filename or args.out_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"third_party.py: {len(python_rows)} Python components -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
