"""Running a scenario on the simulated kernel: the engine behind ``koi run``.

    >>> from core.scenario import parse_scenario
    >>> result = run_scenario(parse_scenario(TEXT, "demo.toml"))
    >>> result.cswitch_csv(); result.events_jsonl(); result.state_json()

`build_machine` turns a validated Scenario (core.scenario) into a kernel Machine with its
objects created or scheduled; `run_scenario` also runs it and collects the events.
The outputs are formats.md §3. Creation rules are formats.md §2: a process, thread or
job appears at exactly its `start`, objects due at the same time are created in file
order (a process's threads in the order listed), and each newly ready thread is
dispatched before the next object is created.

The machine is booted first with the scenario's boot set (core.kernel.boot); a
process's `parent` may name a process of that set.  Jobs are created at time 0 in file
order with their limits; a process with `job` is assigned right after its creation,
before its threads exist.  A limit the kernel refuses (an affinity outside the machine,
say) is a ScenarioError naming the file, line and key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from core import scenario as sc
from core.kernel import KernelError, Machine, ProgramLivelock, program
from core.kernel.boot import boot
from core.layouts import catalogue
from core.kernel.constants import ERROR_ACCESS_DENIED, ERROR_INVALID_HANDLE
from core.kernel.objects import DispatcherObject
from core.kernel.objects import Job as KJob
from core.kernel.objects import Process as KProcess
from core.kernel.objects import Thread as KThread
from core.units import format_duration

__all__ = ["Run", "RunResult", "build_machine", "run_scenario"]

@dataclass
class Run:
    """A scenario loaded into a machine: the Machine, and the kernel object behind each
    scenario name (objects that start later appear in the maps when they are created)."""
    scenario: sc.Scenario
    machine: Machine
    objects: dict[str, DispatcherObject] = field(default_factory=dict)  # events, semaphores, mutexes
    processes: dict[str, KProcess] = field(default_factory=dict)
    threads: dict[str, KThread] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)  # every kernel event, in time order
    boot_processes: dict[str, KProcess] = field(default_factory=dict)  # boot set, by name
    jobs: dict[str, KJob] = field(default_factory=dict)
    program_steps: dict[str, tuple] = field(default_factory=dict)  # [programs] as kernel steps

    def run_until(self, until_ns: int) -> None:
        """Run to `until_ns`; a livelocked program becomes a ScenarioError on its thread."""
        try:
            self.machine.run_until(until_ns)
        except ProgramLivelock as exc:
            raise self._livelock_error(exc) from None

    def _livelock_error(self, exc: ProgramLivelock) -> sc.ScenarioError:
        tid = exc.tid
        for pi, p in enumerate(self.scenario.processes):
            for ti, t in enumerate(p.threads):
                kt = self.threads.get(t.name)
                if kt is not None and kt.tid == tid:
                    return _error(self.scenario, ("process", pi, "thread", ti, "program"),
                                  f"the program never uses CPU time or blocks ({exc})")
        return sc.ScenarioError(str(exc), self.scenario.filename)


@dataclass
class RunResult:
    """What a finished run leaves: the machine at `until` and the events it emitted."""
    run: Run
    until_ns: int

    @property
    def machine(self) -> Machine:
        return self.run.machine

    @property
    def events(self) -> list[dict]:
        return self.run.events

    def cswitch_csv(self) -> str:
        """--cswitch-csv: the header and one row per context switch (formats.md §3)."""
        return self.machine.cswitch_csv()

    def events_jsonl(self) -> str:
        """--events-jsonl: one compact JSON object per line, in time order."""
        return "".join(json.dumps(ev, separators=(",", ":")) + "\n" for ev in self.events)

    def state(self) -> dict:
        """--state-json as a dict: every process including Idle (0) and System (4)."""
        return self.machine.snapshot()

    def state_json(self) -> str:
        return json.dumps(self.state(), indent=2) + "\n"


# ---- building -------------------------------------------------------------------------------

def build_machine(scenario: sc.Scenario, seed: int | None = None) -> Run:
    """A Machine for `scenario` at time 0: objects due at 0 are created (and dispatched),
    later ones and the [[at]] actions are scheduled. `seed` overrides [system] seed.
    Raises ScenarioError for a limit or object the kernel refuses."""
    creations = _creation_order(scenario)
    _check_references(scenario, creations)
    system = scenario.system
    try:
        build = catalogue().find(system.build, None)
        machine = Machine(cpus=system.cpus,
                          win32_priority_separation=system.priority_separation,
                          windows_build=build.id, windows_arch=build.arch,
                          seed=system.seed if seed is None else seed)
    except KernelError as exc:
        raise _error(scenario, ("system",), str(exc)) from None
    run = Run(scenario, machine)
    # The events output starts after boot, as a trace started on a running machine does
    run.boot_processes = boot(machine, system.boot)
    machine.subscribe(run.events.append)
    for e in scenario.events:
        run.objects[e.name] = machine.create_event(e.name, e.kind, e.signaled)
    for s in scenario.semaphores:
        run.objects[s.name] = machine.create_semaphore(s.name, s.initial, s.maximum)
    for mx in scenario.mutexes:
        run.objects[mx.name] = machine.create_mutex(mx.name)
    for i, j in enumerate(scenario.jobs):
        _create_job(run, i, j)

    # One callback per instant, so that everything due then is created in file order with
    # a dispatch after each; instants are pushed before the actions, so at equal times
    # creations come first and an action can name what was created at its own time.
    by_time: dict[int, list] = {}
    for when, _order, item in creations:
        by_time.setdefault(when, []).append(item)
    for when in sorted(by_time):
        if when == 0:
            try:
                _create_all(run, by_time[0])
            except ProgramLivelock as exc:  # a thread created at 0 runs its program at once
                raise run._livelock_error(exc) from None
        else:
            machine.at(when, _create_all, run, by_time[when])
    for at in scenario.at:
        machine.at(at.time_ns, _do_action, run, at.action)
    return run


def run_scenario(scenario: sc.Scenario, until_ns: int | None = None,
                 seed: int | None = None) -> RunResult:
    """Build and run `scenario` to `until_ns` (default: its [system] until, else 10 s)."""
    run = build_machine(scenario, seed)
    until = scenario.until_ns if until_ns is None else until_ns
    run.run_until(until)
    return RunResult(run, until)


def _error(scenario: sc.Scenario, path: tuple, message: str) -> sc.ScenarioError:
    line = sc._Locator(scenario.source).line_of(path) if scenario.source else None
    return sc.ScenarioError(message, scenario.filename, line, sc.format_key(path) or None)


def _program_path(t: sc.Thread, pi: int, ti: int) -> tuple:
    """Where a thread's steps are written: inline, or a [programs] entry it names."""
    if t.program_name is not None:
        return ("programs", t.program_name)
    return ("process", pi, "thread", ti, "program")


