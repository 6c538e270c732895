#!/usr/bin/env bash
# Pack dist/KOI.app into a disk image: dist/KOI-<version>-macos-<arch>.dmg.
#
#   pyinstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/koi.spec
#   bash packaging/macos/make_dmg.sh
#
# On macOS only (hdiutil). The image holds KOI.app and a link to /Applications, so
# installing is a drag from one to the other. The app is signed with KOI_CODESIGN_IDENTITY
# (a "Developer ID Application: ..." identity in the keychain) when that is set; otherwise
# ad hoc, which runs on the machine that built it and, after the user allows it once in
# System Settings > Privacy & Security, on others.
# Exit status 0, or 2 with one line on stderr.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

die() { echo "packaging/macos/make_dmg.sh: $*" >&2; exit 2; }

[[ $(uname -s) == Darwin ]] || die "hdiutil is macOS's; run this on a Mac"
app=dist/KOI.app
[[ -d $app ]] || die "no $app: run PyInstaller on packaging/koi.spec first (see the top of this file)"
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' core/__init__.py)
[[ -n $version ]] || die 'core/__init__.py has no line __version__ = "..."'
bundle_version=$(/usr/libexec/PlistBuddy -c 'Print :CFBundleShortVersionString' "$app/Contents/Info.plist")
[[ $bundle_version == "$version" ]] ||
  die "$app is version $bundle_version but core/__init__.py says $version: rebuild it"

# The whole bundle under one signature (PyInstaller signs the binaries inside one by one).
if [[ -n ${KOI_CODESIGN_IDENTITY:-} ]]; then
  codesign --force --deep --options runtime --timestamp --sign "$KOI_CODESIGN_IDENTITY" "$app"
else
  codesign --force --deep --sign - "$app"
fi
codesign --verify --deep --strict "$app" || die "the signature of $app does not verify"

# Smoke test before packing: the bundled command line answers.
printed=$("$app/Contents/MacOS/koi" --version) || die "$app/Contents/MacOS/koi --version failed"
[[ $printed == "koi $version" ]] || die "$app/Contents/MacOS/koi --version printed '$printed'"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"

dmg=dist/KOI-$version-macos-$(uname -m).dmg
rm -f "$dmg"
hdiutil create -volname "KOI $version" -srcfolder "$stage" -fs HFS+ -format UDZO -ov "$dmg" >/dev/null
hdiutil verify "$dmg" >/dev/null || die "hdiutil cannot verify $dmg"
echo "make_dmg.sh: $dmg ($(du -h "$dmg" | cut -f1))"
