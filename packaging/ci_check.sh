#!/usr/bin/env bash
# CI: build the Debian package, unpack it into a temporary root and run what it installs.
#
#   bash packaging/ci_check.sh
#
# Runs as root on Debian in CI (apt-get installs what is missing); elsewhere with sudo
# rights for the same. Checks, in order:
#   1. packaging/build.sh builds dist/koi_<version>_amd64.deb;
#   2. lintian finds no error in it (warnings are printed, overridden tags explained);
#   3. the unpacked package holds the launchers, desktop entry, metainfo, MIME type,
#      icons and man pages, and the desktop entry and metainfo validate;
#   4. the packaged `koi --version` prints this version;
#   5. the packaged `koi run` runs the packaged round_robin scenario for 200 ms and its
#      --state-json output is the state at 200 ms; `koi dt` finds the packaged layouts;
#   6. the packaged `koi-inspector` starts offscreen and keeps running for 5 s with
#      nothing on stderr but the offscreen platform's own notices, and replays a session
#      `koi run --save` wrote when given it as FILE (what a double click on a .koi does).
# Exit status 0 when all pass; 1 with "ci_check: FAIL: ..." otherwise.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$SECONDS
APP_ID=io.github.koi_inspector.KOI

fail() { echo "ci_check: FAIL: $*" >&2; exit 1; }
ok() { echo "ci_check: ok: $*"; }

# ---- 1. build ------------------------------------------------------------------------------
# CI only unpacks the package: a lighter xz level saves about a minute (build.sh says why).
KOI_DEB_XZ_LEVEL=${KOI_DEB_XZ_LEVEL:-2} bash packaging/build.sh
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' core/__init__.py)
deb=dist/koi_${version}_amd64.deb
[[ -f $deb ]] || fail "build.sh did not produce $deb"
ok "built $deb ($(du -h "$deb" | cut -f1)) in $((SECONDS - started)) s"

# ---- 2. lintian ----------------------------------------------------------------------------
if ! command -v lintian >/dev/null; then
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo -n)
  echo "ci_check: installing lintian"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null
fi
# (As root lintian notes that root is not recommended; that line says nothing about KOI.)
lintian_log=$(mktemp)
if ! lintian --fail-on error --tag-display-limit 0 "$deb" >"$lintian_log" 2>&1; then
  cat "$lintian_log" >&2
  rm -f "$lintian_log"
  fail "lintian reports errors (above)"
fi
grep -v '^running with root privileges' "$lintian_log" | sed 's/^/    /' || true
rm -f "$lintian_log"
ok "lintian: no errors"

# ---- 3. contents ---------------------------------------------------------------------------
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
for path in usr/bin/koi usr/bin/koi-inspector usr/lib/koi/koi usr/lib/koi/koi-inspector \
    "usr/share/applications/$APP_ID.desktop" "usr/share/metainfo/$APP_ID.metainfo.xml" \
    "usr/share/mime/packages/$APP_ID.xml" "usr/share/icons/hicolor/scalable/apps/$APP_ID.svg" \
    "usr/share/icons/hicolor/16x16/apps/$APP_ID.png" "usr/share/icons/hicolor/512x512/apps/$APP_ID.png" \
    usr/share/man/man1/koi.1.gz usr/share/man/man1/koi-inspector.1.gz \
    usr/share/doc/koi/copyright usr/share/doc/koi/changelog.gz \
    usr/lib/koi/_internal/resources/scenarios/round_robin.toml; do
  [[ -e $root/$path ]] || fail "the package has no /$path"
done
desktop-file-validate "$root/usr/share/applications/$APP_ID.desktop" || fail "desktop-file-validate (above)"
appstreamcli validate --no-net --no-color "$root/usr/share/metainfo/$APP_ID.metainfo.xml" >/dev/null ||
  fail "appstreamcli validate: $(appstreamcli validate --no-net --no-color "$root/usr/share/metainfo/$APP_ID.metainfo.xml" 2>&1 | tr '\n' ' ')"
