"""Job objects (§6): JobOps, mixed into Machine.

A job groups processes and enforces limits on them (§6.2-6.13), keeps accounting
(§6.14) and posts completion-port messages (§6.15).  Jobs nest with the Windows 8+
rules: a process belongs to a chain of jobs (innermost first, `Process.jobs`), the
effective limit is the strictest in the chain, a message about a job goes to every port
up its chain, and a process never leaves a job (§6.10).

Choices where the sources are silent (docs/kernel.md lists them):
- Time limits are checked at every clock tick while a job has one (the documentation
  says "periodically", §6.4); `job_time_check_ns` changes the period.
- CPU rates are enforced per scheduling interval, `cpu_rate_interval_ns` (100 ms by
  default; Windows does not document its length, §6.13).  Rates are checked at every
  tick, when set, when a process joins or a thread is created in one of its
  processes, and at the earliest moment a budget could run out (all the job's threads
  running), so a cap is never exceeded.  Checks are at least 1/1000
  of the interval apart; a budget with less than that per CPU left is given up.  A
  weight is a share among the weight-based sibling jobs that have work.
- MinRate is a model (Windows does not document the mechanism): a job with work
  reserves its share of each interval; while the rest of the interval (of the parent's
  allocation, when nested) is needed for the outstanding reservations, the other
  rate-controlled jobs under the same rate-controlled ancestor yield in WrCpuRateControl
  until the reservations are met or the interval ends.  Threads in no rate-controlled
  job never yield, so they can take reserved time (`_rate_reservations`).
- A process that breaks a limit is terminated with ERROR_NOT_ENOUGH_QUOTA (1816, the
  code observed in sandboxes, §6.4); kill-on-close uses exit status 0 (ReactOS, §6.11).
- An unhandled exception (`raise_unhandled_exception`) ends its process at once: the
  Windows Error Reporting dialog shown first when no SEM_NOGPFAULTERRORBOX applies
  takes no simulated time (§6.17).
"""

from __future__ import annotations

from .constants import (
    ABNORMAL_EXIT_STATUSES,
    CLASS_BASE_PRIORITY,
    CYCLES_PER_NS,
    DEFAULT_SCHEDULING_CLASS,
    ERROR_ACCESS_DENIED,
    ERROR_COMMITMENT_LIMIT,
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NOT_ENOUGH_QUOTA,
    JOB_MSG_CODE,
    JOB_OBJECT_CPU_RATE_CONTROL_ENABLE,
    JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP,
    JOB_OBJECT_CPU_RATE_CONTROL_MIN_MAX_RATE,
    JOB_OBJECT_CPU_RATE_CONTROL_NOTIFY,
    JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED,
    JOB_OBJECT_LIMIT_ACTIVE_PROCESS,
    JOB_OBJECT_LIMIT_AFFINITY,
    JOB_OBJECT_LIMIT_BREAKAWAY_OK,
    JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION,
    JOB_OBJECT_LIMIT_JOB_MEMORY,
    JOB_OBJECT_LIMIT_JOB_TIME,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOB_OBJECT_LIMIT_PRESERVE_JOB_TIME,
    JOB_OBJECT_LIMIT_PRIORITY_CLASS,
    JOB_OBJECT_LIMIT_PROCESS_MEMORY,
    JOB_OBJECT_LIMIT_PROCESS_TIME,
    JOB_OBJECT_LIMIT_SCHEDULING_CLASS,
    JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK,
    JOB_OBJECT_LIMIT_SUBSET_AFFINITY,
    JOB_OBJECT_MSG,
    JOB_OBJECT_POST_AT_END_OF_JOB,
    JOB_OBJECT_TERMINATE_AT_END_OF_JOB,
    JOB_SCHEDULING_CLASS_QUANTUM_UNITS,
    READY,
    RUNNING,
    STANDBY,
    Suspended,
    TERMINATED,
    WAITING,
    WrCpuRateControl,
    cycles_to_us,
    parse_priority_class,
)
from .dispatcher import EV_CALL, LEAVE_BLOCK
from .objects import Job, mask_to_list

DEFAULT_JOB_TIME_CHECK_NS = None  # None: every clock tick
DEFAULT_CPU_RATE_INTERVAL_NS = 100_000_000
# CPU rate checks are at least 1/1000 of the interval apart (0.1 ms by default), which
# bounds how many there are; what is left below that per CPU is settled at once
RATE_CHECK_DIVISIONS = 1000
END_OF_JOB_TIME_ACTIONS = {"terminate": JOB_OBJECT_TERMINATE_AT_END_OF_JOB,
                           "post": JOB_OBJECT_POST_AT_END_OF_JOB}


def _class_rank(cls: str) -> int:
    return CLASS_BASE_PRIORITY[cls]


def _depth(job: Job | None) -> int:
    """How deep `job` is nested: 0 at the top level, -1 for None (the whole machine)."""
    return -1 if job is None else sum(1 for _ in job.chain()) - 1


def is_abnormal_exit(code: int) -> bool:
    """An exit status the documentation lists as abnormal (exception codes such as
    STATUS_ACCESS_VIOLATION, §6.15); others, NTSTATUS errors included, are normal exits."""
    return (code & 0xFFFFFFFF) in ABNORMAL_EXIT_STATUSES


