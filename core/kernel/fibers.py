"""Fibers and fiber-local storage (§7): FiberOps, mixed into Machine.

A fiber is user-mode state the kernel never sees (§7.1).  A thread that has a fiber
selected runs that fiber's program: `Thread.program/pc/step_rem/kmode` are the selected
fiber's live position, and SwitchToFiber saves them into the current `Fiber` and loads
the target's.  Nothing the scheduler reads (priority, quantum, state, wait reason,
affinity, TID, context switches, the trace) is touched by any call here, so a switch is
invisible to the dispatcher and the quantum keeps counting down across it.

FLS (§7.6).  An FLS data block is a dict {index: value} (0 values are not stored).
`Thread.fls` is the block the thread's TEB points at (TEB->FlsData): the thread's own
block while it is not a fiber, the selected fiber's block while it is one.
ConvertThreadToFiber hands the thread's block to the new fiber and ConvertFiberToThread
leaves the fiber's block with the thread (as ReactOS `fiber.c` does).  Indexes are per
process: `Process.fls_slots` maps each allocated index to its slot name.

Choices where the sources are silent or the real behaviour is a crash:
- Fibers are named per process (§7.3: a thread may switch to a fiber another thread of
  its process created).  Creating a fiber under a name already in use rebinds the name
  to the new fiber, as assigning a second CreateFiber result to the same variable does;
  the older fiber lives on under its address.  A converted thread's fiber is named after
  the thread, with "#2", "#3"... if that name is still taken.  The same holds for FLS
  slot names: the name refers to its most recent FlsAlloc.
- SwitchToFiber to a fiber selected on another thread, and DeleteFiber of a fiber
  selected on another thread, corrupt or crash the process on Windows (§7.4 "likely to
  crash"); the simulation refuses both with ERROR_INVALID_PARAMETER instead of guessing
  at the crash.  SwitchToFiber from a thread that is not a fiber, or to an unknown or
  deleted fiber, is refused the same way.  SwitchToFiber to the running fiber is a no-op.
- Thread exit runs the callbacks of the thread's current FLS block (what TEB->FlsData
  points at: the selected fiber's, or the thread's own), and the selected fiber ends with
  the thread.  Fibers not selected live on (another thread may still switch to them)
  until DeleteFiber or the end of the process, and keep their FLS values until
  DeleteFiber or FlsFree.
- A fiber's address (what CreateFiber returns, GetCurrentFiber and TEB NtTib.FiberData
  give) comes from a per-process range, 0x100 apart: 0x1F0`00000000 up on 64-bit
  Windows, 0x01F00000 up on 32-bit Windows (`windows_arch` "x86"), where a pointer
  has 32 bits.
- FlsFree visits the process's FLS blocks in the order they got their first value
  (ReactOS keeps them on Peb->FlsListHead in that order).
- FLS_MAXIMUM_AVAILABLE is `Machine.fls_maximum` (default 128, phnt headers; 4080 per
  newer SDK headers, §7.6).  Index 0 is never handed out (ReactOS), so 127 (or 4079)
  allocations succeed.
"""

from __future__ import annotations

import heapq

from .constants import (
    ERROR_ALREADY_FIBER,
    ERROR_ALREADY_THREAD,
    ERROR_INVALID_PARAMETER,
    ERROR_NO_MORE_ITEMS,
    ERROR_NOT_SUPPORTED,
    RUNNING,
    TERMINATED,
)
from .objects import Fiber

FIBER_FLAG_FLOAT_SWITCH = 0x1  # the only valid ConvertThreadToFiberEx/CreateFiberEx flag (§7.2)
FLS_OUT_OF_INDEXES = 0xFFFFFFFF  # FlsAlloc's failure value (§7.6)
DEFAULT_FLS_MAXIMUM = 128  # FLS_MAXIMUM_AVAILABLE in phnt / older SDK headers (§7.6)
DEFAULT_STACK_RESERVE = 1 << 20  # stack size 0: the executable's default, 1 MB (§7.3)
FIBER_HEAP_BASE = 0x0000_01F0_0000_0000  # where a process's fiber structures are allocated
FIBER_HEAP_BASE_X86 = 0x01F0_0000  # the same, below 4 GB, for 32-bit Windows
FIBER_HEAP_STEP = 0x100
POINTER_LIMIT = 1 << 64  # FLS values and fiber parameters are pointers (PVOID)