def _creation_order(scenario: sc.Scenario) -> list[tuple[int, int, tuple]]:
    """(time, file order, item) for every process and thread, sorted as they are created.
    An item is ("process", index) — the process with its initial thread and every thread
    starting with it — or ("thread", process index, thread index)."""
    out = []
    order = 0
    for pi, p in enumerate(scenario.processes):
        out.append((p.start_ns, order, ("process", pi)))
        order += 1
        for ti, t in enumerate(p.threads):
            if ti > 0 and t.start_ns != p.start_ns:
                out.append((t.start_ns, order, ("thread", pi, ti)))
            order += 1
    out.sort(key=lambda c: (c[0], c[1]))
    return out


def _check_references(scenario: sc.Scenario, creations) -> None:
    """A wait needs the object to exist when the waiting thread is created (the program
    holds a handle to it), and an action needs its target to exist when it runs."""
    rank: dict[str, tuple[int, int, int]] = {}  # name -> (time, creation rank, within it)
    for r, (when, _order, item) in enumerate(creations):
        p = scenario.processes[item[1]]
        if item[0] == "process":
            rank[p.name] = (when, r, 0)
            for ti, t in enumerate(p.threads):
                if ti == 0 or t.start_ns == p.start_ns:
                    rank[t.name] = (when, r, ti + 1)
        else:
            rank[p.threads[item[2]].name] = (when, r, 0)
    for pi, p in enumerate(scenario.processes):
        for ti, t in enumerate(p.threads):
            for k, step in enumerate(t.program):
                if isinstance(step, sc.Wait) and step.kind in ("process", "thread"):
                    if rank[step.target] >= rank[t.name]:
                        raise _error(scenario, _program_path(t, pi, ti) + (k,),
                                     f"'{step}': {step.kind} {step.target!r} does not exist yet "
                                     f"when thread {t.name!r} is created (this version needs a "
                                     f"wait target to exist before its waiter)")
    for i, at in enumerate(scenario.at):
        for attr in ("thread", "process"):
            name = getattr(at.action, attr, None)
            if name is not None and rank[name][0] > at.time_ns:
                raise _error(scenario, ("at", i, "time"),
                             f"'{at.action}' at {format_duration(at.time_ns)}: {attr} {name!r} "
                             f"is only created at {format_duration(rank[name][0])}")


# ---- creation (at its start time) ------------------------------------------------------------

