"""A hex view of one object's bytes, laid out as WinDbg's ``db`` prints memory.

    ffffb80c`4f203040  03 00 00 00 00 00 00 00-48 30 20 4f 0c b8 ff ff  ........H0 O....

Lines start at the object's address, 16 bytes each. A highlighted range (the
member selected in the structure tree) gets the selection colour in both the hex
and the character column; bytes no value of KOI's model wrote are grey; bytes that
changed since the previous update flash and fade. Only the visible lines are
painted, so a large structure costs nothing until it is scrolled into view.
"""

from __future__ import annotations

import time
from typing import Callable

from PySide6.QtCore import QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (QAction, QColor, QFontDatabase, QFontMetrics, QGuiApplication, QKeySequence,
                           QMouseEvent, QPainter, QPalette)
from PySide6.QtWidgets import QAbstractScrollArea, QMenu, QWidget

from core.values import format_address

BYTES_PER_LINE = 16
FLASH_SECONDS = 1.0
FLASH_INTERVAL_MS = 50
FLASH_COLOR = QColor(255, 176, 0)


def address_text(address: int, arch: str) -> str:
    """An address as ``db`` prints it at the start of a line (no ``0x``)."""
    return format_address(address, arch)[2:]


def _printable(byte: int) -> str:
    return chr(byte) if 0x20 <= byte < 0x7F else "."


