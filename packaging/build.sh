#!/usr/bin/env bash
# Build KOI's frozen app and its Debian package, from a clean clone.
#
#   bash packaging/build.sh
#
# Gives dist/koi/ (PyInstaller onedir: koi, koi-inspector and _internal/) and
# dist/koi_<version>_amd64.deb. Runs on Debian or Ubuntu (amd64) with python3 >= 3.11;
# the first run downloads PyInstaller and KOI's dependencies from PyPI into build/venv.
# Missing build tools and libraries are installed with apt-get when run as root (as CI
# does) or with password-less sudo; otherwise the script names the apt-get command and stops.
#
# The version is core/__init__.py's __version__; packaging/linux/changelog must have an
# entry for it (its date is the release date, and every file's time stamp in the package).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$SECONDS

APP_ID=io.github.koi_inspector.KOI
LINUX=packaging/linux
WORK=build/packaging
VENV=${KOI_BUILD_VENV:-build/venv}
ICON_SIZES=(16 22 24 32 48 64 128 256 512)

die() { echo "packaging/build.sh: $*" >&2; exit 2; }
say() { echo "build.sh: $*"; }

# ---- version and release date --------------------------------------------------------------
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' core/__init__.py)
[[ -n $version ]] || die 'core/__init__.py has no line __version__ = "..."'
changelog_version=$(sed -n '1s/^koi (\([^)]*\)) .*/\1/p' "$LINUX/changelog")
[[ $changelog_version == "$version" ]] ||
  die "packaging/linux/changelog starts at '$changelog_version' but core/__init__.py says $version: add a changelog entry for $version"
trailer=$(grep -m1 '^ -- ' "$LINUX/changelog")
maintainer=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' <<<"$trailer")
release_date=$(sed -n 's/^ -- .*>  \(.*\)/\1/p' <<<"$trailer")
SOURCE_DATE_EPOCH=$(date -u -d "$release_date" +%s 2>/dev/null) ||
  die "packaging/linux/changelog: cannot read the date in '$trailer'"
export SOURCE_DATE_EPOCH   # reproducible: man page dates, file times, dpkg-deb
deb=dist/koi_${version}_amd64.deb

# ---- build tools and the libraries PyInstaller must find to bundle ------------------------
[[ $(uname -m) == x86_64 ]] || die "this builds an amd64 package; this machine is $(uname -m)"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found: build the Debian package on Debian or Ubuntu"
# Freeze Debian's own Python: its libpython and extension modules link to Debian's
# libraries and carry no build-machine paths (a pyenv build leaves RUNPATHs such as
# /root/.pyenv/versions/3.11.7/lib in every module, which lintian rejects).
PYTHON=${KOI_PYTHON:-$( [[ -x /usr/bin/python3 ]] && echo /usr/bin/python3 || command -v python3 || true)}
[[ -n $PYTHON ]] || die "no python3 found (set KOI_PYTHON to a Python 3.11 or newer)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
  die "$PYTHON is not Python 3.11 or newer ($("$PYTHON" --version 2>&1)); set KOI_PYTHON to one that is"
py_version=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')

missing=()
for tool_package in strip:binutils readelf:binutils dpkg-shlibdeps:dpkg-dev \
    desktop-file-validate:desktop-file-utils appstreamcli:appstream \
    update-mime-database:shared-mime-info; do
  command -v "${tool_package%%:*}" >/dev/null || missing+=("${tool_package#*:}")
done
"$PYTHON" -c 'import ensurepip' 2>/dev/null || missing+=("python$py_version-venv")
# PyInstaller needs the shared libpython. Qt's libraries link to the rest, its xcb and
# wayland platform plugins to the xcb and wayland ones: each must be on this machine for
# PyInstaller to resolve it and dpkg-shlibdeps to name its package (library -> package).
declare -A providers=(
  ["libpython$py_version.so.1.0"]="libpython$py_version"
  [libwayland-client.so.0]=libwayland-client0 [libwayland-cursor.so.0]=libwayland-cursor0
  [libwayland-egl.so.1]=libwayland-egl1
  [libEGL.so.1]=libegl1 [libGL.so.1]=libgl1 [libfontconfig.so.1]=libfontconfig1
  [libfreetype.so.6]=libfreetype6 [libdbus-1.so.3]=libdbus-1-3 [libglib-2.0.so.0]=libglib2.0-0
  [libxkbcommon.so.0]=libxkbcommon0 [libxkbcommon-x11.so.0]=libxkbcommon-x11-0
  [libX11-xcb.so.1]=libx11-xcb1 [libxcb-cursor.so.0]=libxcb-cursor0
  [libxcb-icccm.so.4]=libxcb-icccm4 [libxcb-image.so.0]=libxcb-image0
  [libxcb-keysyms.so.1]=libxcb-keysyms1 [libxcb-randr.so.0]=libxcb-randr0
  [libxcb-render-util.so.0]=libxcb-render-util0 [libxcb-shape.so.0]=libxcb-shape0
  [libxcb-xkb.so.1]=libxcb-xkb1 [libxcb-xfixes.so.0]=libxcb-xfixes0
  [libxcb-sync.so.1]=libxcb-sync1 [libxcb-glx.so.0]=libxcb-glx0
)
known_libs=$(ldconfig -p)
for lib in "${!providers[@]}"; do
  grep -qF "$lib " <<<"$known_libs" || missing+=("${providers[$lib]}")