ok "contents; desktop entry and metainfo validate"

koi=$root/usr/bin/koi
inspector=$root/usr/bin/koi-inspector

# ---- 4. koi --version ----------------------------------------------------------------------
printed=$("$koi" --version) || fail "koi --version exited with $?"
[[ $printed == "koi $version" ]] || fail "koi --version printed '$printed', expected 'koi $version'"
ok "koi --version: $printed"

# ---- 5. koi run, koi dt ---------------------------------------------------------------------
state=$root/state.json
"$koi" run "$root/usr/lib/koi/_internal/resources/scenarios/round_robin.toml" \
  --until 200ms --state-json - >"$state" || fail "koi run exited with $?"
python3 - "$state" <<'EOF' || fail "koi run --state-json: unexpected output (above)"
import json, sys
state = json.load(open(sys.argv[1]))
assert state["time_us"] == 200000.0, f"time_us is {state['time_us']}, not 200000.0 (--until 200ms)"
threads = [t for p in state["processes"] if p["pid"] != 0 for t in p["threads"]]
assert threads, "no threads besides the idle process's"
print(f"ci_check: ok: koi run: {len(state['processes'])} processes, {len(threads)} threads at 200 ms")
EOF
first_line=$("$koi" dt _EPROCESS | head -n 1)
[[ $first_line == "nt!_EPROCESS" ]] || fail "koi dt _EPROCESS printed '$first_line' first"
ok "koi dt _EPROCESS finds the packaged layouts"

# ---- 6. koi-inspector offscreen ------------------------------------------------------------
printed=$("$inspector" --version) || fail "koi-inspector --version exited with $?"
[[ $printed == "koi-inspector $version" ]] || fail "koi-inspector --version printed '$printed'"
# What the offscreen platform prints about itself (pyproject.toml's qt_log_ignore).
offscreen_notices='This plugin does not support (propagateSizeHints\(\)|raise\(\)|grabbing the keyboard)'
stderr_file=$root/inspector.stderr
if "$inspector" --help | grep -q -- '--quit-after'; then
  # The app quits itself: its exit status says whether it started cleanly.
  QT_QPA_PLATFORM=offscreen timeout 60 "$inspector" --quit-after 5000 >/dev/null 2>"$stderr_file" ||
    fail "koi-inspector --quit-after 5000 exited with $?: $(cat "$stderr_file")"
else
  # Still running after 5 s (timeout's 124) is the pass; any earlier exit is a failure.
  status=0
  QT_QPA_PLATFORM=offscreen timeout 5 "$inspector" >/dev/null 2>"$stderr_file" || status=$?
  [[ $status -eq 124 ]] || fail "koi-inspector exited with $status within 5 s: $(cat "$stderr_file")"
fi
unexpected=$(grep -vE "$offscreen_notices" "$stderr_file" || true)
[[ -z $unexpected ]] || fail "koi-inspector wrote to stderr: $unexpected"
ok "koi-inspector ran offscreen for 5 s, stderr clean"

# A session opened by file name, as a double click on a .koi does (the .desktop Exec line)
session=$root/round_robin.koi
"$koi" run "$root/usr/lib/koi/_internal/resources/scenarios/round_robin.toml" \
  --until 200ms --save "$session" >/dev/null || fail "koi run --save exited with $?"
QT_QPA_PLATFORM=offscreen timeout 60 "$inspector" "$session" --quit-after 3000 >/dev/null \
  2>"$stderr_file" || fail "koi-inspector $session exited with $?: $(cat "$stderr_file")"
unexpected=$(grep -vE "$offscreen_notices" "$stderr_file" || true)
[[ -z $unexpected ]] || fail "koi-inspector FILE.koi wrote to stderr: $unexpected"
ok "koi-inspector replayed a saved session offscreen, stderr clean"

echo "ci_check: done in $((SECONDS - started)) s"