class HexView(QAbstractScrollArea):
    """Bytes at an address, 16 per line, with one highlighted range."""

    offsetClicked = Signal(int)
    """The user clicked the byte at this offset from the start of the data."""

    def __init__(self, parent: QWidget | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        self.clock = clock
        self._address = 0
        self._arch = "x64"
        self._data = b""
        self._modelled: bytes | None = None
        self._highlight: tuple[int, int] | None = None
        self._flash_until: dict[int, float] = {}
        self._flash_timer = QTimer(self)
        self._flash_timer.setInterval(FLASH_INTERVAL_MS)
        self._flash_timer.timeout.connect(self.flash_tick)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.verticalScrollBar().setSingleStep(1)
        self.setToolTip("The object's bytes as WinDbg's db shows them. The selected member "
                        "is highlighted; grey bytes are members KOI does not model; click a "
                        "byte to select its member.")
        self.copy_action = QAction("&Copy Highlighted Lines", self)
        self.copy_action.setObjectName("hex_copy")
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.copy_action.setStatusTip("Copy the lines of the highlighted member as db text")
        self.copy_action.triggered.connect(lambda: self._copy(self.highlighted_text()))
        self.addAction(self.copy_action)
        self.copy_all_action = QAction("Copy &All as db Text", self)
        self.copy_all_action.setObjectName("hex_copy_all")
        self.copy_all_action.setStatusTip("Copy every line of the object as db text")
        self.copy_all_action.triggered.connect(lambda: self._copy(self.text()))

    # ---- Public API

    def set_bytes(self, address: int, data: bytes, modelled: bytes | None = None,
                  arch: str = "x64") -> None:
        """Show `data` at `address`. `modelled`, when given, marks per byte (non-zero)
        what KOI wrote. Bytes that differ from the previous call's at the same
        address flash."""
        data = bytes(data)
        if address == self._address and len(data) == len(self._data) and arch == self._arch:
            old = self._data
            until = self.clock() + FLASH_SECONDS
            for i in (i for i in range(len(data)) if data[i] != old[i]):
                self._flash_until[i] = until
        else:
            self._flash_until.clear()
        self._address, self._data, self._arch = address, data, arch
        self._modelled = bytes(modelled) if modelled is not None else None
        if self._highlight is not None and self._highlight[0] >= len(data):
            self._highlight = None
        if self._flash_until and not self._flash_timer.isActive():
            self._flash_timer.start()
        self._update_scrollbar()
        self.viewport().update()

    def clear(self) -> None:
        self._data = b""
        self._modelled = None
        self._highlight = None
        self._flash_until.clear()
        self._flash_timer.stop()
        self._update_scrollbar()
        self.viewport().update()

    @property
    def address(self) -> int:
        return self._address

    def data(self) -> bytes:
        return self._data

    def set_highlight(self, start: int | None, length: int = 0, *, scroll: bool = True) -> None:
        """Highlight `length` bytes from offset `start` (None: nothing) and scroll
        them into view."""
        if start is None or length <= 0 or start >= len(self._data):
            self._highlight = None
        else:
            self._highlight = (start, min(length, len(self._data) - start))
            if scroll:
                self._scroll_to(start, self._highlight[1])
        self.viewport().update()

    def highlight(self) -> tuple[int, int] | None:
        """(offset, length) of the highlighted bytes, or None."""
        return self._highlight

    def line_count(self) -> int:
        return (len(self._data) + BYTES_PER_LINE - 1) // BYTES_PER_LINE

    def line_text(self, line: int) -> str:
        """Line `line` as ``db`` prints it."""
        start = line * BYTES_PER_LINE
        chunk = self._data[start:start + BYTES_PER_LINE]
        cells = [f"{b:02x}" for b in chunk] + ["  "] * (BYTES_PER_LINE - len(chunk))
        hex_part = " ".join(cells[:8]) + ("-" if len(chunk) > 8 else " ") + " ".join(cells[8:])
        return (f"{address_text(self._address + start, self._arch)}  {hex_part}  "
                + "".join(_printable(b) for b in chunk))

    def text(self) -> str:
        return "\n".join(self.line_text(i) for i in range(self.line_count()))

    def highlighted_text(self) -> str:
        """The lines the highlighted range touches (for copying)."""
        if self._highlight is None:
            return ""
        start, length = self._highlight
        first, last = start // BYTES_PER_LINE, (start + length - 1) // BYTES_PER_LINE
        return "\n".join(self.line_text(i) for i in range(first, last + 1))

    def is_flashing(self, offset: int) -> bool:
        until = self._flash_until.get(offset)
        return until is not None and until > self.clock()

    @property
    def flashing_count(self) -> int:
        return len(self._flash_until)

    def flash_tick(self) -> None:
        """Fade flashing bytes one step; forget those whose time is over."""
        now = self.clock()
        for offset in [o for o, until in self._flash_until.items() if until <= now]:
            del self._flash_until[offset]
        if not self._flash_until:
            self._flash_timer.stop()
        self.viewport().update()

    def offset_at(self, pos: QPoint) -> int | None:
        """The byte under viewport position `pos` (hex or character column), or None."""
        fm = QFontMetrics(self.font())
        width = fm.horizontalAdvance("0")
        line = self.verticalScrollBar().value() + pos.y() // fm.lineSpacing()
        column = (pos.x() + self.horizontalScrollBar().value()) // width
        hex_start = self._address_chars() + 2
        ascii_start = hex_start + BYTES_PER_LINE * 3 + 1
        if hex_start <= column < hex_start + BYTES_PER_LINE * 3 - 1:
            index = (column - hex_start) // 3
        elif ascii_start <= column < ascii_start + BYTES_PER_LINE:
            index = column - ascii_start
        else:
            return None
        offset = line * BYTES_PER_LINE + index
        return offset if 0 <= offset < len(self._data) else None

    # ---- Qt

    def sizeHint(self) -> QSize:
        fm = QFontMetrics(self.font())
        width = fm.horizontalAdvance("0") * (self._line_chars() + 2)
        return QSize(width + self.verticalScrollBar().sizeHint().width(), fm.lineSpacing() * 12)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_scrollbar()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            offset = self.offset_at(event.position().toPoint())
            if offset is not None:
                self.offsetClicked.emit(offset)
        super().mousePressEvent(event)

    def contextMenuEvent(self, event) -> None:
        self.copy_action.setEnabled(self._highlight is not None)
        self.copy_all_action.setEnabled(bool(self._data))
        menu = QMenu(self)
        menu.addAction(self.copy_action)
        menu.addAction(self.copy_all_action)
        menu.exec(event.globalPos())

    def paintEvent(self, event) -> None:
        painter = QPainter(self.viewport())
        palette = self.palette()
        fm = QFontMetrics(self.font())
        width, height, ascent = fm.horizontalAdvance("0"), fm.lineSpacing(), fm.ascent()
        text_color = palette.color(QPalette.ColorRole.Text)
        grey = palette.color(QPalette.ColorRole.PlaceholderText)
        address_color = palette.color(QPalette.ColorRole.PlaceholderText)
        selection = palette.color(QPalette.ColorRole.Highlight)
        selected_text = palette.color(QPalette.ColorRole.HighlightedText)
        painter.fillRect(event.rect(), palette.color(QPalette.ColorRole.Base))
        x0 = -self.horizontalScrollBar().value()
        first = self.verticalScrollBar().value()
        visible = self.viewport().height() // height + 2
        hex_col = self._address_chars() + 2
        ascii_col = hex_col + BYTES_PER_LINE * 3 + 1
        now = self.clock()
        lo, hi = (self._highlight[0], sum(self._highlight)) if self._highlight else (-1, -1)
        for line in range(first, min(self.line_count(), first + visible)):
            y = (line - first) * height
            painter.setPen(address_color)
            painter.drawText(x0, y + ascent, address_text(self._address + line * BYTES_PER_LINE, self._arch))
            start = line * BYTES_PER_LINE
            chunk = self._data[start:start + BYTES_PER_LINE]
            for i, byte in enumerate(chunk):
                offset = start + i
                hx = x0 + (hex_col + 3 * i) * width
                ax = x0 + (ascii_col + i) * width
                selected = lo <= offset < hi
                background = None
                if selected:
                    background = selection
                else:
                    until = self._flash_until.get(offset)
                    if until is not None and until > now:
                        background = QColor(FLASH_COLOR)
                        background.setAlpha(int(40 + 180 * min(1.0, (until - now) / FLASH_SECONDS)))
                if background is not None:
                    # the cell and, inside a highlighted run, the gap to the next byte
                    span = 3 if selected and offset + 1 < hi and i + 1 < len(chunk) else 2
                    painter.fillRect(QRect(hx, y, width * span, height), background)
                    painter.fillRect(QRect(ax, y, width, height), background)
                if selected:
                    painter.setPen(selected_text)
                elif self._modelled is not None and not self._modelled[offset]:
                    painter.setPen(grey)
                else:
                    painter.setPen(text_color)
                painter.drawText(hx, y + ascent, f"{byte:02x}")
                painter.drawText(ax, y + ascent, _printable(byte))
                if i == 7 and len(chunk) > 8:
                    painter.setPen(grey)
                    painter.drawText(hx + 2 * width, y + ascent, "-")
        painter.end()

    # ---- Helpers

    @staticmethod
    def _copy(text: str) -> None:
        if text:
            QGuiApplication.clipboard().setText(text)

    def _address_chars(self) -> int:
        return len(address_text(self._address, self._arch))

    def _line_chars(self) -> int:
        return self._address_chars() + 2 + BYTES_PER_LINE * 3 + 1 + BYTES_PER_LINE

    def _update_scrollbar(self) -> None:
        fm = QFontMetrics(self.font())
        page = max(1, self.viewport().height() // fm.lineSpacing())
        bar = self.verticalScrollBar()
        bar.setPageStep(page)
        bar.setRange(0, max(0, self.line_count() - page))
        hbar = self.horizontalScrollBar()
        content = fm.horizontalAdvance("0") * self._line_chars()
        hbar.setPageStep(max(1, self.viewport().width()))
        hbar.setRange(0, max(0, content - self.viewport().width()))

    def _scroll_to(self, start: int, length: int) -> None:
        fm = QFontMetrics(self.font())
        page = max(1, self.viewport().height() // fm.lineSpacing())
        first, last = start // BYTES_PER_LINE, (start + length - 1) // BYTES_PER_LINE
        bar = self.verticalScrollBar()
        if first < bar.value() or last >= bar.value() + page:
            lines = last - first + 1
            # centred when it fits, else its first line near the top
            bar.setValue(max(0, first - (page - lines) // 2) if lines < page else max(0, first - 1))