done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo -n true 2>/dev/null ||
      die "missing build dependencies; install them with: sudo apt-get install ${missing[*]}"
    sudo=(sudo -n)
  fi
  say "installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- build venv: PyInstaller and KOI's runtime dependencies (pyproject.toml) ---------------
# KOI itself is frozen from this tree (the spec puts it first on the path), not installed.
python_id=$("$PYTHON" -c 'import sys; print(sys.executable, sys.version)')
if [[ -x $VENV/bin/python && $(cat "$VENV/.koi-python" 2>/dev/null) != "$python_id" ]]; then
  say "$VENV was made from another Python; making it anew from $PYTHON"
  rm -rf "$VENV"
fi
if [[ ! -x $VENV/bin/python ]]; then
  say "creating $VENV from $PYTHON"
  "$PYTHON" -m venv "$VENV"
  echo "$python_id" >"$VENV/.koi-python"
fi
mapfile -t dependencies < <("$PYTHON" -c '
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
say "installing PyInstaller and ${dependencies[*]}"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "pyinstaller>=6.10,<7" "${dependencies[@]}"

# ---- the frozen app ------------------------------------------------------------------------
mkdir -p "$WORK"
say "freezing with PyInstaller (log: $WORK/pyinstaller.log)"
if ! "$VENV/bin/python" -m PyInstaller --noconfirm --clean --distpath dist \
    --workpath build/pyinstaller packaging/koi.spec >"$WORK/pyinstaller.log" 2>&1; then
  tail -n 30 "$WORK/pyinstaller.log" >&2
  die "PyInstaller failed; the whole log is $WORK/pyinstaller.log"
fi
# A library PyInstaller could not find is missing from the bundle, and the app would fail
# on machines without it. The GTK theme plugin's are expected: koi.spec drops that plugin.
unresolved=$(grep "Library not found" "$WORK/pyinstaller.log" | grep -v "platformthemes/libqgtk3.so" || true)
[[ -z $unresolved ]] || die "PyInstaller could not bundle some libraries; install them and rebuild:
$unresolved"

# ---- the package tree ----------------------------------------------------------------------
stage=$PWD/$WORK/root  # absolute: dpkg-shlibdeps runs elsewhere
rm -rf "$stage"
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/lib" "$stage/usr/share/applications" \
  "$stage/usr/share/metainfo" "$stage/usr/share/mime/packages" "$stage/usr/share/man/man1" \
  "$stage/usr/share/doc/koi" "$stage/usr/share/icons/hicolor/scalable/apps"
cp -a dist/koi "$stage/usr/lib/koi"
ln -s ../lib/koi/koi "$stage/usr/bin/koi"
ln -s ../lib/koi/koi-inspector "$stage/usr/bin/koi-inspector"

cp "$LINUX/$APP_ID.desktop" "$stage/usr/share/applications/"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)/" \
  "$LINUX/$APP_ID.metainfo.xml.in" >"$stage/usr/share/metainfo/$APP_ID.metainfo.xml"
cp "$LINUX/$APP_ID.mime.xml" "$stage/usr/share/mime/packages/$APP_ID.xml"

"$VENV/bin/python" packaging/render_icons.py "$WORK/icons" >/dev/null
for size in "${ICON_SIZES[@]}"; do
  install -D -m 644 "$WORK/icons/koi-$size.png" \
    "$stage/usr/share/icons/hicolor/${size}x${size}/apps/$APP_ID.png"
done
cp resources/icons/koi.svg "$stage/usr/share/icons/hicolor/scalable/apps/$APP_ID.svg"

"$VENV/bin/python" packaging/make_manpages.py "$WORK/man" >/dev/null
gzip -9n -c "$WORK/man/koi.1" >"$stage/usr/share/man/man1/koi.1.gz"
gzip -9n -c "$WORK/man/koi-inspector.1" >"$stage/usr/share/man/man1/koi-inspector.1.gz"

cp "$LINUX/copyright" "$stage/usr/share/doc/koi/copyright"
gzip -9n -c "$LINUX/changelog" >"$stage/usr/share/doc/koi/changelog.gz"
"$VENV/bin/python" packaging/third_party.py "$stage/usr/share/doc/koi/third-party" >/dev/null

# ---- check what can be checked before packing ----------------------------------------------
desktop-file-validate "$stage/usr/share/applications/$APP_ID.desktop" ||
  die "the .desktop entry is invalid (above)"
