"""The dispatcher: per-CPU ready queues, processor selection, preemption, quantum end,
boosts, waits and the event loop.  Machine (machine.py) adds the public API on top.

Section numbers (§) refer to /work/shared/reference/nt-facts.md.

Hot-path design: per-CPU state lives in parallel lists indexed by CPU number, threads
use __slots__, priorities are plain ints, ready queues are deques with a 32-bit summary
int per CPU, and the trace is appended to C arrays.  Timed events sit in one heap keyed
(time, seq); a CPU's "quantum or step ends" event carries a generation number, so a
switch just bumps the generation instead of deleting the old entry.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush

from .constants import (
    CYCLES_PER_NS,
    CYCLES_PER_S,
    ERROR_NAMES,
    DelayExecution,
    Executive,
    MUTANT_INCREMENT,
    READY,
    RUNNING,
    STANDBY,
    STARVATION_BOOST_LIMIT,
    STARVATION_BOOST_PRIORITY,
    STARVATION_READY_TICKS,
    STARVATION_SCAN_LIMIT,
    Suspended,
    TERMINATED,
    UserRequest,
    WAIT_ABANDONED,
    WAIT_TIMEOUT,
    WAITING,
    WrPreempted,
    WrQuantumEnd,
    WrYieldExecution,
    cycles_to_us,
)
from .objects import Event, Mutex, Semaphore
from .trace import ContextSwitchTrace
from .program import (
    OP_CALL,
    OP_COMMIT,
    OP_EXIT,
    OP_FIBER,
    OP_IO,
    OP_KCPU,
    OP_PULSE,
    OP_RELEASE_MUTEX,
    OP_RELEASE_SEM,
    OP_REPEAT,
    OP_RESET,
    OP_SET,
    OP_SET_PRIORITY,
    OP_SLEEP,
    OP_WAIT,
    OP_YIELD,
)

EV_CPU = 0  # (time, seq, EV_CPU, cpu, generation): running thread's quantum or step ends
EV_TIMER = 1  # (time, seq, EV_TIMER, thread, wait_gen): timeout, sleep end, I/O completion
EV_BALANCE = 2  # (time, seq, EV_BALANCE, None, None): balance set manager pass (§4.7)
EV_CALL = 3  # (time, seq, EV_CALL, fn, args): an action scheduled from outside

# Leaving modes for _leave()
LEAVE_BLOCK = 0  # waiting, suspended or terminated: not re-queued
LEAVE_READY = 1  # re-readied through processor selection, tail of its queue
LEAVE_LOCAL = 2  # re-queued at the tail of this CPU's own queue (yield never migrates, §3.11)

TRACE_FLUSH = ContextSwitchTrace.CHUNK * 10
INSTANT_STEP_LIMIT = 100_000  # a program doing this many zero-time steps in a row is livelocked


class ProgramLivelock(RuntimeError):
    """A thread program loops forever without consuming time or blocking."""

    def __init__(self, message: str, tid: int) -> None:
        super().__init__(message)
        self.tid = tid


class Dispatcher:
    """Scheduling core.  Not used directly: see Machine."""

    # ------------------------------------------------------------------ setup
    def _init_dispatcher(self, ncpu: int, tick: int, unit: int) -> None:
        self.ncpu = ncpu
        self.now = 0  # cycles
        self.tick = tick  # cycles per clock tick
        self.unit = unit  # cycles per quantum unit
        self.running: list = [None] * ncpu
        self.standby: list = [None] * ncpu
        self.seg_start = [0] * ncpu  # when the running thread's current charge segment began
        self.cpu_gen = [0] * ncpu
        self.queues = [[deque() for _ in range(32)] for _ in range(ncpu)]
        self.summary = [0] * ncpu  # ReadySummary per CPU (§3.1)
        self.idle_time = [0] * ncpu
        self.busy_time = [0] * ncpu
        self.idle_mask = 0  # CPUs running their idle thread with nothing on standby
        self.pending = [False] * ncpu  # CPUs with a standby thread still to switch in
        self._pending: list[int] = []
        self._torun: list[int] = []  # CPUs whose new running thread must execute its program
        self._needrun = [False] * ncpu
        # CPUs where a yield handed the CPU to a lower-priority thread (§3.11): there the
        # yielder may outrank the running thread until the CPU next picks from its queues
        self.yielded = [False] * ncpu
        self._heap: list = []
        self._seq = 0
        self._bal_cpu = 0  # balance set manager: next CPU to scan
        self._bal_index = 1  # ... and the priority it resumes at
        self._subs: list = []

    def _push(self, when: int, kind: int, a, b) -> None:
        self._seq += 1
        heappush(self._heap, (when, self._seq, kind, a, b))

    # ------------------------------------------------------------------ events out
    def _emit(self, etype: str, **fields) -> None:
        ev = {"time_us": cycles_to_us(self.now), "type": etype}
        ev.update(fields)
        for cb in tuple(self._subs):
            cb(ev)

    def _prio_event(self, t, reason: str) -> None:
        if self._subs:
            self._emit("priority", tid=t.tid, name=t.name, priority=t.priority,
                       base_priority=t.base, reason=reason)

    def api_error(self, op: str, error: int, **subject) -> None:
        """Record a failed call as GetLastError would (`last_error`, and
        `last_error_reason`: the why, when the call gives one) and emit an api_error
        event."""
        self.last_error = error
        self.last_error_reason = subject.get("reason")
        if self._subs:
            self._emit("api_error", op=op, error=ERROR_NAMES.get(error, str(error)), code=error,
                       **subject)

    # ------------------------------------------------------------------ accounting
    def _charge(self, c: int) -> None:
        """Charge the time since the segment start to whatever runs on CPU c."""
        now = self.now
        dt = now - self.seg_start[c]
        if dt:
            self.seg_start[c] = now
            t = self.running[c]
            if t.is_idle:
                self.idle_time[c] += dt
            else:
                # Vista+: quantum is consumed by the CPU time actually run (§2.2)
                t.quantum -= dt
                t.step_rem -= dt
                if t.kmode:
                    t.kernel += dt
                else:
                    t.user += dt
                self.busy_time[c] += dt

    # ------------------------------------------------------------------ ready queues
    def _dequeue(self, t) -> None:
        c = t.where
        p = t.priority
        q = self.queues[c][p]
        q.remove(t)
        if not q:
            self.summary[c] &= ~(1 << p)

    def _ready(self, t, cur: int = -1) -> None:
        """Make t ready: processor selection (§3.9), preemption (§3.2/3.4), queueing (§3.3)."""
        if t.process.rate_throttled:
            self._park(t)  # its job is over its CPU rate for this interval (§6.13)
            return
        t.ready_tick = self.now // self.tick
        aff = t.affinity
        idle = self.idle_mask & aff
        if idle:
            # An idle CPU in the affinity: the ideal one, else the previous one, else the
            # current one, else any (lowest numbered) (§3.9).
            c = t.ideal
            if not (idle >> c) & 1:
                c = t.cpu
                if c < 0 or not (idle >> c) & 1:
                    c = cur
                    if c < 0 or not (idle >> c) & 1:
                        c = (idle & -idle).bit_length() - 1
            self.idle_mask &= ~(1 << c)
            t.preempted = False
            self._set_standby(c, t)
            return
        # No idle CPU: look at the ideal processor; preempt it if strictly higher (§3.2, §3.9)
        c = t.ideal
        sb = self.standby[c]
        p = t.priority
        if p > (sb.priority if sb is not None else self.running[c].priority):
            t.preempted = False
            self._set_standby(c, t)
            if sb is not None:
                sb.preempted = True  # a displaced standby thread goes to the head (§3.4)
                self._ready(sb, cur)
            return
        q = self.queues[c][p]
        if t.preempted:
            q.appendleft(t)  # preempted: head, keeping its remaining quantum (§3.3)
            t.preempted = False
        else:
            q.append(t)  # readied after a wait, quantum end, new: tail (§3.3)
        self.summary[c] |= 1 << p
        t.state = READY
        t.where = c

    def _set_standby(self, c: int, t) -> None:
        """t is CPU c's next thread (§3.4); c switches to it at its next dispatch."""
        self.standby[c] = t
        t.state = STANDBY
        t.where = c
        if not self.pending[c]:
            self.pending[c] = True
            self._pending.append(c)

    def _select(self, c: int):
        """Next thread for CPU c: head of its highest ready queue (§3.1); if its own queues
        are empty, the highest ready thread queued on another CPU that may run here;
        else the idle thread (§3.7)."""
        self.yielded[c] = False
        s = self.summary[c]
        if s:
            p = s.bit_length() - 1
            q = self.queues[c][p]
            t = q.popleft()
            if not q:
                self.summary[c] = s & ~(1 << p)
            return t
        bit = 1 << c
        best = None
        bp = 0
        queues = self.queues
        summary = self.summary
        n = self.ncpu
        for k in range(1, n):
            d = (c + k) % n
            s = summary[d]
            while s:
                p = s.bit_length() - 1
                if p <= bp:
                    break
                for t in queues[d][p]:
                    if t.affinity & bit:
                        best = t
                        bp = p
                        break
                else:
                    s &= ~(1 << p)
                    continue
                break
        if best is not None:
            self._dequeue(best)
            return best
        return self.idle_threads[c]

    # ------------------------------------------------------------------ switching
    def _leave(self, c: int, old, mode: int, wr: int) -> None:
        """`old` (already charged) leaves CPU c; switch to the standby or next thread."""
        new = self.standby[c]
        if new is not None:
            self.standby[c] = None
        else:
            new = self._select(c)
            if new.is_idle:
                self.idle_mask |= 1 << c
        self.running[c] = new
        if mode == LEAVE_READY:
            old.preempted = False
            self._ready(old, c)
        elif mode == LEAVE_LOCAL and self.idle_mask & old.affinity:
            # an idle processor allowed for the yielder picks it up at once
            self._ready(old, c)
        elif mode == LEAVE_LOCAL:
            p = old.priority
            self.queues[c][p].append(old)
            self.summary[c] |= 1 << p
            old.state = READY
            old.where = c
            old.ready_tick = self.now // self.tick
        st = old.state
        if st == WAITING:
            wr = old.wait_reason
        elif st == TERMINATED:
            wr = -1
        self._record(c, old, new, st, wr)
        self._start(c, new)

    def _record(self, c, old, new, st, wr) -> None:
        self._trace_extend((self.now, c, old.tid, new.tid, old.pid, new.pid, old.priority,
                            new.priority, st, wr))
        if len(self._trace_stage) >= TRACE_FLUSH:
            self.trace.maybe_flush()

    def _start(self, c: int, new) -> None:
        new.state = RUNNING
        new.cpu = c
        new.where = c
        self.seg_start[c] = self.now
        self.cpu_gen[c] += 1  # cancels the previous thread's pending CPU event
        if not new.is_idle:
            new.cswitches += 1
            if not self._needrun[c]:
                self._needrun[c] = True
                self._torun.append(c)

    def _dispatch(self, c: int) -> None:
        """Switch CPU c to its standby thread, preempting what runs there (§3.2)."""
        self.pending[c] = False
        new = self.standby[c]
        if new is None:
            return
        self.standby[c] = None
        old = self.running[c]
        self._charge(c)
        self.running[c] = new
        if old.is_idle:
            self._record(c, old, new, READY, -1)
        else:
            if old.quantum <= 0:
                self._quantum_reload(old)
            old.preempted = True
            self._ready(old, c)
            self._record(c, old, new, old.state, WrPreempted)
        self._start(c, new)

    def _drain(self) -> None:
        """Let freshly switched-in threads execute their programs (iteratively, not
        recursively, so long chains of threads that block at once cannot overflow)."""
        torun = self._torun
        needrun = self._needrun
        running = self.running
        while torun:
            c = torun.pop()
            needrun[c] = False
            t = running[c]
            if not t.is_idle:
                self._run(t, c)

    def _run(self, t, c: int) -> None:
        """t runs on c from now: continue its program, then arm the CPU event."""
        if t.step_rem <= 0 and not self._exec(t, c):
            return
        rem = t.step_rem
        q = t.quantum
        g = self.cpu_gen[c] + 1
        self.cpu_gen[c] = g
        self._seq += 1
        heappush(self._heap, (self.now + (rem if rem < q else q), self._seq, EV_CPU, c, g))

    # ------------------------------------------------------------------ quantum
    def _quantum_reload(self, t) -> None:
        """Quantum end bookkeeping (§2.7): reload, decay by PriorityDecrement + 1 toward base."""
        t.quantum = t.process.quantum_reset
        p = t.priority
        if p < 16:
            newp = p - (t.decrement + 1)
            if newp < t.base:
                newp = t.base
            t.decrement = 0
            if newp != p:
                t.priority = newp
                if self._subs:
                    self._prio_event(t, "decay")

    def _cpu_event(self, c: int) -> None:
        """The running thread's quantum or CPU step ended (the caller checked the
        generation, so this is never the idle thread)."""
        t = self.running[c]
        now = self.now
        dt = now - self.seg_start[c]
        self.seg_start[c] = now
        q = t.quantum - dt  # quantum is charged by CPU time run (Vista+, §2.2)
        t.quantum = q
        rem = t.step_rem - dt
        t.step_rem = rem
        if t.kmode:
            t.kernel += dt
        else:
            t.user += dt
        self.busy_time[c] += dt
        if q <= 0:
            self._quantum_reload(t)
            # Switch only if something of equal or higher priority is ready (§2.7)
            if self.standby[c] is not None or self.summary[c] >> t.priority:
                t.state = READY
                self._leave(c, t, LEAVE_READY, WrQuantumEnd)
                return
            q = t.quantum
        if rem <= 0:
            if not self._exec(t, c):
                return
            rem = t.step_rem
            q = t.quantum
        g = self.cpu_gen[c] + 1
        self.cpu_gen[c] = g
        self._seq += 1
        heappush(self._heap, (now + (rem if rem < q else q), self._seq, EV_CPU, c, g))

    # ------------------------------------------------------------------ programs
    def _exec(self, t, c: int) -> bool:
        """Execute t's zero-time steps until a CPU step is loaded (True) or t leaves the
        CPU (False)."""
        prog = t.program
        n = len(prog)
        count = 0
        while True:
            pc = t.pc
            if pc >= n:
                self._exit_thread(t, 0)  # falling off the end is exit 0
                return False
            st = prog[pc]
            t.pc = pc + 1
            op = st[0]
            if op <= OP_KCPU:
                if st[1] > 0:
                    t.step_rem = st[1]
                    t.kmode = op == OP_KCPU
                    return True
            elif op == OP_WAIT:
                if self._wait_begin(t, c, st):
                    return False
            elif op == OP_SLEEP:
                d = st[1]
                if d == 0:
                    if self._yield(t, c, True):
                        return False
                else:
                    # Sleep(n) ends at the first clock tick at or after the deadline (§3.12)
                    tick = self.tick
                    self._block(t, c, DelayExecution, None, -(-(self.now + d) // tick) * tick, 0)
                    return False
            elif op == OP_IO:
                t.io_device = st[3]
                self._block(t, c, Executive, None, self.now + st[2], st[1])
                return False
            elif op == OP_YIELD:
                if self._yield(t, c, False):
                    return False
            elif op == OP_SET:
                self.set_event(st[1], _cur=c)
                if self.standby[c] is not None:
                    self._dispatch(c)
                    return False
            elif op == OP_RESET:
                self.reset_event(st[1])
            elif op == OP_PULSE:
                self.pulse_event(st[1], _cur=c)
                if self.standby[c] is not None:
                    self._dispatch(c)
                    return False
            elif op == OP_RELEASE_SEM:
                t.last_result = self.release_semaphore(st[1], st[2], _cur=c, _by=t)
                if self.standby[c] is not None:
                    self._dispatch(c)
                    return False
            elif op == OP_RELEASE_MUTEX:
                t.last_result = self.release_mutex(st[1], t, _cur=c)
                if self.standby[c] is not None:
                    self._dispatch(c)
                    return False
            elif op == OP_SET_PRIORITY:
                t.last_result = self.set_thread_priority(t, st[1])
                if t.state != RUNNING:
                    return False
                if self.standby[c] is not None:
                    self._dispatch(c)
                    return False
            elif op == OP_EXIT:
                self._exit_thread(t, st[1])
                return False
            elif op == OP_REPEAT:
                t.pc = 0
            elif op == OP_CALL:
                cost = self._kernel_call(t, st[1], st[2])
                if t.state != RUNNING:
                    return False
                prog = t.program  # kernel code may have given the thread new steps
                n = len(prog)
                if self.standby[c] is not None:
                    self._dispatch(c)
                    return False
                if cost:
                    t.step_rem = cost * CYCLES_PER_NS
                    t.kmode = True
                    return True
            elif op == OP_FIBER:
                # A fiber switch swaps the thread's program; the scheduler sees nothing
                if self._fiber_step(t, c, st):
                    return False
                prog = t.program
                n = len(prog)
                if t.step_rem > 0:  # the fiber switched to was inside a CPU step
                    return True
            elif op == OP_COMMIT:
                self._commit_step(t, st[1])
            count += 1
            if count > INSTANT_STEP_LIMIT:
                raise ProgramLivelock(
                    f"thread {t.tid} ({t.name}) ran {count} steps at t={self.now} without "
                    "using CPU time or blocking", t.tid)

    def _block(self, t, c: int, reason: int, obj, deadline: int, inc: int) -> None:
        """The running thread t enters a wait and gives up the rest of its slice (§3.6)."""
        self._charge(c)
        t.state = WAITING
        t.wait_reason = reason
        t.wait_obj = obj
        t.wait_inc = inc
        if deadline >= 0:
            t.wait_gen += 1
            self._seq += 1
            heappush(self._heap, (deadline, self._seq, EV_TIMER, t, t.wait_gen))
        self._leave(c, t, LEAVE_BLOCK, reason)

    def _yield(self, t, c: int, sleep0: bool) -> bool:
        """SwitchToThread (§3.11) or Sleep(0) (§3.12): give the CPU to a thread ready on
        this processor; never migrates.  Returns True if it switched."""
        s = self.summary[c]
        if sleep0 and self.sleep0_equal_or_higher:
            s >>= t.priority  # folklore/XP semantics: only equal-or-higher priority
        if not s and self.standby[c] is None:
            t.last_result = 0
            return False
        t.last_result = 1
        self._charge(c)
        # NtYieldExecution: reload the quantum, decay the priority, tail of the queue
        self._quantum_reload(t)
        self._leave(c, t, LEAVE_LOCAL, WrYieldExecution)
        self.yielded[c] = True
        return True

    # ------------------------------------------------------------------ waits
    def _acquire(self, obj, t):
        """Try to satisfy a wait on obj for t; return the wait status or None."""
        if not obj.signaled:
            if type(obj) is Mutex and obj.owner is t:
                obj.recursion += 1
                return 0
            return None
        k = type(obj)
        if k is Event:
            if not obj.notification:
                obj.signaled = False  # a synchronization event releases one waiter
        elif k is Semaphore:
            obj.count -= 1
            obj.signaled = obj.count > 0
        elif k is Mutex:
            obj.owner = t
            obj.recursion = 1
            obj.signaled = False
            t.owned.append(obj)
            if obj.abandoned:
                obj.abandoned = False
                return WAIT_ABANDONED
        return 0

    def _wait_begin(self, t, c: int, st) -> bool:
        obj = st[1]
        status = self._acquire(obj, t)
        if status is not None:
            t.last_result = status
            return False
        timeout = st[2]
        if timeout == 0:
            t.last_result = WAIT_TIMEOUT
            return False
        obj.waiters.append(t)
        if timeout > 0:
            tick = self.tick  # timeouts expire at clock ticks
            deadline = -(-(self.now + timeout) // tick) * tick
        else:
            deadline = -1
        self._block(t, c, st[3] if len(st) > 3 else UserRequest, obj, deadline, 0)
        return True

    def _signal(self, obj, inc: int, cur: int = -1) -> None:
        """Wake waiters of obj in FIFO order while the object can satisfy them."""
        waiters = obj.waiters
        while waiters:
            t = waiters[0]
            status = self._acquire(obj, t)
            if status is None:
                return
            del waiters[0]
            self._unwait(t, status, inc, cur)

    def _timer_event(self, t, g: int) -> None:
        if g != t.wait_gen or t.state != WAITING:
            return
        obj = t.wait_obj
        if obj is not None:
            obj.waiters.remove(t)
            self._unwait(t, WAIT_TIMEOUT, 0)
        else:
            # Sleep end or I/O completion with the device's boost (§4.2)
            self._unwait(t, 0, t.wait_inc)

    def _unwait(self, t, status: int, inc: int, cur: int = -1) -> None:
        t.wait_gen += 1  # cancel a pending timeout
        t.wait_obj = None
        t.last_result = status
        if t.suspend_count:
            # The wait is over but the thread is suspended: it waits on its suspension
            t.wait_reason = Suspended
            t.resume_status = status
            return
        self._wake(t, inc, cur)

    def _wake(self, t, inc: int, cur: int = -1) -> None:
        """Ready a thread after a wait: boost (§4.3-4.5), quantum (§4.10, §2.8), tail."""
        base = t.base
        if base >= 16:
            t.quantum = t.process.quantum_reset  # realtime: full quantum, never boosted (§2.8)
        else:
            boosted = False
            proc = t.process
            if t.decrement == 0 and not (t.disable_boost or proc.disable_boost):
                plain = base + inc
                if plain > 15:
                    plain = 15
                newp = plain
                if proc.foreground:
                    newp += self.ps_priority_separation  # foreground add-on (§4.5)
                    if newp > 15:
                        newp = 15
                if newp > t.priority:  # boosts are from BASE, only if higher (§4.3)
                    t.priority = newp
                    t.decrement = newp - plain  # special part vanishes at quantum end (§2.7)
                    boosted = True
                    if self._subs:
                        self._prio_event(t, "boost")
            if boosted or base >= 14:
                t.quantum = proc.quantum_reset
            elif self.classic_wait_quantum:
                # Classic NT: a completed wait costs WAIT_QUANTUM_DECREMENT (§2.2, §4.10)
                t.quantum -= self.unit
                if t.quantum <= 0:
                    self._quantum_reload(t)
        t.wait_reason = -1
        t.preempted = False
        self._ready(t, cur)

    # ------------------------------------------------------------------ priority changes
    def _change_priority(self, t, newp: int, reason: str) -> None:
        """Set t's current priority and re-dispatch as §3.5 says."""
        old = t.priority
        if newp == old:
            return
        st = t.state
        if st == READY:
            self._dequeue(t)
            t.priority = newp
            t.preempted = False
            self._prio_event(t, reason)
            self._ready(t)  # re-inserted at the tail of its new queue (§3.5)
            return
        t.priority = newp
        self._prio_event(t, reason)
        if st == STANDBY:
            if newp < old:
                self._unstandby(t)
                self._ready(t)
        elif st == RUNNING and newp < old:
            c = t.cpu
            # Switch only if something strictly higher than the new priority is ready (§3.5)
            if self.standby[c] is not None or self.summary[c] >> (newp + 1):
                self._charge(c)
                t.state = READY
                self._leave(c, t, LEAVE_READY, -1)

    def _unstandby(self, t) -> None:
        """Take t off CPU c's standby slot.  If c would go idle, it looks for ready work
        queued elsewhere first (what an idle processor does, §3.7); if a thread queued
        behind t outranks the one running there, it takes the slot (§3.2)."""
        c = t.where
        self.standby[c] = None
        if self.running[c].is_idle:
            nxt = self._select(c)
            if nxt.is_idle:
                self.idle_mask |= 1 << c
            else:
                self._set_standby(c, nxt)
        elif self.summary[c] >> (self.running[c].priority + 1):
            p = self.summary[c].bit_length() - 1
            q = self.queues[c][p]
            nxt = q.popleft()
            if not q:
                self.summary[c] &= ~(1 << p)
            self._set_standby(c, nxt)

    # ------------------------------------------------------------------ exit
    def _exit_thread(self, t, code: int, terminated: bool = False) -> None:
        """t ends with `code`; `terminated` (TerminateThread/Process) runs no user-mode
        code, so no FLS callbacks (§8.4)."""
        st = t.state
        if st == TERMINATED:
            return
        c = t.cpu if st == RUNNING else -1
        if st == READY:
            self._dequeue(t)
        elif st == STANDBY:
            self._unstandby(t)
        elif st == WAITING:
            if t.wait_obj is not None:
                t.wait_obj.waiters.remove(t)
                t.wait_obj = None
            t.wait_gen += 1
        if c >= 0:
            self._charge(c)
        t.state = TERMINATED
        t.wait_reason = -1
        t.exit_code = code
        t.step_rem = 0
        for m in t.owned:  # abandoned mutexes go to the next waiter with WAIT_ABANDONED
            m.owner = None
            m.recursion = 0
            m.abandoned = True
            m.signaled = True
            self._signal(m, MUTANT_INCREMENT, c)
        t.owned = []
        if t.fiber is not None or t.fibers or t.fls:
            # FLS callbacks run on thread exit (§7.6), not on termination
            self._fiber_thread_exit(t, run_callbacks=not terminated)
        t.signaled = True
        self._signal(t, 0, c)
        if self._subs:
            self._emit("thread_exit", pid=t.pid, tid=t.tid, name=t.name, exit_code=code)
        nt = self.nt
        if nt.thread_routines:
            nt._thread_changed(t, False, t)  # in the exiting thread's context
        proc = t.process
        proc.live_threads -= 1
        if proc.live_threads == 0 and not proc.exited:
            # The last thread's exit status becomes the process's (§8.4)
            self._exit_process(proc, code, t)
        if c >= 0:
            self._leave(c, t, LEAVE_BLOCK, -1)

    def _exit_process(self, proc, code: int, last=None) -> None:
        proc.exited = True
        proc.exit_code = code
        proc.exit_time = self.now
        proc.signaled = True
        if proc.create_notified:
            self.nt._process_exited(proc, last)  # on the last thread to exit (§8.2)
        self._signal(proc, 0)
        if self._subs:
            self._emit("process_exit", pid=proc.pid, name=proc.name, exit_code=code)
        if proc.handles is not None:
            self._close_all_handles(proc)  # an exiting process's handles close (§8.4)
        if proc.jobs or proc.job_limit_failed:
            self._job_process_exited(proc)

    # ------------------------------------------------------------------ balance set manager
    def _balance(self) -> None:
        """One pass of the starvation-avoidance scan (§4.7): one CPU per pass, priorities
        1..14, threads ready for >= 300 ticks, scan <= 16, boost <= 10, resume point kept."""
        self._push(self.now + CYCLES_PER_S, EV_BALANCE, None, None)
        c = self._bal_cpu
        self._bal_cpu = (c + 1) % self.ncpu
        summary = self.summary[c] & ((1 << STARVATION_BOOST_PRIORITY) - 2)
        if not summary:
            return
        limit = self.now // self.tick - STARVATION_READY_TICKS
        honour = self.starvation_honours_disable_boost
        count = STARVATION_BOOST_LIMIT
        number = STARVATION_SCAN_LIMIT
        index = self._bal_index
        boosted = []
        queues = self.queues[c]
        while True:
            bit = 1 << index
            if summary & bit:
                summary ^= bit
                for t in tuple(queues[index]):
                    if t.ready_tick <= limit and not (
                            honour and (t.disable_boost or t.process.disable_boost)):
                        self._dequeue(t)
                        t.decrement += STARVATION_BOOST_PRIORITY - t.priority
                        t.priority = STARVATION_BOOST_PRIORITY
                        t.quantum = self.starvation_quantum_units * self.unit
                        boosted.append(t)
                        count -= 1
                    number -= 1
                    if not number or not count:
                        break
            index += 1
            if index == STARVATION_BOOST_PRIORITY:
                index = 1
            if not (summary and number and count):
                break
        self._bal_index = index
        for t in boosted:
            self._prio_event(t, "starvation")
            t.preempted = False
            self._ready(t)

    # ------------------------------------------------------------------ event loop
    def step(self) -> bool:
        """Process one thing: pending CPU dispatches, else the next timed event.
        Returns False when nothing is left to do."""
        if self._torun:
            self._drain()
        if self._pending:
            self._dispatch_pending()
            return True
        if not self._heap:
            return False
        self._pop_one()
        return True

    def dispatch(self) -> None:
        """Switch every CPU with a standby thread to it now (no simulated time passes)."""
        while self._pending:
            self._dispatch_pending()

    def _dispatch_pending(self) -> None:
        pend = self._pending
        self._pending = []
        for c in sorted(pend):
            self._dispatch(c)
        self._drain()

    def _pop_one(self) -> None:
        when, _, kind, a, b = heappop(self._heap)
        self.now = when
        if kind == EV_CPU:
            if b == self.cpu_gen[a]:  # else stale: the CPU switched since it was armed
                self._cpu_event(a)
        elif kind == EV_TIMER:
            self._timer_event(a, b)
        elif kind == EV_BALANCE:
            self._balance()
        else:
            a(*b)
        self._drain()

    def run_until_cycles(self, end: int) -> None:
        heap = self._heap
        cpu_gen = self.cpu_gen
        cpu_event = self._cpu_event
        timer_event = self._timer_event
        drain = self._drain
        if self._torun:
            drain()
        while True:
            if self._pending:
                self._dispatch_pending()
                continue
            if not heap or heap[0][0] > end:
                break
            when, _, kind, a, b = heappop(heap)
            if kind == EV_CPU:
                if b != cpu_gen[a]:
                    continue  # stale entry: skip without touching the clock
                self.now = when
                cpu_event(a)
            elif kind == EV_TIMER:
                self.now = when
                timer_event(a, b)
            elif kind == EV_BALANCE:
                self.now = when
                self._balance()
            else:
                self.now = when
                a(*b)
            if self._torun:
                drain()
        if end > self.now:
            self.now = end