# UMS (§7.7): x64 Windows 7 / Server 2008 R2 (build 7600) up to Windows 10 21H2 /
# Server 2022 (build 20348); Windows 11 (build 22000 and later), ARM64 and 32-bit
# Windows fail every UMS call with ERROR_NOT_SUPPORTED.
UMS_FIRST_BUILD = 7600
UMS_FIRST_UNSUPPORTED_BUILD = 22000
UMS_ARCHES = ("x64",)


class _ProcessFibers:
    """A process's fibers and FLS bookkeeping (kept by the machine, keyed by pid)."""

    __slots__ = ("by_name", "by_address", "next_address", "fls_names", "fls_free",
                 "fls_next", "fls_silent", "fls_blocks")

    def __init__(self, heap_base: int = FIBER_HEAP_BASE) -> None:
        self.by_name: dict[str, Fiber] = {}  # live fibers by (most recent) name
        self.by_address: dict[int, Fiber] = {}  # every live fiber, in creation order
        self.next_address = heap_base
        self.fls_names: dict[str, int] = {}  # slot name -> index of its latest FlsAlloc
        self.fls_free: list[int] = []  # freed indexes below fls_next (a min-heap)
        self.fls_next = 1  # lowest index never handed out; ReactOS never hands out 0
        self.fls_silent: set[int] = set()  # indexes allocated with FlsAlloc(NULL)
        self.fls_blocks: dict[int, dict] = {}  # id -> FLS block, in first-value order