class JobOps:
    """Job objects.  `self` is the Machine."""

    def _init_jobs(self, job_nesting: bool, job_time_check_ns: int | None,
                   cpu_rate_interval_ns: int) -> None:
        self.jobs: list[Job] = []  # jobs that exist (a destroyed job leaves the list)
        self._next_jid = 1
        # Windows 8+ nesting (§6.10); False: a process in a job cannot join another
        self.job_nesting = job_nesting
        self.job_time_check = (self.tick if job_time_check_ns is None
                               else int(job_time_check_ns) * CYCLES_PER_NS)
        self.cpu_rate_interval = int(cpu_rate_interval_ns) * CYCLES_PER_NS
        self._rate_step = max(1, self.cpu_rate_interval // RATE_CHECK_DIVISIONS)
        self._job_tick_armed = False
        self._rate_interval_start = 0
        self._rate_next: int | None = None  # when the next CPU rate check is due
        self._rate_gen = 0  # tells a superseded scheduled check from the current one
        # jobs held until the interval ends for using their budget (an ordered set); any
        # other held job yields to MinRate reservations, re-decided at every check
        self._rate_spent: dict[Job, None] = {}

    # ------------------------------------------------------------------ naming and lookups
    def job_name(self, job: Job) -> str:
        return job.name if job.name is not None else f"Job#{job.jid}"

    def _times(self, p) -> tuple[int, int]:
        user = kernel = 0
        for t in p.threads:
            user += t.user
            kernel += t.kernel
        return user, kernel

    def job_times(self, job: Job) -> tuple[int, int]:
        """(user, kernel) cycles charged to the job: every member's time since it joined,
        terminated members included (§6.14)."""
        self._charge_all()
        user = kernel = 0
        for p in job.members:
            u, k = self._times(p)
            bu, bk = job.baselines[id(p)]
            user += u - bu
            kernel += k - bk
        return user, kernel

    def query_job_accounting(self, job: Job) -> dict:
        """JOBOBJECT_BASIC_ACCOUNTING_INFORMATION (times in 100 ns units, §6.14)."""
        user, kernel = self.job_times(job)
        pu, pk = job.period_base
        hundred_ns = 100 * CYCLES_PER_NS
        return {
            "TotalUserTime": user // hundred_ns, "TotalKernelTime": kernel // hundred_ns,
            "ThisPeriodTotalUserTime": (user - pu) // hundred_ns,
            "ThisPeriodTotalKernelTime": (kernel - pk) // hundred_ns,
            "TotalPageFaultCount": 0,
            "TotalProcesses": job.total_processes,
            "ActiveProcesses": job.active_processes,
            "TotalTerminatedProcesses": job.total_terminated_processes,
        }

    # ------------------------------------------------------------------ creation and limits
    def create_job(self, name: str | None = None, parent: Job | None = None,
                   completion_port: bool = False) -> Job:
        """CreateJobObject (the caller holds one handle); `parent` nests it at once.
        `completion_port` associates a port whose messages become job_message events."""
        if parent is not None and parent.closed:
            raise ValueError(f"job {self.job_name(parent)} no longer exists")
        job = Job(self._next_jid, name, parent, self.now, completion_port)
        self._next_jid += 1
        job.refs = 1
        if parent is not None:
            parent.children.append(job)
        self.jobs.append(job)
        return job

    def set_job_limits(self, job: Job, *, active_process: int | None = None,
                       affinity=None, priority_class: str | None = None,
                       scheduling_class: int | None = None,
                       per_process_user_time_ns: int | None = None,
                       per_job_user_time_ns: int | None = None,
                       end_of_job_time_action: str = "terminate",
                       process_memory: int | None = None, job_memory: int | None = None,
                       kill_on_job_close: bool = False, breakaway_ok: bool = False,
                       silent_breakaway_ok: bool = False,
                       die_on_unhandled_exception: bool = False,
                       subset_affinity: bool = False, preserve_job_time: bool = False) -> bool:
        """SetInformationJobObject(JobObjectExtendedLimitInformation): replaces every
        limit; None means not set.  Invalid values fail with ERROR_INVALID_PARAMETER and
        change nothing."""
        def bad(why: str) -> bool:
            self.api_error("set_job_limits", ERROR_INVALID_PARAMETER, job=self.job_name(job),
                           reason=why)
            return False

        if job.closed:
            return bad("the job no longer exists")
        flags = 0
        mask = 0
        if affinity is not None:
            mask = affinity if isinstance(affinity, int) else sum(1 << int(c) for c in affinity)
            # the job's affinity must be a subset of the system's (§6.8, S18)
            if mask <= 0 or mask & ~self.all_cpus_mask:
                return bad(f"affinity {mask_to_list(mask) if mask > 0 else affinity} is not "
                           f"a non-empty subset of CPUs 0..{self.ncpu - 1}")
            flags |= JOB_OBJECT_LIMIT_AFFINITY
        if subset_affinity:
            if affinity is None:  # SUBSET_AFFINITY only with AFFINITY (§6.2)
                return bad("subset_affinity needs an affinity limit")
            flags |= JOB_OBJECT_LIMIT_SUBSET_AFFINITY
        cls = None
        if priority_class is not None:
            try:
                cls = parse_priority_class(priority_class)
            except ValueError as e:
                return bad(str(e))
            flags |= JOB_OBJECT_LIMIT_PRIORITY_CLASS
        if scheduling_class is not None:
            if not 0 <= scheduling_class <= 9:
                return bad(f"scheduling class {scheduling_class} is not 0..9")
            flags |= JOB_OBJECT_LIMIT_SCHEDULING_CLASS
        if active_process is not None:
            if active_process < 0:
                return bad("active_process must be >= 0")
            flags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS
        if per_process_user_time_ns is not None:
            flags |= JOB_OBJECT_LIMIT_PROCESS_TIME
        if per_job_user_time_ns is not None:
            flags |= JOB_OBJECT_LIMIT_JOB_TIME
        if preserve_job_time:
            if per_job_user_time_ns is not None:  # mutually exclusive (ReactOS, §6.2)
                return bad("preserve_job_time cannot be combined with a per-job time limit")
            flags |= JOB_OBJECT_LIMIT_PRESERVE_JOB_TIME
        if end_of_job_time_action not in END_OF_JOB_TIME_ACTIONS:
            return bad(f"end_of_job_time_action must be one of "
                       f"{', '.join(END_OF_JOB_TIME_ACTIONS)}")
        if process_memory is not None:
            flags |= JOB_OBJECT_LIMIT_PROCESS_MEMORY
        if job_memory is not None:
            flags |= JOB_OBJECT_LIMIT_JOB_MEMORY
        for on, flag in ((kill_on_job_close, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE),
                         (breakaway_ok, JOB_OBJECT_LIMIT_BREAKAWAY_OK),
                         (silent_breakaway_ok, JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK),
                         (die_on_unhandled_exception,
                          JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION)):
            if on:
                flags |= flag

        old_flags = job.limit_flags
        if preserve_job_time and old_flags & JOB_OBJECT_LIMIT_JOB_TIME:
            flags |= JOB_OBJECT_LIMIT_JOB_TIME  # keep the job-time limit as it is (§6.5)
        else:
            job.per_job_user_time = (0 if per_job_user_time_ns is None
                                     else int(per_job_user_time_ns) * CYCLES_PER_NS)
        flags &= ~JOB_OBJECT_LIMIT_PRESERVE_JOB_TIME
        job.limit_flags = flags
        job.active_process_limit = active_process or 0
        job.affinity = mask
        job.priority_class = cls
        job.scheduling_class = (DEFAULT_SCHEDULING_CLASS if scheduling_class is None
                                else int(scheduling_class))
        job.per_process_user_time = (0 if per_process_user_time_ns is None
                                     else int(per_process_user_time_ns) * CYCLES_PER_NS)
        job.end_of_job_time_action = END_OF_JOB_TIME_ACTIONS[end_of_job_time_action]
        job.process_memory_limit = process_memory or 0
        job.job_memory_limit = job_memory or 0
        if per_job_user_time_ns is not None:
            # Setting a per-job limit starts a new period (§6.5, §6.14) and un-signals
            job.period_base = self.job_times(job)
            job.signaled = False
        self._apply_job_limits(job)
        if flags & (JOB_OBJECT_LIMIT_PROCESS_TIME | JOB_OBJECT_LIMIT_JOB_TIME):
            self._arm_job_tick()
        return True

    def set_job_cpu_rate(self, job: Job, *, hard_cap: int | None = None,
                         weight: int | None = None, min_rate: int | None = None,
                         max_rate: int | None = None, notify: bool = False) -> bool:
        """SetInformationJobObject(JobObjectCpuRateControlInformation), Windows 8+ (§6.13).
        Rates are percent x 100 (1..10000); a weight is 1..9.  All None turns it off."""
        def bad(why: str) -> bool:
            self.api_error("set_job_cpu_rate", ERROR_INVALID_PARAMETER,
                           job=self.job_name(job), reason=why)
            return False

        given = [k for k, v in (("hard_cap", hard_cap), ("weight", weight)) if v is not None]
        minmax = min_rate is not None or max_rate is not None
        if len(given) + minmax > 1:  # WEIGHT/HARD_CAP and MIN_MAX_RATE exclude each other
            return bad("give exactly one of hard_cap, weight, or min_rate/max_rate")
        if not given and not minmax:
            self._rate_unthrottle(job)
            job.cpu_rate = None
            self._rate_check()  # what it reserved or held for others is free now
            return True
        flags = JOB_OBJECT_CPU_RATE_CONTROL_ENABLE
        if notify:
            flags |= JOB_OBJECT_CPU_RATE_CONTROL_NOTIFY
        if hard_cap is not None:
            if not 1 <= hard_cap <= 10000:  # CpuRate 0 fails (§6.13)
                return bad(f"hard_cap {hard_cap} is not 1..10000")
            rate = {"mode": "hard_cap", "rate": int(hard_cap)}
            flags |= JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP
        elif weight is not None:
            if not 1 <= weight <= 9:
                return bad(f"weight {weight} is not 1..9")
            rate = {"mode": "weight", "weight": int(weight)}
            flags |= JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED
        else:
            lo = 0 if min_rate is None else int(min_rate)
            hi = 10000 if max_rate is None else int(max_rate)
            if not (0 <= lo <= 10000 and 1 <= hi <= 10000 and lo <= hi):
                return bad(f"min_rate {lo} / max_rate {hi} must satisfy 0 <= min <= max <= 10000")
            # the MinRates that share an allocation (the nearest rate-controlled
            # ancestor's, or the machine's) must add up to <= 10000 (§6.13)
            scope = self._rate_parent(job)
            others = sum(j.cpu_rate.get("min_rate", 0) for j in self.jobs
                         if j is not job and j.cpu_rate and self._rate_parent(j) is scope)
            if others + lo > 10000:
                return bad(f"the jobs' MinRates would add up to {others + lo} (> 10000)")
            rate = {"mode": "min_max", "min_rate": lo, "max_rate": hi}
            flags |= JOB_OBJECT_CPU_RATE_CONTROL_MIN_MAX_RATE
        rate["control_flags"] = flags
        job.cpu_rate = rate
        self._arm_job_tick()
        job.rate_mark = None  # its budget counts from now
        self._rate_spent.pop(job, None)  # the check decides whether it stays held
        self._rate_check()
        return True

    # ------------------------------------------------------------------ effective limits
    def _effective_class(self, job: Job) -> str | None:
        """The lowest PriorityClass limit in the chain (§6.7)."""
        best = None
        for j in job.chain():
            if j.limit_flags & JOB_OBJECT_LIMIT_PRIORITY_CLASS and (
                    best is None or _class_rank(j.priority_class) < _class_rank(best)):
                best = j.priority_class
        return best

    def _effective_affinity(self, job: Job) -> int:
        """The innermost affinity limit that is a subset of its parent's effective one; a
        superset is ignored for the parent's (§6.8).  0: no affinity limit."""
        parent = self._effective_affinity(job.parent) if job.parent is not None else 0
        if job.limit_flags & JOB_OBJECT_LIMIT_AFFINITY:
            if not parent or not job.affinity & ~parent:
                return job.affinity
        return parent

    def _effective_scheduling_class(self, job: Job) -> int:
        """The lowest SchedulingClass in the chain (§6.12); 5 when no job sets one."""
        best = DEFAULT_SCHEDULING_CLASS
        first = True
        for j in job.chain():
            if j.limit_flags & JOB_OBJECT_LIMIT_SCHEDULING_CLASS:
                best = j.scheduling_class if first else min(best, j.scheduling_class)
                first = False
        return best

    def _effective_min(self, job: Job, flag: int, attr: str) -> int:
        values = [getattr(j, attr) for j in job.chain() if j.limit_flags & flag]
        return min(values) if values else 0

    def _apply_job_limits(self, job: Job) -> None:
        """Push the effective class, affinity and quantum to every live member, including
        the members of nested jobs (whose chains include this job)."""
        for p in job.members:
            if not p.exited:
                self._apply_limits_to_process(p)

    def _apply_limits_to_process(self, p) -> None:
        inner = p.jobs[0]
        cls = self._effective_class(inner)
        if cls is not None and cls != p.priority_class:
            self._set_class(p, cls)
        mask = self._effective_affinity(inner)
        if mask and mask != p.affinity:
            p.affinity = mask
            for t in p.threads:  # each thread's affinity becomes the job's (§6.8)
                if t.state != TERMINATED:
                    self._apply_affinity(t, mask)
        self._set_quantum_reset(p)

    def job_quantum_units(self, p) -> int | None:
        """Quantum units from the job scheduling class, used only with fixed quanta
        (PspUseJobSchedulingClasses, §6.12); None otherwise."""
        if not p.jobs or not self.fixed_quantum:
            return None
        return JOB_SCHEDULING_CLASS_QUANTUM_UNITS[self._effective_scheduling_class(p.jobs[0])]

    def job_allows_class_change(self, p) -> bool:
        """False when a job's PriorityClass limit makes SetPriorityClass a silent no-op."""
        return not p.jobs or self._effective_class(p.jobs[0]) is None

    def job_process_affinity_check(self, p, mask: int) -> bool:
        """Whether SetProcessAffinityMask(mask) is allowed for a process in a job: not
        with an affinity limit, unless SUBSET_AFFINITY and a subset (§6.8)."""
        if not p.jobs:
            return True
        eff = self._effective_affinity(p.jobs[0])
        if not eff:
            return True
        subset_ok = any(j.limit_flags & JOB_OBJECT_LIMIT_SUBSET_AFFINITY for j in p.jobs[0].chain())
        return subset_ok and not mask & ~eff

    def job_suppresses_fault_error_box(self, p) -> bool:
        """Whether a job of p sets DIE_ON_UNHANDLED_EXCEPTION, which forces
        SEM_NOGPFAULTERRORBOX on its processes (§6.17); any job up the chain does."""
        return any(j.limit_flags & JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION for j in p.jobs)

    # ------------------------------------------------------------------ messages
    def _post(self, about: Job, code: int, pid: int | None) -> None:
        """A JOB_OBJECT_MSG about `about` goes to every port up its chain (§6.15)."""
        for j in about.chain():
            if not j.completion_port:
                continue
            j.messages.append((self.now, code, pid))  # a bounded deque
            if self._subs:
                fields = {"job": self.job_name(j), "message": JOB_OBJECT_MSG[code],
                          "code": code, "pid": pid}
                if j is not about:
                    fields["source_job"] = self.job_name(about)
                self._emit("job_message", **fields)

    # ------------------------------------------------------------------ membership
    def _terminating(self, job: Job) -> bool:
        return any(j.terminating or j.closed for j in job.chain())

    def _job_time_used_up(self, job: Job) -> bool:
        for j in job.chain():
            if j.signaled:
                return True
            if j.limit_flags & JOB_OBJECT_LIMIT_JOB_TIME:
                user = self.job_times(j)[0] - j.period_base[0]
                if user > j.per_job_user_time:
                    return True
        return False

    def assign_process_to_job(self, job: Job, process) -> bool:
        """AssignProcessToJobObject (§6.3, §6.5, §6.10)."""
        name = self.job_name(job)

        def fail(error: int) -> bool:
            self.api_error("assign", error, job=name, pid=process.pid, name=process.name)
            return False

        if process.exited or self._terminating(job) or process.pid in (0, 4):
            return fail(ERROR_ACCESS_DENIED)
        if process.jobs:
            inner = process.jobs[0]
            if job in process.jobs:
                return fail(ERROR_ACCESS_DENIED)
            if not self.job_nesting:  # before Windows 8: one job per process (§6.10)
                return fail(ERROR_ACCESS_DENIED)
            if inner in job.chain():
                pass  # the target is inside the process's hierarchy
            elif job.parent is None and not job.members and not job.children:
                # an empty top-level job nests under the process's innermost job
                job.parent = inner
                inner.children.append(job)
            else:
                return fail(ERROR_ACCESS_DENIED)
        new_jobs = [j for j in job.chain() if j not in process.jobs]
        if self._job_time_used_up(job):
            # The job's time is used up: the call fails and terminates the process (§6.5)
            for j in new_jobs:
                j.total_processes += 1
            self._terminate_for_limit(process, ())
            return fail(ERROR_NOT_ENOUGH_QUOTA)
        for j in new_jobs:
            if (j.limit_flags & JOB_OBJECT_LIMIT_ACTIVE_PROCESS
                    and j.active_processes + 1 > j.active_process_limit):
                self._active_limit_exceeded(process, new_jobs, j)
                return fail(ERROR_NOT_ENOUGH_QUOTA)
        self._join(process, job, new_jobs)
        return True

    def _active_limit_exceeded(self, process, new_jobs: list[Job], hit: Job) -> None:
        """§6.3: counted (TotalProcesses, ActiveProcesses) although the association fails;
        the process is terminated and stays counted as active until its object goes."""
        for j in new_jobs:
            j.total_processes += 1
            j.active_processes += 1
            j.pending.append(process)
        process.job_limit_failed = list(new_jobs)
        hit.total_terminated_processes += 1
        self._post(hit, JOB_MSG_CODE["ACTIVE_PROCESS_LIMIT"], None)
        self.terminate_process(process, ERROR_NOT_ENOUGH_QUOTA)
        self._release_failed(process)

    def _join(self, process, job: Job, new_jobs: list[Job]) -> None:
        self._charge_all()
        times = self._times(process)
        for j in reversed(new_jobs):  # outermost first
            j.members.append(process)
            j.baselines[id(process)] = times
            j.total_processes += 1
            j.active_processes += 1
        process.jobs = list(job.chain())
        self._post(job, JOB_MSG_CODE["NEW_PROCESS"], process.pid)
        self._apply_limits_to_process(process)
        for j in new_jobs:
            if j.rate_held:  # joining a job held for its CPU rate: wait for the interval
                self._rate_throttle_process(process)
        if any(j.cpu_rate for j in process.jobs):
            self._rate_check()  # its threads count from now on
        if any(j.limit_flags & (JOB_OBJECT_LIMIT_PROCESS_TIME | JOB_OBJECT_LIMIT_JOB_TIME)
               for j in process.jobs):
            self._arm_job_tick()

    def _inherit_jobs(self, parent, breakaway: bool):
        """Which jobs a child of `parent` joins (§6.9): (jobs, error or 0)."""
        if parent is None or not parent.jobs:
            return None, 0
        chain = parent.jobs
        inner = chain[0]
        silent = inner.limit_flags & JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK
        if breakaway and not (inner.limit_flags & JOB_OBJECT_LIMIT_BREAKAWAY_OK) and not silent:
            return None, ERROR_ACCESS_DENIED  # the job must allow breakaway (§6.9)
        if breakaway or silent:
            # break away from each job up the chain that allows it (§6.9, nested)
            k = 0
            while k < len(chain):
                f = chain[k].limit_flags
                allowed = (f & JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK
                           or (breakaway and f & JOB_OBJECT_LIMIT_BREAKAWAY_OK))
                if not allowed:
                    break
                k += 1
            chain = chain[k:]
        if not chain:
            return None, 0
        target = chain[0]
        if self._terminating(target):
            return None, ERROR_ACCESS_DENIED
        for j in target.chain():
            if (j.limit_flags & JOB_OBJECT_LIMIT_ACTIVE_PROCESS
                    and j.active_processes + 1 > j.active_process_limit):
                # CreateProcess inside a job at its limit fails (S15); probably 1816 (§6.3)
                return None, ERROR_NOT_ENOUGH_QUOTA
        return target, 0

    def _job_process_exited(self, process) -> None:
        """Exit bookkeeping: ActiveProcesses, EXIT/ABNORMAL_EXIT and ACTIVE_PROCESS_ZERO,
        commit charges released; a limit-failed process waits for its object to go."""
        if process.job_limit_failed:
            self._release_failed(process)
        if not process.jobs:
            return
        inner = process.jobs[0]
        for j in process.jobs:
            j.active_processes -= 1
        abnormal = is_abnormal_exit(process.exit_code)
        self._post(inner, JOB_MSG_CODE["ABNORMAL_EXIT_PROCESS" if abnormal else "EXIT_PROCESS"],
                   process.pid)
        for j in process.jobs:
            if j.active_processes == 0 and not j.pending:
                self._post(j, JOB_MSG_CODE["ACTIVE_PROCESS_ZERO"], None)
        process.commit = 0
        for j in process.jobs:
            self._maybe_destroy(j)

    def _release_failed(self, process) -> None:
        """A limit-failed process stops counting as active once exited and unreferenced."""
        if not process.exited or process.refs > 0:
            return
        for j in process.job_limit_failed:
            if process in j.pending:
                j.pending.remove(process)
                j.active_processes -= 1
                if j.active_processes == 0:
                    self._post(j, JOB_MSG_CODE["ACTIVE_PROCESS_ZERO"], None)
                self._maybe_destroy(j)
        process.job_limit_failed = []

    def _object_released(self, obj) -> None:
        """The last reference to `obj` went away (called by the handle tables)."""
        if isinstance(obj, Job):
            self._job_handles_closed(obj)
            return
        if getattr(obj, "job_limit_failed", None):
            self._release_failed(obj)
        for j in getattr(obj, "jobs", ()):  # a process object referenced its jobs
            self._maybe_destroy(j)

    # ------------------------------------------------------------------ ending
    def _terminate_for_limit(self, process, jobs) -> None:
        for j in jobs:
            j.total_terminated_processes += 1
        if not process.exited:
            self.terminate_process(process, ERROR_NOT_ENOUGH_QUOTA)

    def terminate_job(self, job: Job, exit_code: int) -> bool:
        """TerminateJobObject (§6.11): every process of the job and its child jobs exits
        with exit_code, child jobs' processes first (bottom-up)."""
        if job.closed:
            self.api_error("terminate_job", ERROR_INVALID_HANDLE, job=self.job_name(job))
            return False
        job.terminating = True
        try:
            for j in self._post_order(job):
                for p in list(j.members):
                    if not p.exited:
                        self.terminate_process(p, exit_code)
        finally:
            job.terminating = False
        self._maybe_destroy(job)
        return True

    def _post_order(self, job: Job) -> list[Job]:
        out = []
        for child in job.children:
            out.extend(self._post_order(child))
        out.append(job)
        return out

    def close_job_handle(self, job: Job) -> bool:
        """CloseHandle on a job handle: the last one applies KILL_ON_JOB_CLOSE (§6.11)."""
        if job.refs <= 0:
            self.api_error("close_job_handle", ERROR_INVALID_HANDLE, job=self.job_name(job))
            return False
        job.refs -= 1
        if job.refs == 0:
            self._job_handles_closed(job)
        return True

    def _job_handles_closed(self, job: Job) -> None:
        if job.limit_flags & JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE and not job.closed:
            job.terminating = True
            try:
                for j in self._post_order(job):
                    for p in list(j.members):
                        if not p.exited:
                            self.terminate_process(p, 0)  # ReactOS PspCloseJob: STATUS_SUCCESS
            finally:
                job.terminating = False
        self._maybe_destroy(job)

    def _maybe_destroy(self, job: Job) -> None:
        """A job lives until its last handle is closed and no process is active (§6.11),
        and while a member's process object (which references it) still exists."""
        if job.closed or job.refs > 0 or job.active_processes > 0:
            return
        if any(p.refs > 0 for p in job.members):
            return
        if any(not c.closed for c in job.children):
            return
        job.closed = True
        self._rate_unthrottle(job)
        if job in self.jobs:
            self.jobs.remove(job)
        if job.parent is not None:
            self._maybe_destroy(job.parent)

    # ------------------------------------------------------------------ memory (§6.6)
    def _commit_step(self, t, size: int) -> None:
        p = t.process
        if size <= 0:
            freed = min(-size, p.commit)
            p.commit -= freed
            t.last_result = True
            return
        for j in p.jobs:
            if j.limit_flags & JOB_OBJECT_LIMIT_PROCESS_MEMORY and (
                    p.commit + size > j.process_memory_limit):
                self._post(j, JOB_MSG_CODE["PROCESS_MEMORY_LIMIT"], p.pid)
                self.api_error("commit", ERROR_COMMITMENT_LIMIT, tid=t.tid, name=t.name,
                               job=self.job_name(j), limit="process_memory")
                t.last_result = False
                return
        for j in p.jobs:
            if j.limit_flags & JOB_OBJECT_LIMIT_JOB_MEMORY and (
                    self.job_memory_used(j) + size > j.job_memory_limit):
                self._post(j, JOB_MSG_CODE["JOB_MEMORY_LIMIT"], p.pid)
                self.api_error("commit", ERROR_COMMITMENT_LIMIT, tid=t.tid, name=t.name,
                               job=self.job_name(j), limit="job_memory")
                t.last_result = False
                return
        p.commit += size
        if p.commit > p.peak_commit:
            p.peak_commit = p.commit
        for j in p.jobs:
            if p.commit > j.peak_process_memory:
                j.peak_process_memory = p.commit
            used = self.job_memory_used(j)
            if used > j.peak_job_memory:
                j.peak_job_memory = used
        t.last_result = True

    def job_memory_used(self, job: Job) -> int:
        """Bytes committed by the job's live processes."""
        return sum(p.commit for p in job.members if not p.exited)

    # ------------------------------------------------------------------ time limits and rates
    def _arm_job_tick(self) -> None:
        if not self._job_tick_armed:
            self._job_tick_armed = True
            step = self.job_time_check
            self._rate_interval_start = self.now
            self._push((self.now // step + 1) * step, EV_CALL, self._job_tick, ())

    def _job_tick(self) -> None:
        """Periodic job work: time limits (§6.4, §6.5) and CPU rates (§6.13)."""
        active = False
        for job in list(self.jobs):
            flags = job.limit_flags
            if flags & JOB_OBJECT_LIMIT_PROCESS_TIME:
                active = True
                self._check_process_time(job)
            if flags & JOB_OBJECT_LIMIT_JOB_TIME and not job.signaled:
                active = True
                self._check_job_time(job)
            if job.cpu_rate:
                active = True
        if not active:
            self._job_tick_armed = False
            return
        self._rate_check()
        step = self.job_time_check
        self._push((self.now // step + 1) * step, EV_CALL, self._job_tick, ())

    def _check_process_time(self, job: Job) -> None:
        limit = self._effective_min(job, JOB_OBJECT_LIMIT_PROCESS_TIME, "per_process_user_time")
        self._charge_all()
        for p in list(job.members):
            # the innermost job with a limit checks it, against the chain's strictest
            inner = next(j for j in p.jobs if j.limit_flags & JOB_OBJECT_LIMIT_PROCESS_TIME)
            if p.exited or inner is not job:
                continue
            if self._times(p)[0] > limit:
                # END_OF_PROCESS_TIME is sent once termination is requested (§6.4)
                self._post(job, JOB_MSG_CODE["END_OF_PROCESS_TIME"], p.pid)
                self._terminate_for_limit(p, (job,))

    def _check_job_time(self, job: Job) -> None:
        user = self.job_times(job)[0] - job.period_base[0]
        if user <= job.per_job_user_time:
            return
        if job.end_of_job_time_action == JOB_OBJECT_POST_AT_END_OF_JOB and job.completion_port:
            # post, clear the limit, let the processes run (§6.5)
            self._post(job, JOB_MSG_CODE["END_OF_JOB_TIME"], None)
            job.limit_flags &= ~JOB_OBJECT_LIMIT_JOB_TIME
            job.per_job_user_time = 0
            return
        live = [p for p in job.members if not p.exited]
        job.total_terminated_processes += len(live)
        for p in live:
            self.terminate_process(p, ERROR_NOT_ENOUGH_QUOTA)
        job.signaled = True  # stays signaled until the limit is set again (§6.5)
        if job.waiters:
            self._signal(job, 0)

    # CPU rate control (§6.13).  A check (`_rate_tick`) runs at every clock tick, when a
    # rate is set or a process joins a rate-controlled job, and at the wake time the last
    # check computed: the earliest moment a budget could run out or a reservation could
    # need the rest of the interval, assuming the fastest progress (all of a job's threads
    # running, or every CPU busy).  Wakes are at least a step (`RATE_CHECK_DIVISIONS`)
    # apart; less than a step per CPU of a budget is given up rather than watched.

    def _rate_check(self) -> None:
        """Check the CPU rates now and schedule the next check it asks for."""
        if not any(j.cpu_rate for j in self.jobs):
            return
        wake = self._rate_tick()
        if self._rate_next is None or wake < self._rate_next:
            self._rate_next = wake
            self._rate_gen += 1  # the check scheduled before is superseded
            self._push(wake, EV_CALL, self._rate_wake, (self._rate_gen,))

    def _rate_wake(self, gen: int) -> None:
        if gen != self._rate_gen:
            return
        self._rate_next = None
        self._rate_check()

    def _rate_parent(self, job: Job) -> Job | None:
        """The nearest rate-controlled ancestor, whose allocation the job's rates are
        fractions of (§6.13); None: the whole machine."""
        for j in job.chain():
            if j is not job and j.cpu_rate:
                return j
        return None

    def _rate_allocation(self, job: Job) -> int:
        """Cycles per interval that the job's rates are fractions of."""
        parent = self._rate_parent(job)
        if parent is not None:
            budget = self._rate_budget(parent)
            if budget is not None:
                return budget
        return self.cpu_rate_interval * self.ncpu

    def _rate_budget(self, job: Job) -> int | None:
        """Cycles the job may run in one interval; None: no cap right now."""
        rate = job.cpu_rate
        if rate is None:
            return None
        mode = rate["mode"]
        if mode == "hard_cap":
            return self._rate_allocation(job) * rate["rate"] // 10000
        if mode == "min_max":
            return self._rate_allocation(job) * rate["max_rate"] // 10000
        # weight: a share among the weight-based sibling jobs that have work
        rivals = [j for j in self.jobs if j.cpu_rate and j.cpu_rate["mode"] == "weight"
                  and j.parent is job.parent and self._job_has_work(j)]
        if job not in rivals or len(rivals) < 2:
            return None
        return self._rate_allocation(job) * rate["weight"] // sum(
            j.cpu_rate["weight"] for j in rivals)

    def _rate_reserved(self, job: Job) -> int:
        """Cycles the job's MinRate reserves in one interval (0: none)."""
        rate = job.cpu_rate
        if not rate or not rate.get("min_rate"):
            return 0
        return self._rate_allocation(job) * rate["min_rate"] // 10000

    def _job_has_work(self, job: Job) -> bool:
        for p in job.members:
            if p.exited:
                continue
            for t in p.threads:
                if t.state in (READY, RUNNING, STANDBY) or (
                        t.state == WAITING and t.wait_reason == WrCpuRateControl):
                    return True
        return False

    def _rate_usage(self) -> dict[Job, tuple[int, int]]:
        """For each rate-controlled job, in one pass: (cycles its threads ran this interval,
        the most CPUs they can occupy at once, i.e. how fast that can grow)."""
        self._charge_all()
        ncpu = self.ncpu
        usage = {}
        for job in self.jobs:
            if not job.cpu_rate:
                continue
            total = threads = 0
            for p in job.members:
                base_user, base_kernel = job.baselines[id(p)]
                total -= base_user + base_kernel
                live = not p.exited
                for t in p.threads:
                    total += t.user + t.kernel
                    if live and t.state != TERMINATED:
                        threads += 1
            if job.rate_mark is None:
                job.rate_mark = total
            usage[job] = (total - job.rate_mark, max(1, min(ncpu, threads)))
        return usage

    def _rate_tick(self) -> int:
        """Decide which jobs are held now: those that used their budget, until the
        interval ends, and those yielding to MinRate reservations.  Holds are applied
        before releases, and a job is never released and held again in one check (the
        dispatcher would keep a ready thread it outranks waiting).  Returns when to
        check again."""
        now = self.now
        interval = self.cpu_rate_interval
        interval_end = self._rate_interval_start + interval
        if now >= interval_end:
            self._rate_interval_start = now - (now - self._rate_interval_start) % interval
            interval_end = self._rate_interval_start + interval
            self._rate_spent.clear()
            for job in self.jobs:
                job.rate_mark = None  # a new interval's budget counts from now
        usage = self._rate_usage()
        spent = self._rate_spent
        step = self._rate_step
        runs_out = {}  # the earliest each budget could run out
        for job, (used, fastest) in usage.items():
            if job in spent:
                continue
            budget = self._rate_budget(job)
            if budget is None:
                continue
            left = budget - used
            if left < fastest * step:
                spent[job] = None  # too little left to watch: the job is done
            else:
                runs_out[job] = now + left // fastest
        yielders, wake = self._rate_reservations(interval_end, usage)
        for job, when in runs_out.items():
            if job not in yielders:
                wake = min(wake, when)
        for job in (*spent, *yielders):
            if not job.rate_held:
                self._rate_throttle(job)
        for job in self.jobs:
            if job.rate_held and job not in spent and job not in yielders:
                self._rate_unthrottle(job)
        return wake

    def _rate_reservations(self, interval_end: int,
                           usage: dict[Job, tuple[int, int]]) -> tuple[dict, int]:
        """MinRate (a model: Windows does not document the mechanism, §6.13).  A job with
        work whose MinRate share of this interval is not used up yet has an outstanding
        reservation.  Jobs compete within the allocation of their nearest rate-controlled
        ancestor (the machine when none): when what is left of it in this interval is
        needed for the outstanding reservations there, the other rate-controlled jobs
        there (including those whose reservation is met) yield in WrCpuRateControl until
        the reservations are met or the interval ends.  Threads in no rate-controlled job
        never yield.  Returns (the jobs that must yield, when to check again)."""
        now = self.now
        ncpu = self.ncpu
        step = self._rate_step
        spent = self._rate_spent
        wake = interval_end
        groups: dict[Job | None, list[tuple[Job, int, int]]] = {}
        for job, (used, fastest) in usage.items():
            if job in spent:
                continue  # held for its own budget: it cannot use a reservation
            reserved = self._rate_reserved(job)
            if reserved > used and self._job_has_work(job):
                groups.setdefault(self._rate_parent(job), []).append(
                    (job, reserved - used, fastest))
        yielders: dict[Job, None] = {}
        # outer allocations first, so that an inner one under a yielding job is skipped
        for parent, reservers in sorted(groups.items(), key=lambda g: _depth(g[0])):
            chain = list(parent.chain()) if parent is not None else []
            if any(j in spent or j in yielders for j in chain):
                continue  # everything there is held anyway
            left = (interval_end - now) * ncpu
            for j in chain:
                budget = self._rate_budget(j)
                if budget is not None:
                    left = min(left, budget - usage[j][0])
            # a met reservation is noticed up to a step late (below); keep room for that
            margin = sum(fastest * step for _, _, fastest in reservers)
            spare = left - sum(out for _, out, _ in reservers) - margin
            if spare >= ncpu * step:
                # what is left shrinks by at most ncpu cycles a cycle: check when it may not
                wake = min(wake, now + spare // ncpu)
                continue
            holding = {j for j, _, _ in reservers}
            for j in usage:
                if j not in holding and self._rate_parent(j) is parent:
                    yielders[j] = None
            # the earliest a reservation can be met: that job has to yield then too
            wake = min(wake, now + max(step, min(out // fastest
                                                 for _, out, fastest in reservers)))
        return yielders, wake

    def _rate_throttle(self, job: Job) -> None:
        job.rate_held = True
        for p in job.members:
            if not p.exited:
                self._rate_throttle_process(p)

    def _rate_throttle_process(self, p) -> None:
        p.rate_throttled += 1
        if p.rate_throttled > 1:
            return
        for t in p.threads:
            st = t.state
            if st == RUNNING:
                c = t.cpu
                self._charge(c)
                self._park(t)
                self._leave(c, t, LEAVE_BLOCK, WrCpuRateControl)
            elif st == READY:
                self._dequeue(t)
                self._park(t)
            elif st == STANDBY:
                self._unstandby(t)
                self._park(t)

    def _park(self, t) -> None:
        """Hold t in WrCpuRateControl until its job's next interval."""
        t.state = WAITING
        t.wait_reason = WrCpuRateControl
        for j in t.process.jobs:
            if j.rate_held and t not in j.throttled:
                j.throttled.append(t)
                break

    def _rate_unthrottle(self, job: Job) -> None:
        if not job.rate_held:
            return
        job.rate_held = False
        self._rate_spent.pop(job, None)
        for p in job.members:
            if p.rate_throttled and not p.exited:
                p.rate_throttled -= 1
        parked, job.throttled = job.throttled, []
        for t in parked:
            if t.state != WAITING or t.wait_reason != WrCpuRateControl:
                continue
            if t.process.rate_throttled:
                self._park(t)  # another job up the chain still holds it
                continue
            if t.suspend_count:
                t.wait_reason = Suspended  # it now waits on its suspension
                continue
            t.wait_reason = -1
            t.preempted = False
            self._ready(t)

    # ------------------------------------------------------------------ views
    def _job_states(self) -> list[dict]:
        to_us = cycles_to_us
        out = []
        for job in self.jobs:
            user, kernel = self.job_times(job)
            pu, pk = job.period_base
            eff_aff = self._effective_affinity(job)
            eff_cls = self._effective_class(job)
            f = job.limit_flags
            out.append({
                "name": self.job_name(job), "jid": job.jid,
                "parent": self.job_name(job.parent) if job.parent is not None else None,
                "children": [self.job_name(c) for c in job.children if not c.closed],
                "active_processes": job.active_processes,
                "total_processes": job.total_processes,
                "total_terminated_processes": job.total_terminated_processes,
                "total_user_time_us": to_us(user), "total_kernel_time_us": to_us(kernel),
                "this_period_user_time_us": to_us(user - pu),
                "this_period_kernel_time_us": to_us(kernel - pk),
                "processes": [p.pid for p in job.members],
                "live_processes": [p.pid for p in job.members if not p.exited],
                "limit_flags": f,
                "limits": {
                    "active_process": (job.active_process_limit
                                       if f & JOB_OBJECT_LIMIT_ACTIVE_PROCESS else None),
                    "affinity": mask_to_list(job.affinity) if f & JOB_OBJECT_LIMIT_AFFINITY else None,
                    "priority_class": job.priority_class,
                    "scheduling_class": (job.scheduling_class
                                         if f & JOB_OBJECT_LIMIT_SCHEDULING_CLASS else None),
                    "per_process_user_time_us": (to_us(job.per_process_user_time)
                                                 if f & JOB_OBJECT_LIMIT_PROCESS_TIME else None),
                    "per_job_user_time_us": (to_us(job.per_job_user_time)
                                             if f & JOB_OBJECT_LIMIT_JOB_TIME else None),
                    "end_of_job_time_action": ("post" if job.end_of_job_time_action
                                               else "terminate"),
                    "process_memory": (job.process_memory_limit
                                       if f & JOB_OBJECT_LIMIT_PROCESS_MEMORY else None),
                    "job_memory": job.job_memory_limit if f & JOB_OBJECT_LIMIT_JOB_MEMORY else None,
                    "kill_on_job_close": bool(f & JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE),
                    "breakaway_ok": bool(f & JOB_OBJECT_LIMIT_BREAKAWAY_OK),
                    "silent_breakaway_ok": bool(f & JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK),
                    "die_on_unhandled_exception": bool(
                        f & JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION),
                },
                "effective": {
                    "priority_class": eff_cls,
                    "affinity": mask_to_list(eff_aff) if eff_aff else None,
                    "scheduling_class": self._effective_scheduling_class(job),
                },
                "cpu_rate": dict(job.cpu_rate) if job.cpu_rate else None,
                "cpu_rate_throttled": job.rate_held,
                "job_memory_used": self.job_memory_used(job),
                "peak_process_memory": job.peak_process_memory,
                "peak_job_memory": job.peak_job_memory,
                "signaled": job.signaled, "completion_port": job.completion_port,
                "handles": job.refs,
                "messages": [{"time_us": to_us(t), "message": JOB_OBJECT_MSG[code],
                              "code": code, "pid": pid} for t, code, pid in job.messages],
            })
        return out
