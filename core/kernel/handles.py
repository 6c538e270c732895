"""Handle tables and OpenProcess access checks (§9): HandleOps, mixed into Machine.

(Being written: see the handles helper's contract.)
"""

from __future__ import annotations


class HandleOps:
    def _close_all_handles(self, process) -> None:
        pass

    def _handle_count(self, process) -> int:
        return 0
