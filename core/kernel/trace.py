"""The context-switch trace: one row per switch, held in compact numpy columns.

Rows are staged in one `array.array` (C storage, no Python object kept per switch) and
moved into per-column numpy chunks every CHUNK rows.  30 bytes per switch:
time int64, cpu uint16, old/new tid int32, old/new pid int32, old/new priority int8,
old state int8, old wait reason int8 (-1 = none).
"""

from __future__ import annotations

from array import array

import numpy as np

from .constants import KTHREAD_STATE, KWAIT_REASON, cycles_to_us_text

CSV_HEADER = (
    "time_us,cpu,old_pid,old_tid,old_priority,old_state,old_wait_reason,"
    "new_pid,new_tid,new_priority"
)

# (column name, array typecode, numpy dtype)
COLUMNS = (
    ("time", "q", np.int64),
    ("cpu", "H", np.uint16),
    ("old_tid", "i", np.int32),
    ("new_tid", "i", np.int32),
    ("old_pid", "i", np.int32),
    ("new_pid", "i", np.int32),
    ("old_priority", "b", np.int8),
    ("new_priority", "b", np.int8),
    ("old_state", "b", np.int8),
    ("old_wait_reason", "b", np.int8),
)
BYTES_PER_SWITCH = sum(np.dtype(dt).itemsize for _, _, dt in COLUMNS)


class ContextSwitchTrace:
    """Rows are staged as 10 int64s in one C array (one `extend` call per switch, no
    Python object kept) and converted to compact per-column numpy chunks every CHUNK rows."""

    CHUNK = 1 << 15

    __slots__ = ("_stage", "_chunks", "_cached", "extend")

    def __init__(self) -> None:
        self._stage = array("q")
        self.extend = self._stage.extend  # hot path: extend((time, cpu, old_tid, ...))
        self._chunks: list[list[np.ndarray]] = [[] for _ in COLUMNS]
        self._cached = None

    def append(self, time, cpu, old_tid, new_tid, old_pid, new_pid, old_pri, new_pri,
               old_state, old_wr) -> None:
        self._stage.extend((time, cpu, old_tid, new_tid, old_pid, new_pid, old_pri, new_pri,
                            old_state, old_wr))
        self.maybe_flush()

    def maybe_flush(self) -> None:
        if len(self._stage) >= self.CHUNK * 10:
            self._flush()

    def _flush(self) -> None:
        if not self._stage:
            return
        rows = np.frombuffer(self._stage, dtype=np.int64).reshape(-1, len(COLUMNS))
        for i, (_, _, dt) in enumerate(COLUMNS):
            self._chunks[i].append(rows[:, i].astype(dt))
        del rows
        del self._stage[:]  # keep the same array object: `extend` stays bound to it
        self._cached = None

    @property
    def _staged(self) -> int:
        return len(self._stage) // len(COLUMNS)

    def __len__(self) -> int:
        return sum(len(c) for c in self._chunks[0]) + self._staged

    def columns(self) -> dict[str, np.ndarray]:
        """Every column as one numpy array (times in cycles)."""
        self._flush()
        if self._cached is None:
            self._cached = {
                name: (np.concatenate(self._chunks[i]) if self._chunks[i] else np.empty(0, dt))
                for i, (name, _, dt) in enumerate(COLUMNS)
            }
            # keep one chunk per column: repeated calls stay cheap to walk
            self._chunks = [[self._cached[name]] if len(self._cached[name]) else []
                            for name, _, _ in COLUMNS]
        return self._cached

    def columns_since(self, row: int) -> dict[str, np.ndarray]:
        """Rows from `row` on, copying only those (views that follow a running machine
        take what is new each frame; nothing is flushed or merged here)."""
        staged = np.frombuffer(self._stage, dtype=np.int64).reshape(-1, len(COLUMNS))
        out = {}
        for i, (name, _, dt) in enumerate(COLUMNS):
            parts, start = [], 0
            for chunk in self._chunks[i]:
                end = start + len(chunk)
                if end > row:
                    parts.append(chunk[max(0, row - start):])
                start = end
            parts.append(staged[max(0, row - start):, i].astype(dt))
            out[name] = np.concatenate(parts)
        del staged  # release the buffer export so the stage can grow again
        return out

    def nbytes(self) -> int:
        """Bytes held for the rows (numpy chunks plus staged C arrays)."""
        total = sum(a.nbytes for col in self._chunks for a in col)
        return total + len(self._stage) * 8  # staged rows are 10 int64 until flushed

    def rows(self):
        """Rows as tuples in formats.md §3 column order with names resolved (for tests)."""
        cols = self.columns()
        order = np.lexsort((cols["cpu"], cols["time"]))  # stable: time, then CPU
        for i in order:
            wr = int(cols["old_wait_reason"][i])
            yield (
                int(cols["time"][i]), int(cols["cpu"][i]), int(cols["old_pid"][i]),
                int(cols["old_tid"][i]), int(cols["old_priority"][i]),
                KTHREAD_STATE[int(cols["old_state"][i])], KWAIT_REASON[wr] if wr >= 0 else "",
                int(cols["new_pid"][i]), int(cols["new_tid"][i]), int(cols["new_priority"][i]),
            )

    def to_csv(self) -> str:
        """The --cswitch-csv text of formats.md §3 (header, rows by time then CPU)."""
        out = [CSV_HEADER]
        for r in self.rows():
            out.append(f"{cycles_to_us_text(r[0])},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]},{r[6]},"
                       f"{r[7]},{r[8]},{r[9]}")
        return "\n".join(out) + "\n"
