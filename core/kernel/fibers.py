"""Fibers and fiber-local storage (§7): FiberOps, mixed into Machine.

(Being written: see the fibers helper's contract.)
"""

from __future__ import annotations


class FiberOps:
    def _fiber_step(self, t, c: int, st) -> bool:
        raise NotImplementedError("fibers")

    def _fiber_thread_exit(self, t) -> None:
        pass

    def _fiber_state(self, t) -> tuple:
        return None, []