class FiberOps:
    """The fiber, FLS and UMS calls of Machine.  Every call takes the calling thread
    first; a failed call returns the Win32 failure value and reports api_error."""

    # ------------------------------------------------------------------ bookkeeping
    def _fiber_table(self, proc) -> _ProcessFibers:
        tables = self.__dict__.get("_fiber_tables")
        if tables is None:
            tables = self._fiber_tables = {}
        table = tables.get(proc.pid)  # the machine never reuses a CID
        if table is None:
            # a fiber address is a pointer: 32-bit Windows allocates it below 4 GB
            x86 = str(self.windows_arch).lower() == "x86"
            base = FIBER_HEAP_BASE_X86 if x86 else FIBER_HEAP_BASE
            table = tables[proc.pid] = _ProcessFibers(base)
        return table

    def _fiber_caller(self, t) -> None:
        if t.is_idle or t.state == TERMINATED:
            from .machine import KernelError

            raise KernelError(f"thread {t.tid} ({t.name}) cannot call the fiber API: "
                              + ("it is an idle thread" if t.is_idle else "it has exited"))

    def _fiber_error(self, op: str, error: int, t, **subject) -> None:
        self.api_error(op, error, tid=t.tid, name=t.name, **subject)

    def _find_fiber(self, table: _ProcessFibers, fiber) -> Fiber | None:
        """A live fiber of the process by name, address or object."""
        if isinstance(fiber, Fiber):
            found = table.by_address.get(fiber.address)
            return found if found is fiber else None
        if isinstance(fiber, str):
            return table.by_name.get(fiber)
        if isinstance(fiber, int):
            return table.by_address.get(fiber)
        return None

    @staticmethod
    def _fiber_label(fiber) -> str | int | None:
        if isinstance(fiber, Fiber):
            return fiber.name
        return fiber if isinstance(fiber, (str, int)) else repr(fiber)

    def _new_fiber(self, table: _ProcessFibers, name: str, parameter: int, owner, program,
                   reserve: int, commit: int, flags: int, converted: bool) -> Fiber:
        address = table.next_address
        table.next_address += FIBER_HEAP_STEP
        f = Fiber(name, address, parameter, owner, program, reserve, commit, flags, converted)
        table.by_address[address] = f
        table.by_name[name] = f
        owner.fibers.append(f)
        return f

    def _retire_fiber(self, table: _ProcessFibers, f: Fiber, drop_fls: bool = True) -> None:
        """The fiber's memory is freed: it leaves every list (its FLS block too, unless
        ConvertFiberToThread leaves the block with the thread)."""
        f.deleted = True
        f.thread = None
        table.by_address.pop(f.address, None)
        if table.by_name.get(f.name) is f:
            del table.by_name[f.name]
        if f in f.owner.fibers:
            f.owner.fibers.remove(f)
        if drop_fls:
            table.fls_blocks.pop(id(f.fls), None)
            f.fls = {}

    @staticmethod
    def _pointer(value, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < POINTER_LIMIT:
            from .machine import KernelError

            raise KernelError(f"{what} must be a pointer-sized integer 0..0xFFFFFFFFFFFFFFFF, "
                              f"not {value!r}")
        return value

    # ------------------------------------------------------------------ fibers (§7.2-7.5)
    def convert_thread_to_fiber(self, t, parameter: int = 0, flags: int = 0) -> int | None:
        """ConvertThreadToFiberEx(lpParameter, dwFlags) (§7.2): the thread becomes its
        first fiber, named after the thread; returns the fiber address, or None with
        ERROR_INVALID_PARAMETER (flags other than FIBER_FLAG_FLOAT_SWITCH) or
        ERROR_ALREADY_FIBER (already a fiber), checked in ReactOS's order."""
        self._fiber_caller(t)
        parameter = self._pointer(parameter, "the fiber parameter")
        if flags & ~FIBER_FLAG_FLOAT_SWITCH:
            self._fiber_error("fiber_convert", ERROR_INVALID_PARAMETER, t, flags=flags)
            return None
        if t.fiber is not None:
            self._fiber_error("fiber_convert", ERROR_ALREADY_FIBER, t)
            return None
        table = self._fiber_table(t.process)
        base = t.name or f"tid{t.tid}"
        name, k = base, 1
        while name in table.by_name:
            k += 1
            name = f"{base}#{k}"
        f = self._new_fiber(table, name, parameter, t, t.program, DEFAULT_STACK_RESERVE, 0,
                            flags, True)
        f.fls = t.fls  # the thread's FLS block becomes the fiber's
        f.thread = t
        t.fiber = f
        return f.address

    def create_fiber(self, t, name: str, program, parameter: int = 0, stack_reserve: int = 0,
                     stack_commit: int = 0, flags: int = 0) -> int | None:
        """CreateFiberEx(commit, reserve, flags, start, parameter) (§7.3): a fiber named
        `name` in t's process that will run `program` (a sequence of program steps, or a
        zero-argument callable returning one, resolved now).  It does not run until a
        SwitchToFiber selects it.  A reserve of 0 is the 1 MB default; a commit of 0 is
        kept as 0, "the executable's default".  Returns the fiber address, or None with
        ERROR_INVALID_PARAMETER for bad flags or negative sizes."""
        self._fiber_caller(t)
        if not isinstance(name, str) or not name:
            from .machine import KernelError

            raise KernelError(f"a fiber needs a non-empty name, not {name!r}")
        parameter = self._pointer(parameter, "the fiber parameter")
        if flags & ~FIBER_FLAG_FLOAT_SWITCH or stack_reserve < 0 or stack_commit < 0:
            self._fiber_error("fiber_create", ERROR_INVALID_PARAMETER, t, fiber=name)
            return None
        steps = tuple(program() if callable(program) else program)
        for step in steps:
            if not (isinstance(step, tuple) and step and isinstance(step[0], int)):
                from .machine import KernelError

                raise KernelError(f"fiber {name!r}: {step!r} is not a program step")
        table = self._fiber_table(t.process)
        f = self._new_fiber(table, name, parameter, t, steps,
                            stack_reserve or DEFAULT_STACK_RESERVE, stack_commit, flags, False)
        return f.address

    def switch_to_fiber(self, t, fiber) -> bool:
        """SwitchToFiber(lpFiber) (§7.1, §7.3): save the running fiber's position and
        continue in `fiber` (a name, address or Fiber of t's process, possibly created by
        another of its threads).  The scheduler sees nothing: priority, quantum, state,
        TID and the context-switch trace are untouched.  False with
        ERROR_INVALID_PARAMETER if t is not a fiber or the target is unknown, deleted, or
        selected on another thread (a crash on Windows)."""
        self._fiber_caller(t)
        label = self._fiber_label(fiber)
        cur = t.fiber
        if cur is None:
            self._fiber_error("fiber_switch", ERROR_INVALID_PARAMETER, t, fiber=label)
            return False
        target = self._find_fiber(self._fiber_table(t.process), fiber)
        if target is None or (target.thread is not None and target.thread is not t):
            self._fiber_error("fiber_switch", ERROR_INVALID_PARAMETER, t, fiber=label)
            return False
        if target is cur:
            return True
        if t.step_rem > 0:
            from .machine import KernelError

            raise KernelError(f"thread {t.tid} is inside a CPU step: SwitchToFiber runs on "
                              "the calling thread (a program step or program.call)")
        # Save the running fiber (it resumes after this step) and load the target
        cur.program, cur.pc, cur.step_rem, cur.kmode = t.program, t.pc, 0, t.kmode
        cur.thread = None
        t.program, t.pc, t.step_rem, t.kmode = (target.program, target.pc, target.step_rem,
                                                target.kmode)
        target.thread = t
        target.started = True
        t.fiber = target
        t.fls = target.fls  # FLS switches with the fiber (§7.6)
        return True

    def delete_fiber(self, t, fiber) -> bool:
        """DeleteFiber(lpFiber) (§7.4).  Deleting the running fiber ends the thread with
        ExitThread(1) (ReactOS); deleting a fiber that is not running runs its FLS
        callbacks and frees it.  False with ERROR_INVALID_PARAMETER for an unknown fiber
        or one selected on another thread (a crash on Windows)."""
        self._fiber_caller(t)
        table = self._fiber_table(t.process)
        f = self._find_fiber(table, fiber)
        if f is None or (f.thread is not None and f.thread is not t):
            self._fiber_error("fiber_delete", ERROR_INVALID_PARAMETER, t,
                              fiber=self._fiber_label(fiber))
            return False
        if f is t.fiber:
            self._exit_thread(t, 1)  # its thread calls ExitThread (§7.4)
            if not f.deleted:  # the exit hook only runs for threads with fibers or FLS
                self._retire_fiber(table, f)
            return True
        self._fls_rundown(t, table, f.fls, f.name)  # BaseRundownFls (§7.4)
        self._retire_fiber(table, f)
        return True

    def convert_fiber_to_thread(self, t) -> bool:
        """ConvertFiberToThread (§7.2): frees the running fiber's data; the thread keeps
        running its code and keeps its FLS block.  False with ERROR_ALREADY_THREAD if t
        is not a fiber."""
        self._fiber_caller(t)
        f = t.fiber
        if f is None:
            self._fiber_error("fiber_to_thread", ERROR_ALREADY_THREAD, t)
            return False
        t.fiber = None
        self._retire_fiber(self._fiber_table(t.process), f, drop_fls=False)
        return True

    def get_current_fiber(self, t) -> int | None:
        """GetCurrentFiber (§7.5): the selected fiber's address (None: not a fiber)."""
        return None if t.fiber is None else t.fiber.address

    def get_fiber_data(self, t) -> int | None:
        """GetFiberData (§7.5): the selected fiber's parameter (None: not a fiber)."""
        return None if t.fiber is None else t.fiber.parameter

    def is_thread_a_fiber(self, t) -> bool:
        """IsThreadAFiber (§7.2): TEB->HasFiberData."""
        return t.fiber is not None

    # ------------------------------------------------------------------ FLS (§7.6)
    def _fls_index(self, t, slot) -> int | None:
        slots = t.process.fls_slots
        if isinstance(slot, str):
            return self._fiber_table(t.process).fls_names.get(slot)
        if isinstance(slot, int) and not isinstance(slot, bool) and slot in slots:
            return slot
        return None

    def fls_alloc(self, t, slot_name: str, callback: bool = True) -> int:
        """FlsAlloc(callback): the lowest free index of t's process (never 0), its value 0
        in every fiber and thread; `slot_name` names it for later calls.  `callback`
        False is FlsAlloc(NULL).  FLS_OUT_OF_INDEXES (0xFFFFFFFF) with
        ERROR_NO_MORE_ITEMS once the indexes below `fls_maximum` are taken."""
        self._fiber_caller(t)
        if not isinstance(slot_name, str) or not slot_name:
            from .machine import KernelError

            raise KernelError(f"an FLS slot needs a non-empty name, not {slot_name!r}")
        proc = t.process
        table = self._fiber_table(proc)
        maximum = self.fls_maximum
        free = table.fls_free
        if free and free[0] < maximum:
            index = heapq.heappop(free)
        elif table.fls_next < maximum:
            index = table.fls_next
            table.fls_next += 1
        else:
            self._fiber_error("fls_alloc", ERROR_NO_MORE_ITEMS, t, slot=slot_name)
            return FLS_OUT_OF_INDEXES
        proc.fls_slots[index] = slot_name
        table.fls_names[slot_name] = index
        if callback:
            table.fls_silent.discard(index)
        else:
            table.fls_silent.add(index)
        return index

    def fls_set_value(self, t, slot, value: int) -> bool:
        """FlsSetValue(index, value) on the running fiber's block (the thread's own when
        it is not a fiber).  False with ERROR_INVALID_PARAMETER for an index that is not
        allocated."""
        self._fiber_caller(t)
        value = self._pointer(value, "an FLS value")
        index = self._fls_index(t, slot)
        if index is None:
            self._fiber_error("fls_set", ERROR_INVALID_PARAMETER, t, slot=slot)
            return False
        block = t.fls
        blocks = self._fiber_table(t.process).fls_blocks
        if id(block) not in blocks:
            blocks[id(block)] = block  # first use: the block joins the process's list
        if value:
            block[index] = value
        else:
            block.pop(index, None)
        return True

    def fls_get_value(self, t, slot) -> int | None:
        """FlsGetValue(index): the running fiber's value (0 if never set), with last error
        ERROR_SUCCESS; None with ERROR_INVALID_PARAMETER for an index not allocated."""
        index = self._fls_index(t, slot)
        if index is None:
            self._fiber_error("fls_get", ERROR_INVALID_PARAMETER, t, slot=slot)
            return None
        self.last_error = 0
        return t.fls.get(index, 0)

    def fls_free(self, t, slot) -> bool:
        """FlsFree(index): the callback runs for every fiber and thread of the process
        holding a non-zero value, the values are cleared and the index is freed (ReactOS).
        False with ERROR_INVALID_PARAMETER for an index not allocated."""
        self._fiber_caller(t)
        index = self._fls_index(t, slot)
        if index is None:
            self._fiber_error("fls_free", ERROR_INVALID_PARAMETER, t, slot=slot)
            return False
        proc = t.process
        table = self._fiber_table(proc)
        name = proc.fls_slots[index]
        silent = index in table.fls_silent
        for block in tuple(table.fls_blocks.values()):
            value = block.pop(index, 0)
            if value and not silent:
                self._fls_callback(t, index, name, value, self._fls_owner(table, block))
        del proc.fls_slots[index]
        if table.fls_names.get(name) == index:
            del table.fls_names[name]
        table.fls_silent.discard(index)
        heapq.heappush(table.fls_free, index)
        return True

    def _fls_owner(self, table: _ProcessFibers, block: dict) -> str | None:
        for f in table.by_address.values():
            if f.fls is block:
                return f.name
        return None  # a thread's own block

    def _fls_callback(self, t, index: int, name: str, value: int, fiber: str | None) -> None:
        """The slot's PFLS_CALLBACK_FUNCTION(value) runs on t; made visible as an event."""
        if self._subs:
            self._emit("fls_callback", pid=t.pid, tid=t.tid, slot=name, index=index,
                       value=value, fiber=fiber)

    def _fls_rundown(self, t, table: _ProcessFibers, block: dict, fiber: str | None) -> None:
        """Run the callbacks for a block's non-zero values (fiber deletion, thread exit)
        in index order, then drop the block."""
        slots = t.process.fls_slots
        for index in sorted(block):
            value = block[index]
            if value and index in slots and index not in table.fls_silent:
                self._fls_callback(t, index, slots[index], value, fiber)
        block.clear()
        table.fls_blocks.pop(id(block), None)

    # ------------------------------------------------------------------ dispatcher hooks
    def _fiber_step(self, t, c: int, st) -> bool:
        """Execute an (OP_FIBER, what, ...) step on the running thread t.  True if t left
        the CPU (DeleteFiber of its running fiber exits it)."""
        what = st[1]
        if what == "switch":
            t.last_result = self.switch_to_fiber(t, st[2])
        elif what == "fls_set":
            t.last_result = self.fls_set_value(t, st[2], st[3])
        elif what == "convert":
            t.last_result = self.convert_thread_to_fiber(t, st[2], st[3])
        elif what == "create":
            t.last_result = self.create_fiber(t, st[2], st[3], st[4], st[5])
        elif what == "delete":
            t.last_result = self.delete_fiber(t, st[2])
        elif what == "to_thread":
            t.last_result = self.convert_fiber_to_thread(t)
        elif what == "fls_alloc":
            t.last_result = self.fls_alloc(t, st[2])
        elif what == "fls_free":
            t.last_result = self.fls_free(t, st[2])
        else:
            from .machine import KernelError

            raise KernelError(f"unknown fiber step {what!r}")
        return t.state != RUNNING

    def _fiber_thread_exit(self, t, run_callbacks: bool = True) -> None:
        """Thread exit (§7.6): the callbacks of the thread's current FLS block run; the
        selected fiber ends with the thread.  `run_callbacks` False is TerminateThread /
        TerminateProcess, which run no user-mode code in the thread (§8.4)."""
        table = self._fiber_table(t.process)
        f = t.fiber
        if run_callbacks:
            self._fls_rundown(t, table, t.fls, None if f is None else f.name)
        else:
            t.fls.clear()
            table.fls_blocks.pop(id(t.fls), None)
        if f is not None:
            t.fiber = None
            self._retire_fiber(table, f)

    def _fiber_state(self, t) -> tuple:
        """(current fiber name or None, the fibers t created or converted) for state()."""
        cur = t.fiber
        fibers = []
        if t.fibers:
            slots = t.process.fls_slots
            for f in t.fibers:
                if f.deleted:
                    continue
                sel = f.thread
                fibers.append({
                    "name": f.name, "address": f.address, "parameter": f.parameter,
                    "selected_by": None if sel is None else sel.tid, "current": sel is t,
                    "converted": f.converted, "started": f.started, "deleted": f.deleted,
                    "stack_reserve": f.stack_reserve,
                    "fls": {slots.get(i, str(i)): v for i, v in sorted(f.fls.items()) if v},
                })
        return (None if cur is None else cur.name), fibers

    # ------------------------------------------------------------------ UMS (§7.7)
    def ums_supported(self) -> bool:
        """Whether this machine's Windows has user-mode scheduling: x64 builds 7600
        (Windows 7) up to Windows 10 / Server 2022; not Windows 11 (22000+), not 32-bit or
        ARM64.  Reads `windows_build` ("10.0.19041", "10.0.19041.3570" or "19041") and
        `windows_arch` ("x64", "x86", "arm64")."""
        build = str(self.windows_build)
        arch = str(self.windows_arch).lower()
        parts = build.split(".")
        try:
            number = int(parts[2] if len(parts) >= 3 else parts[-1])
        except ValueError:
            from .machine import KernelError

            raise KernelError(f"cannot read a build number from windows_build {build!r}") from None
        return arch in UMS_ARCHES and UMS_FIRST_BUILD <= number < UMS_FIRST_UNSUPPORTED_BUILD

    def ums_call(self, t, op: str) -> bool:
        """A UMS call (CreateUmsCompletionList, EnterUmsSchedulingMode, ...).  Where UMS
        does not exist, "all calls fail with the error ERROR_NOT_SUPPORTED" (§7.7):
        returns False with that error.  Where it exists, UMS scheduling itself is not
        simulated, so the call raises KernelError rather than pretend to succeed."""
        if not self.ums_supported():
            self._fiber_error("ums", ERROR_NOT_SUPPORTED, t, call=op)
            return False
        from .machine import KernelError

        raise KernelError(f"UMS call {op!r}: user-mode scheduling is not simulated (this "
                          f"build supports it; only its absence is modelled, §7.7)")