appstreamcli validate --no-net --no-color "$stage/usr/share/metainfo/$APP_ID.metainfo.xml" >"$WORK/appstream.log" 2>&1 ||
  { cat "$WORK/appstream.log" >&2; die "the AppStream metainfo is invalid (above)"; }
mime_check=$WORK/mime
rm -rf "$mime_check" && mkdir -p "$mime_check/packages"
cp "$stage/usr/share/mime/packages/$APP_ID.xml" "$mime_check/packages/"
# (XDG_DATA_HOME only stops it noting that this directory is not a system one.)
XDG_DATA_HOME=$PWD/$WORK update-mime-database "$mime_check" >"$WORK/mime.log" 2>&1 &&
  ! grep -qiE 'error|warning|unknown|invalid' "$WORK/mime.log" ||
  { cat "$WORK/mime.log" >&2; die "the shared-mime-info package file is invalid (above)"; }
grep -q '^50:application/x-koi-session:\*\.koi$' "$mime_check/globs2" ||
  die "the MIME database built from $APP_ID.xml does not map *.koi to application/x-koi-session"

# ---- system libraries: from Debian, not from the bundle ------------------------------------
# PyInstaller copied the system libraries Qt and Python link to (zlib, expat, freetype,
# xcb, GLib, OpenSSL...) from this machine into _internal/. The package leaves those out
# and depends on the Debian packages they came from, which keep them patched (lintian:
# embedded-library). libpython stays: the bootloader loads it from _internal/ by path.
internal=$stage/usr/lib/koi/_internal
unbundled=()
while IFS= read -r -d '' library; do
  name=${library##*/}
  [[ $name == libpython* ]] && continue
  owner=$(dpkg-query -S "*/$name" 2>/dev/null | grep -v '^diversion by' | head -n 1 | cut -d: -f1 || true)
  if [[ -n $owner ]]; then
    rm "$library"
    unbundled+=("$name ($owner)")
  fi
done < <(find "$internal" -maxdepth 1 -type f -name '*.so*' -print0)
dangling=$(find "$stage" -xtype l -printf '%P\n')
[[ -z $dangling ]] || die "symbolic links left pointing at removed libraries: $dangling"
say "left out ${#unbundled[@]} system libraries (their packages become dependencies)"

# ---- Depends, as dpkg-shlibdeps finds them from every ELF file's needs ---------------------
mapfile -t elf_files < <(find "$stage/usr/lib/koi" -type f \( -name '*.so*' -o -name koi -o -name koi-inspector \) |
  while read -r file; do [[ $(head -c 4 "$file" | od -An -c | tr -d ' ') == '177ELF' ]] && echo "$file"; done)
# The bundle's own library directories, so its private libraries (Qt, libpython,
# numpy's) resolve inside it and are not asked of the system.
mapfile -t private_dirs < <(find "$internal" -name '*.so*' -printf '%h\n' | sort -u)
shlibdeps=$WORK/shlibdeps
rm -rf "$shlibdeps" && mkdir -p "$shlibdeps/debian"
printf 'Source: koi\n\nPackage: koi\nArchitecture: amd64\n' >"$shlibdeps/debian/control"
(cd "$shlibdeps" && dpkg-shlibdeps -O --warnings=1 --ignore-missing-info \
  "${private_dirs[@]/#/-l}" "${elf_files[@]}") >"$WORK/shlibdeps.out" 2>"$WORK/shlibdeps.log" ||
  { cat "$WORK/shlibdeps.log" >&2; die "dpkg-shlibdeps failed (above)"; }
depends_field=$(sed -n 's/^shlibs:Depends=//p' "$WORK/shlibdeps.out")
[[ -n $depends_field ]] || die "dpkg-shlibdeps found no dependencies (log: $WORK/shlibdeps.log)"

# Tags lintian raises that are right for this package (each with its reason in the file).
install -D -m 644 "$LINUX/lintian-overrides" "$stage/usr/share/lintian/overrides/koi"

# ---- control, permissions, time stamps, pack ----------------------------------------------
find "$stage" -type d -exec chmod 755 {} +
find "$stage" -type f -exec chmod 644 {} +
chmod 755 "$stage/usr/lib/koi/koi" "$stage/usr/lib/koi/koi-inspector"
installed_size=$(du -sk --apparent-size "$stage/usr" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@MAINTAINER@/$maintainer/" \
  -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s/@DEPENDS@/$depends_field/" \
  "$LINUX/control.in" >"$stage/DEBIAN/control"
(cd "$stage" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

rm -f "$deb"
# xz, which every dpkg reads; level 6 (dpkg's default) packs 10% smaller than level 2 but
# takes three times as long, so checks that only unpack the package may ask for less.
dpkg-deb --root-owner-group -Zxz "-z${KOI_DEB_XZ_LEVEL:-6}" --build "$stage" "$deb" >/dev/null
say "Depends: $depends_field"
say "dist/koi: $(du -sh dist/koi | cut -f1); $deb: $(du -h "$deb" | cut -f1) (installed $((installed_size / 1024)) MiB)"
say "done in $((SECONDS - started)) s"