def _create_job(run: Run, i: int, j: sc.Job) -> None:
    m = run.machine
    parent = run.jobs[j.parent] if j.parent is not None else None
    job = m.create_job(j.name, parent, j.completion_port)
    run.jobs[j.name] = job
    lim = j.limits
    ok = m.set_job_limits(
        job, active_process=lim.active_process, affinity=lim.affinity,
        priority_class=lim.priority_class, scheduling_class=lim.scheduling_class,
        per_process_user_time_ns=lim.per_process_user_time_ns,
        per_job_user_time_ns=lim.per_job_user_time_ns,
        end_of_job_time_action=lim.end_of_job_time_action,
        process_memory=lim.process_memory_bytes, job_memory=lim.job_memory_bytes,
        kill_on_job_close=lim.kill_on_job_close, breakaway_ok=lim.breakaway_ok,
        silent_breakaway_ok=lim.silent_breakaway_ok)
    if ok and j.cpu_rate is not None:
        r = j.cpu_rate
        ok = m.set_job_cpu_rate(job, hard_cap=r.hard_cap, weight=r.weight,
                                min_rate=r.min_rate, max_rate=r.max_rate)
        where = ("job", i, "cpu_rate")
    else:
        where = ("job", i, "limits")
    if not ok:
        # both calls say why they refuse a limit (last_error_reason)
        raise _error(run.scenario, where, f"job {j.name!r}: SetInformationJobObject fails: "
                                          f"{m.last_error_reason}")


def _create_all(run: Run, items: list[tuple]) -> None:
    for item in items:
        if item[0] == "process":
            _create_process(run, item[1])
        else:
            p = run.scenario.processes[item[1]]
            _create_thread(run, run.processes.get(p.name), item[1], item[2], False)


def _create_process(run: Run, pi: int) -> None:
    p = run.scenario.processes[pi]
    m = run.machine
    parent = (run.processes.get(p.parent) or run.boot_processes.get(p.parent)
              if p.parent else None)
    # Without an explicit class or affinity the kernel applies inheritance from the parent
    klass = p.priority_class if p.priority_class_given or parent is None else None
    affinity = list(p.affinity) if p.affinity_given or parent is None else None
    try:
        proc = m.create_process(p.name, klass, affinity, p.foreground, p.disable_boost, parent,
                                protection=p.protection, breakaway=p.breakaway)
    except KernelError as exc:
        raise _error(run.scenario, ("process", pi), str(exc)) from None
    if proc is None:
        return  # CreateProcess failed (a job refused the child): an api_error event says so
    run.processes[p.name] = proc
    if p.job is not None:
        m.assign_process_to_job(run.jobs[p.job], proc)  # right after creation (formats §2)
    for ti, t in enumerate(p.threads):
        if ti == 0 or t.start_ns == p.start_ns:
            # CREATE_SUSPENDED holds the initial (primary) thread only, as in Windows
            _create_thread(run, proc, pi, ti, p.create_suspended and ti == 0)


def _create_thread(run: Run, proc: KProcess | None, pi: int, ti: int, suspended: bool) -> None:
    t = run.scenario.processes[pi].threads[ti]
    m = run.machine
    if proc is None:
        m.api_error("create_thread", ERROR_INVALID_HANDLE, name=t.name)  # never created
        return
    if proc.exited:
        # CreateThread into a process that has already exited fails and creates nothing;
        # reported as the kernel reports any failed call (an api_error event)
        m.api_error("create_thread", ERROR_ACCESS_DENIED, pid=proc.pid, name=t.name)
        return
    steps = tuple(_step(run, s) for s in t.program)
    # Without an explicit affinity a thread takes its process's, which may be inherited
    affinity = list(t.affinity) if t.affinity_given else None
    try:
        kt = m.create_thread(proc, t.priority, affinity, t.ideal_cpu, t.disable_boost, steps,
                             suspended, t.name)
    except KernelError as exc:
        raise _error(run.scenario, ("process", pi, "thread", ti), str(exc)) from None
    run.threads[t.name] = kt
    m.dispatch()  # each newly ready thread is dispatched before the next is created


def _target(run: Run, name: str):
    for table in (run.objects, run.processes):
        if name in table:
            return table[name]
    return run.threads[name]


def _steps(run: Run, program_name: str) -> tuple:
    """A [programs] entry as kernel steps, built once (fibers may run it many times)."""
    cache = run.program_steps
    if program_name not in cache:
        cache[program_name] = tuple(_step(run, s) for s in run.scenario.programs[program_name])
    return cache[program_name]


def _step(run: Run, s) -> tuple:
    return kernel_step(s, lambda name: _target(run, name), lambda name: _steps(run, name))


