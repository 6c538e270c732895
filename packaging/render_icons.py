"""Render KOI's icon (resources/icons/koi.svg) into the files installers need.

    python packaging/render_icons.py OUT_DIR [--svg FILE]

Writes into OUT_DIR:

- ``koi-N.png`` for N in 16 22 24 32 48 64 128 256 512 (the freedesktop hicolor sizes) and
  1024 (for the macOS Retina 512@2x slot);
- ``koi.ico``: 16 to 48 as 32-bit DIBs, which every Windows tool reads, and 64 to 256 as PNG
  (Vista's compressed entries; a DIB of 256 x 256 would be 256 KiB);
- ``koi.icns``: every PNG slot macOS knows, 16 to 1024.

Qt renders the SVG (QtSvg is in PySide6-Essentials), so the icon files come from the same
renderer the app uses and no image tool is needed. No QGuiApplication is created: painting
paths into a QImage needs none, and the script runs on build machines without a display.
Exit status 0, or 2 with one line on stderr when the SVG is missing or invalid.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

PNG_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64, 128, 256)
ICO_DIB_MAX = 48  # above this the ICO entry is PNG-compressed
# ICNS element type -> pixel size. icp4..ic10 are the 1x slots, ic11..ic14 the @2x ones.
ICNS_TYPES = (
    (b"icp4", 16), (b"icp5", 32), (b"icp6", 64), (b"ic07", 128), (b"ic08", 256),
    (b"ic09", 512), (b"ic10", 1024), (b"ic11", 32), (b"ic12", 64), (b"ic13", 256),
    (b"ic14", 512),
)
DEFAULT_SVG = Path(__file__).resolve().parent.parent / "resources" / "icons" / "koi.svg"


class IconError(Exception):
    """The SVG cannot be rendered: exit 2 with this one-line message."""


def _renderer(svg: Path):
    from PySide6.QtSvg import QSvgRenderer

    if not svg.is_file():
        raise IconError(f"{svg}: no such file")
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise IconError(f"{svg}: not a valid SVG (Qt could not parse it)")
    return renderer


def render(renderer, size: int):
    """The icon at size x size as a straight-alpha ARGB32 QImage."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter

    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    # PNG and DIB both want straight (non-premultiplied) alpha.
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def png_bytes(image) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise IconError("Qt could not encode a PNG (is the PNG image plugin missing?)")
    buffer.close()
    return bytes(data.data())


def dib_bytes(image) -> bytes:
    """A 32-bit BI_RGB DIB as an ICO entry stores it: BITMAPINFOHEADER with twice the
    height (XOR bitmap + AND mask), rows bottom-up, then an all-zero AND mask (the alpha
    channel decides transparency)."""
    width, height = image.width(), image.height()
    header = struct.pack("<IiiHHIIiiII", 40, width, height * 2, 1, 32, 0, width * height * 4,
                         0, 0, 0, 0)
    # Format_ARGB32 is 0xAARRGGBB per pixel: little-endian memory order B, G, R, A, as DIBs
    # want. Qt pads each scan line to 4 bytes, which 32-bit pixels already are.
    raw = bytes(image.constBits())
    stride = image.bytesPerLine()
    rows = b"".join(raw[y * stride:y * stride + width * 4] for y in reversed(range(height)))
    mask_stride = ((width + 31) // 32) * 4
    return header + rows + bytes(mask_stride * height)


def ico_bytes(images: dict[int, object]) -> bytes:
    entries = []
    for size in ICO_SIZES:
        image = images[size]
        entries.append((size, dib_bytes(image) if size <= ICO_DIB_MAX else png_bytes(image)))
    offset = 6 + 16 * len(entries)
    directory = struct.pack("<HHH", 0, 1, len(entries))
    blobs = b""
    for size, blob in entries:
        side = 0 if size == 256 else size  # a 0 in the directory means 256
        directory += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(blob), offset)
        offset += len(blob)
        blobs += blob
    return directory + blobs


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size]
                    for kind, size in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def write_icons(svg: Path, out_dir: Path) -> list[Path]:
    renderer = _renderer(svg)
    sizes = sorted(set(PNG_SIZES) | set(ICO_SIZES))
    images = {size: render(renderer, size) for size in sizes}
    pngs = {size: png_bytes(images[size]) for size in sizes}

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for size in PNG_SIZES:
        written.append(out_dir / f"koi-{size}.png")
        written[-1].write_bytes(pngs[size])
    written.append(out_dir / "koi.ico")
    written[-1].write_bytes(ico_bytes(images))
    written.append(out_dir / "koi.icns")
    written[-1].write_bytes(icns_bytes(pngs))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="render_icons.py",
        description="Render KOI's SVG icon to PNG sizes, a Windows .ico and a macOS .icns.")
    parser.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="directory to write into")
    parser.add_argument("--svg", type=Path, default=DEFAULT_SVG,
                        help="the SVG to render (default: resources/icons/koi.svg)")
    args = parser.parse_args(argv)
    try:
        written = write_icons(args.svg, args.out_dir)
    except IconError as exc:
        print(f"render_icons.py: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"render_icons.py: cannot write {args.out_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"render_icons.py: wrote {len(written)} files to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