def kernel_step(s, resolve, program_steps=None) -> tuple:
    """A scenario step as the kernel's step tuple (core/kernel/program.py).  `resolve`
    gives the kernel object a step names (event, semaphore, mutex, process, thread);
    `program_steps` a [programs] entry's kernel steps, for fiber_create (ValueError
    without it)."""
    if isinstance(s, sc.Cpu):
        return program.kcpu(s.duration_ns) if s.kernel else program.cpu(s.duration_ns)
    if isinstance(s, sc.Wait):
        return program.wait(resolve(s.target), s.timeout_ns)
    if isinstance(s, sc.Sleep):
        return program.sleep(s.duration_ns)
    if isinstance(s, sc.Yield):
        return program.yield_()
    if isinstance(s, sc.Io):
        return program.io(s.device, s.duration_ns)  # the name: io_complete matches on it
    if isinstance(s, sc.SetEvent):
        return program.set_event(resolve(s.event))
    if isinstance(s, sc.ResetEvent):
        return program.reset_event(resolve(s.event))
    if isinstance(s, sc.PulseEvent):
        return program.pulse_event(resolve(s.event))
    if isinstance(s, sc.ReleaseSemaphore):
        return program.release_semaphore(resolve(s.semaphore), s.count)
    if isinstance(s, sc.ReleaseMutex):
        return program.release_mutex(resolve(s.mutex))
    if isinstance(s, sc.SetPriority):
        return program.set_priority(s.priority)
    if isinstance(s, sc.Exit):
        return program.exit_thread(s.code)
    if isinstance(s, sc.Repeat):
        return program.repeat()
    if isinstance(s, sc.Commit):
        return program.decommit(s.size_bytes) if s.release else program.commit(s.size_bytes)
    if isinstance(s, sc.FiberConvert):
        return program.fiber_convert()
    if isinstance(s, sc.FiberCreate):
        if program_steps is None:
            raise ValueError(f"step '{s}' needs a scenario's [programs]")
        return program.fiber_create(s.fiber, lambda: program_steps(s.program))
    if isinstance(s, sc.FiberSwitch):
        return program.fiber_switch(s.fiber)
    if isinstance(s, sc.FiberDelete):
        return program.fiber_delete(s.fiber)
    if isinstance(s, sc.FiberToThread):
        return program.fiber_to_thread()
    if isinstance(s, sc.FlsAlloc):
        return program.fls_alloc(s.slot)
    if isinstance(s, sc.FlsSet):
        return program.fls_set(s.slot, s.value)
    if isinstance(s, sc.FlsFree):
        return program.fls_free(s.slot)
    raise TypeError(f"step {s} has no kernel equivalent")


# ---- external actions ------------------------------------------------------------------------

def _do_action(run: Run, a) -> None:
    m = run.machine
    name = getattr(a, "process", None)
    if name is not None and name not in run.processes:
        # its CreateProcess failed, so there is no handle to act on
        m.api_error(a.op, ERROR_INVALID_HANDLE, name=name)
        return
    if isinstance(a, sc.SetEvent):
        m.set_event(run.objects[a.event])
    elif isinstance(a, sc.Suspend):
        m.suspend_thread(run.threads[a.thread])
    elif isinstance(a, sc.Resume):
        m.resume_thread(run.threads[a.thread])
    elif isinstance(a, sc.TerminateThread):
        m.terminate_thread(run.threads[a.thread], a.code)
    elif isinstance(a, sc.TerminateProcess):
        m.terminate_process(run.processes[a.process], a.code)
    elif isinstance(a, sc.SetThreadPriority):
        m.set_thread_priority(run.threads[a.thread], a.priority)
    elif isinstance(a, sc.SetPriorityClass):
        m.set_priority_class(run.processes[a.process], a.priority_class)
    elif isinstance(a, sc.SetAffinity):
        m.set_thread_affinity(run.threads[a.thread], list(a.cpus))
    elif isinstance(a, sc.SetForeground):
        m.set_foreground(run.processes[a.process])
    elif isinstance(a, sc.SetPrioritySeparation):
        m.set_priority_separation(a.value)
    elif isinstance(a, sc.Assign):
        m.assign_process_to_job(run.jobs[a.job], run.processes[a.process])
    elif isinstance(a, sc.TerminateJob):
        m.terminate_job(run.jobs[a.job], a.code)
    elif isinstance(a, sc.CloseJobHandle):
        m.close_job_handle(run.jobs[a.job])
    elif isinstance(a, sc.OpenProcess):
        caller = run.processes.get(a.caller) or run.boot_processes.get(a.caller)
        target = run.processes.get(a.target) or run.boot_processes.get(a.target)
        if caller is None or target is None:
            m.api_error("open_process", ERROR_INVALID_HANDLE, caller=a.caller, target=a.target)
        else:
            m.open_process(caller, target, a.access)
    elif isinstance(a, sc.IoComplete):
        m.io_complete(run.threads[a.thread], a.device)
    else:
        raise TypeError(f"action {a} has no kernel equivalent")
    m.dispatch()  # what the action readied runs at this instant, before anything else
