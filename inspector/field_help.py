"""What the important members of the process, thread and job structures mean.

The object inspector shows these as tooltips. Entries are keyed by the structure
that *declares* the member (``_KTHREAD`` for ``_ETHREAD.Tcb.WaitReason``) and the
member's own name, so one text serves every build that has the member and every
object that embeds the structure. Texts say what the kernel uses the member for;
where it matters they name the routine or the Windows version that changed it.
"""

from __future__ import annotations

_TICKS = ("Clock ticks (one per clock interrupt, 15.625 ms by default) that found {who} "
          "running in {mode} mode; the clock interrupt charges them (KiUpdateRunTime).")

FIELD_HELP: dict[tuple[str, str], str] = {
    # ---- _EPROCESS ----------------------------------------------------------------
    ("_EPROCESS", "Pcb"):
        "The kernel's part of the process (_KPROCESS): what the dispatcher needs — base "
        "priority, affinity, quantum, the list of its threads, CPU times.",
    ("_EPROCESS", "ProcessLock"):
        "Push lock that serialises changes to the process's fields (e.g. its thread list).",
    ("_EPROCESS", "UniqueProcessId"):
        "The process ID (PID). It is a handle in the kernel's client-ID table "
        "(PspCidTable), hence the pointer type and the multiple of 4.",
    ("_EPROCESS", "ActiveProcessLinks"):
        "Entry in the system-wide list of processes headed by nt!PsActiveProcessHead. "
        "Debuggers (!process 0 0) and process enumeration walk this list; a process "
        "unlinked from it is hidden from them (DKOM).",
    ("_EPROCESS", "RundownProtect"):
        "Rundown protection: code that uses the process acquires it, and process deletion "
        "waits until every holder has released it.",
    ("_EPROCESS", "CreateTime"):
        "When the process was created: 100 ns units since 1601-01-01 UTC (a FILETIME).",
    ("_EPROCESS", "ExitTime"):
        "When the process exited (0 while it runs); 100 ns units since 1601-01-01 UTC.",
    ("_EPROCESS", "ExitStatus"):
        "The process's exit code (NTSTATUS); STATUS_PENDING (0x103) while it is still running.",
    ("_EPROCESS", "ImageFileName"):
        "The image file name without its path, cut to fit the array, as !process shows it. "
        "The full path is in SeAuditProcessCreationInfo.",
    ("_EPROCESS", "InheritedFromUniqueProcessId"):
        "PID of the process that created this one (the parent). It is not updated when the "
        "parent exits, so the PID may since have been reused.",
    ("_EPROCESS", "ThreadListHead"):
        "Head of the list of this process's threads (_ETHREAD, linked through "
        "ETHREAD.ThreadListEntry).",
    ("_EPROCESS", "ActiveThreads"):
        "Number of threads of the process that have not exited; the process exits when the "
        "last one does.",
    ("_EPROCESS", "Peb"):
        "User-mode address of the Process Environment Block (_PEB). NULL for System, Idle "
        "and minimal processes, which have no user-mode part.",
    ("_EPROCESS", "Job"):
        "The job the process belongs to (_EJOB), NULL if none. With nested jobs (Windows 8 "
        "and later) the innermost job.",
    ("_EPROCESS", "JobLinks"):
        "Entry in the job's list of member processes (EJOB.ProcessListHead).",
    ("_EPROCESS", "Token"):
        "The primary access token as an _EX_FAST_REF: the _TOKEN pointer with its low bits "
        "(4 on x64, 3 on x86) holding a cached reference count.",
    ("_EPROCESS", "ObjectTable"):
        "The process's handle table (_HANDLE_TABLE).",
    ("_EPROCESS", "PriorityClass"):
        "The priority class as PROCESS_PRIORITY_CLASS_*: 1 Idle, 2 Normal, 3 High, "
        "4 Realtime, 5 Below normal, 6 Above normal. Pcb.BasePriority follows from it.",
    ("_EPROCESS", "Protection"):
        "Protected-process level (_PS_PROTECTION, Windows 8.1 and later): Type (protected "
        "or protected light) and Signer decide which processes may open it.",
    ("_EPROCESS", "SessionProcessLinks"):
        "Entry in the list of processes of the same terminal-services session.",
    ("_EPROCESS", "Win32Process"):
        "win32k's per-process data; NULL until the process first uses a GUI call.",
    ("_EPROCESS", "SectionBaseAddress"):
        "Address where the process's executable image is mapped.",
    ("_EPROCESS", "SeAuditProcessCreationInfo"):
        "The full NT path of the image file (an _OBJECT_NAME_INFORMATION).",
    ("_EPROCESS", "VirtualSize"):
        "Bytes of virtual address space the process has reserved.",
    ("_EPROCESS", "CommitCharge"):
        "Pages of private memory the process has committed (charged against the commit limit).",
    ("_EPROCESS", "DebugPort"):
        "The debug object when a user-mode debugger is attached, else NULL.",
    ("_EPROCESS", "Flags"):
        "Process flags (PS_PROCESS_FLAGS_*), also shown bit by bit below it.",
    ("_EPROCESS", "Flags2"):
        "Second word of process flags, also shown bit by bit below it.",
    ("_EPROCESS", "Flags3"):
        "Third word of process flags, also shown bit by bit below it.",
    ("_EPROCESS", "ProcessExiting"):
        "Set once the process has started to exit.",
    ("_EPROCESS", "CreateInterruptTime"):
        "Interrupt time (100 ns since boot) when the process was created.",
    ("_EPROCESS", "SignatureLevel"):
        "Code-integrity signing level of the process's executable.",
    ("_EPROCESS", "SectionSignatureLevel"):
        "Minimum signing level the process requires of DLLs it loads.",
    ("_EPROCESS", "MitigationFlags"):
        "Exploit mitigations in force (CFG, ASLR policies, …); bit by bit in MitigationFlagsValues.",
    # ---- _KPROCESS ----------------------------------------------------------------
    ("_KPROCESS", "Header"):
        "Dispatcher header: a process is a waitable object, signalled (SignalState 1) when "
        "it has exited. Header.Type is ProcessObject (3).",
    ("_KPROCESS", "DirectoryTableBase"):
        "Physical address of the process's top-level page table: loaded into CR3 when a "
        "thread of another process is switched out for one of this.",
    ("_KPROCESS", "UserDirectoryTableBase"):
        "Page-table base used in user mode with kernel page-table isolation (KVA shadow).",
    ("_KPROCESS", "ThreadListHead"):
        "Head of the kernel's list of this process's threads (_KTHREAD, linked through "
        "KTHREAD.ThreadListEntry).",
    ("_KPROCESS", "Affinity"):
        "Processors the process's threads may run on: a bitmask (KAFFINITY) before "
        "Windows 7, then per processor group (_KAFFINITY_EX). New threads inherit it.",
    ("_KPROCESS", "ActiveProcessors"):
        "Processors on which a thread of this process is currently running.",
    ("_KPROCESS", "ReadyListHead"):
        "Threads that became ready while the process was swapped out; they go to the ready "
        "queues when it is swapped in.",
    ("_KPROCESS", "SwapListEntry"):
        "Entry in the list of processes waiting to be swapped in or out.",
    ("_KPROCESS", "BasePriority"):
        "The process's base priority, from its priority class: 4 Idle, 6 Below normal, "
        "8 Normal, 10 Above normal, 13 High, 24 Realtime. New threads' base priorities are "
        "set relative to it.",
    ("_KPROCESS", "QuantumReset"):
        "The quantum a thread of this process gets whenever its quantum is replenished, in "
        "quantum units (3 per clock tick): 6 (2 ticks) for background processes on client "
        "Windows, 36 (12 ticks) on servers. Foreground quantum stretching raises it for the "
        "foreground process (PspForegroundQuantum).",
    ("_KPROCESS", "ThreadQuantum"):
        "The quantum given to the process's threads, in quantum units (3 per clock tick); "
        "the Windows XP/2003 name of QuantumReset.",
    ("_KPROCESS", "DisableBoost"):
        "SetProcessPriorityBoost(TRUE): the process's threads get no wait-completion boosts.",
    ("_KPROCESS", "DisableQuantum"):
        "Quantum end is skipped for the process's threads: they keep running until they "
        "wait or a higher-priority thread preempts them.",
    ("_KPROCESS", "AutoAlignment"):
        "Alignment faults are fixed up by the kernel (SetErrorMode SEM_NOALIGNMENTFAULTEXCEPT).",
    ("_KPROCESS", "ThreadSeed"):
        "Where the round robin of ideal processors for the process's new threads continues.",
    ("_KPROCESS", "IdealNode"):
        "Preferred NUMA node of the process; its threads' ideal processors are chosen on it.",
    ("_KPROCESS", "StackCount"):
        "Number of the process's threads whose kernel stacks are resident; at 0 the process "
        "may be swapped out.",
    ("_KPROCESS", "ProcessListEntry"):
        "Entry in the kernel's list of processes (KiProcessListHead).",
    ("_KPROCESS", "CycleTime"):
        "CPU cycles consumed by the process's threads (the base of Vista+ CPU accounting).",
    ("_KPROCESS", "ContextSwitches"):
        "Context switches to threads of this process.",
    ("_KPROCESS", "KernelTime"):
        _TICKS.format(who="a thread of this process", mode="kernel")
        + " Exited threads' ticks stay counted.",
    ("_KPROCESS", "UserTime"):
        _TICKS.format(who="a thread of this process", mode="user")
        + " Exited threads' ticks stay counted.",
    ("_KPROCESS", "InstrumentationCallback"):
        "User-mode routine the kernel returns through after system calls (instrumentation).",
    # ---- _KTHREAD -----------------------------------------------------------------
    ("_KTHREAD", "Header"):
        "Dispatcher header: a thread is a waitable object, signalled (SignalState 1) when "
        "it has terminated. Header.Type is ThreadObject (6).",
    ("_KTHREAD", "State"):
        "Scheduling state (KTHREAD_STATE): 0 Initialized, 1 Ready, 2 Running, 3 Standby "
        "(chosen to run next on a processor), 4 Terminated, 5 Waiting, 6 Transition "
        "(ready, kernel stack paged out), 7 DeferredReady.",
    ("_KTHREAD", "WaitReason"):
        "Why the thread waits (KWAIT_REASON), meaningful while State is Waiting (5): e.g. "
        "UserRequest (WaitForSingleObject), DelayExecution (Sleep), Suspended, WrQueue "
        "(worker threads on a queue / I/O completion port), WrAlertByThreadId (user-mode "
        "locks, Windows 8+).",
    ("_KTHREAD", "WaitMode"):
        "Processor mode of the current wait: UserMode waits let the kernel stack be paged "
        "out and, if alertable, user APCs be delivered; KernelMode waits keep it resident.",
    ("_KTHREAD", "PreviousMode"):
        "Mode the thread was in when it entered the kernel (UserMode for system calls from "
        "applications); system services check parameters only for UserMode callers.",
    ("_KTHREAD", "Priority"):
        "Current (dynamic) priority, 0–31: the base priority plus any boost not yet "
        "decayed. The dispatcher runs the highest-priority ready thread.",
    ("_KTHREAD", "BasePriority"):
        "Base priority: the process's base priority plus the thread's relative priority "
        "(SetThreadPriority). Dynamic priority never decays below it.",
    ("_KTHREAD", "PriorityDecrement"):
        "Part of the current priority that is a special boost (foreground separation, "
        "starvation boost to 15). At quantum end the priority drops by PriorityDecrement + 1 "
        "(not below the base) and this is cleared, so such boosts vanish at once; while it "
        "is non-zero no new wait boost is applied. Windows 8+ splits it into "
        "ForegroundBoost and UnusualBoost.",
    ("_KTHREAD", "ForegroundBoost"):
        "Windows 8+: the part of PriorityDecrement due to the foreground-process boost.",
    ("_KTHREAD", "UnusualBoost"):
        "Windows 8+: the rest of PriorityDecrement (special boosts other than the "
        "foreground one).",
    ("_KTHREAD", "Quantum"):
        "Quantum left, in quantum units (3 per clock tick); the thread's turn ends at 0 "
        "(Windows XP/2003; later builds count CPU cycles in QuantumTarget).",
    ("_KTHREAD", "QuantumTarget"):
        "Cycle count at which the thread's quantum ends (Vista+ charges quanta in CPU "
        "cycles, not clock ticks).",
    ("_KTHREAD", "QuantumReset"):
        "The quantum this thread gets when it is replenished, in quantum units "
        "(3 per clock tick); copied from the process's QuantumReset.",
    ("_KTHREAD", "AdjustReason"):
        "Pending priority adjustment when the thread is next readied: 0 none, 1 unwait "
        "(apply AdjustIncrement), 2 boost.",
    ("_KTHREAD", "AdjustIncrement"):
        "Priority increment to apply when the thread is readied after its wait (the boost "
        "the waker passed, e.g. IO_KEYBOARD_INCREMENT 6).",
    ("_KTHREAD", "Preempted"):
        "Set when a higher-priority thread preempted this one: it goes back to the head of "
        "its ready queue, not the tail.",
    ("_KTHREAD", "Process"):
        "The process that owns the thread (its _KPROCESS, i.e. the start of the _EPROCESS).",
    ("_KTHREAD", "ApcState"):
        "The thread's APC queues and the process whose address space it currently uses "
        "(ApcState.Process differs from Process while attached with KeStackAttachProcess).",
    ("_KAPC_STATE", "Process"):
        "The process whose address space the thread is using: its own, or the one it is "
        "attached to.",
    ("_KTHREAD", "Teb"):
        "User-mode address of the Thread Environment Block (_TEB); NULL for system threads.",
    ("_KTHREAD", "Affinity"):
        "Processors the thread may run on (a mask, or a _GROUP_AFFINITY mask within one "
        "processor group); a subset of the process's affinity.",
    ("_KTHREAD", "UserAffinity"):
        "Affinity the thread asked for (SetThreadAffinityMask), restored after a temporary "
        "system affinity.",
    ("_KTHREAD", "IdealProcessor"):
        "The thread's preferred processor: the dispatcher tries it first when the thread "
        "becomes ready (SetThreadIdealProcessor; chosen round robin at creation).",
    ("_KTHREAD", "UserIdealProcessor"):
        "Ideal processor as the application set it (SetThreadIdealProcessor).",
    ("_KTHREAD", "NextProcessor"):
        "Processor the thread runs on, or whose ready queue it was last put on.",
    ("_KTHREAD", "ContextSwitches"):
        "Times the thread was switched to run (Process Explorer's Context Switches).",
    ("_KTHREAD", "SuspendCount"):
        "Outstanding SuspendThread calls; the thread runs only when it is 0.",
    ("_KTHREAD", "FreezeCount"):
        "Outstanding freezes (the debugger's or process freeze); like SuspendCount.",
    ("_KTHREAD", "KernelTime"):
        _TICKS.format(who="the thread", mode="kernel"),
    ("_KTHREAD", "UserTime"):
        _TICKS.format(who="the thread", mode="user"),
    ("_KTHREAD", "WaitTime"):
        "Tick count when the thread last waited or became ready; the balance set manager "
        "boosts threads ready for 300 ticks (about 4.7 s) to priority 15 (starvation "
        "avoidance).",
    ("_KTHREAD", "WaitStatus"):
        "The status the last wait ended with (the index of the signalled object, "
        "STATUS_TIMEOUT, STATUS_USER_APC, …).",
    ("_KTHREAD", "WaitIrql"):
        "IRQL to return to when the wait is satisfied.",
    ("_KTHREAD", "WaitBlockList"):
        "The wait blocks of the current wait: one per object waited on.",
    ("_KTHREAD", "WaitListEntry"):
        "Entry in a processor's wait list or deferred-ready list.",
    ("_KTHREAD", "Running"):
        "1 while the thread is actually executing on a processor.",
    ("_KTHREAD", "Alertable"):
        "The current wait is alertable: a user APC or an alert ends it.",
    ("_KTHREAD", "SystemThread"):
        "A kernel-mode system thread (PsCreateSystemThread); it has no TEB.",
    ("_KTHREAD", "DisableBoost"):
        "SetThreadPriorityBoost(TRUE): no wait-completion boosts for this thread.",
    ("_KTHREAD", "ThreadListEntry"):
        "Entry in the owning process's KPROCESS.ThreadListHead list.",
    ("_KTHREAD", "KernelStack"):
        "Saved kernel stack pointer of the thread while it is not running.",
    ("_KTHREAD", "InitialStack"):
        "Top of the thread's kernel stack.",
    ("_KTHREAD", "StackLimit"):
        "Lowest valid address of the thread's kernel stack.",
    ("_KTHREAD", "KernelStackResident"):
        "The kernel stack is in memory; a thread whose stack was paged out goes through "
        "Transition before it can run.",
    ("_KTHREAD", "CycleTime"):
        "CPU cycles the thread has consumed.",
    ("_KTHREAD", "Win32Thread"):
        "win32k's per-thread data; NULL until the thread first uses a GUI call.",
    ("_KTHREAD", "Saturation"):
        "Priority saturation: +1/−1 when SetThreadPriority asked for TIME_CRITICAL/IDLE, "
        "which pin the priority at the top/bottom of the class's range.",
    ("_KTHREAD", "QueueListEntry"):
        "Entry in the list of threads associated with a KQUEUE (I/O completion port).",
    ("_KTHREAD", "Queue"):
        "The KQUEUE (I/O completion port) the thread is associated with.",
    ("_KTHREAD", "ApcQueueable"):
        "APCs may be queued to the thread (cleared as it terminates).",
    # ---- _ETHREAD -----------------------------------------------------------------
    ("_ETHREAD", "Tcb"):
        "The kernel's part of the thread (_KTHREAD): scheduling state, priorities, "
        "affinity, wait state, CPU times.",
    ("_ETHREAD", "Cid"):
        "Client ID: the process ID and thread ID (UniqueProcess, UniqueThread), the "
        "Cid 0004.0008 pair !thread prints in hex.",
    ("_ETHREAD", "CreateTime"):
        "When the thread was created: 100 ns units since 1601-01-01 UTC.",
    ("_ETHREAD", "ExitTime"):
        "When the thread exited (0 while it runs).",
    ("_ETHREAD", "ExitStatus"):
        "The thread's exit code (NTSTATUS); STATUS_PENDING (0x103) while it runs.",
    ("_ETHREAD", "ThreadListEntry"):
        "Entry in the owning process's EPROCESS.ThreadListHead list.",
    ("_ETHREAD", "StartAddress"):
        "Where the thread started in the kernel (for user threads an ntdll thunk).",
    ("_ETHREAD", "Win32StartAddress"):
        "The start routine passed to CreateThread (what Process Explorer shows as Start Address).",
    ("_ETHREAD", "IrpList"):
        "I/O request packets the thread has issued and that are not completed yet.",
    ("_ETHREAD", "ActiveExWorker"):
        "The thread is a system worker thread currently running a work item.",
    ("_ETHREAD", "Terminated"):
        "The thread has started to terminate.",
    ("_ETHREAD", "ThreadName"):
        "Description set with SetThreadDescription (Windows 10 1607+).",
    ("_ETHREAD", "CrossThreadFlags"):
        "Thread flags other threads may change, also shown bit by bit below it.",
    # ---- _CLIENT_ID, lists, headers, fast references ----------------------------
    ("_CLIENT_ID", "UniqueProcess"):
        "Process ID.",
    ("_CLIENT_ID", "UniqueThread"):
        "Thread ID.",
    ("_LIST_ENTRY", "Flink"):
        "Forward link: the next entry's _LIST_ENTRY (the list head when this is the last "
        "entry). Subtract the link member's offset to get the next record "
        "(CONTAINING_RECORD).",
    ("_LIST_ENTRY", "Blink"):
        "Backward link: the previous entry's _LIST_ENTRY (the list head for the first entry).",
    ("_DISPATCHER_HEADER", "Type"):
        "Kind of dispatcher object (KOBJECTS): 3 ProcessObject, 6 ThreadObject, "
        "0/1 events, 2 mutant, 5 semaphore, 8/9 timers.",
    ("_DISPATCHER_HEADER", "SignalState"):
        "Signalled (> 0) or not (0); waiters are released when it becomes signalled.",
    ("_DISPATCHER_HEADER", "WaitListHead"):
        "Head of the wait blocks of threads waiting on this object (empty: points to itself).",
    ("_EX_FAST_REF", "Object"):
        "The object pointer; its low bits are the cached reference count.",
    ("_EX_FAST_REF", "RefCnt"):
        "References cached in the pointer's low bits, handed out without touching the "
        "object's own count.",
    ("_PS_PROTECTION", "Type"):
        "0 none, 1 protected process light (PPL), 2 protected process (PP).",
    ("_PS_PROTECTION", "Signer"):
        "Signer level; a protected process can be opened only by one at least as trusted "
        "(WinSystem > WinTcb > Windows > Lsa > Antimalware > CodeGen > Authenticode).",
    ("_PS_PROTECTION", "Audit"):
        "Reserved (audit mode).",
    ("_GROUP_AFFINITY", "Mask"):
        "Bitmask of processors within the group.",
    ("_GROUP_AFFINITY", "Group"):
        "Processor group the mask applies to (64 processors per group on x64).",
    ("_KAFFINITY_EX", "Bitmap"):
        "One processor bitmask per processor group.",
    # ---- _PEB ---------------------------------------------------------------------
    ("_PEB", "BeingDebugged"):
        "1 while a user-mode debugger is attached (IsDebuggerPresent reads it).",
    ("_PEB", "ImageBaseAddress"):
        "Where the executable is mapped in the process.",
    ("_PEB", "Ldr"):
        "Loader data: the lists of loaded modules (InLoadOrderModuleList, …).",
    ("_PEB", "ProcessParameters"):
        "Command line, current directory, environment and image path "
        "(_RTL_USER_PROCESS_PARAMETERS).",
    ("_PEB", "ProcessHeap"):
        "The process's default heap (GetProcessHeap).",
    ("_PEB", "NumberOfProcessors"):
        "Number of processors, as the process sees it.",
    ("_PEB", "NtGlobalFlag"):
        "Global flags for the process (gflags: heap checking, …).",
    ("_PEB", "OSMajorVersion"):
        "Windows major version reported to the process (10 for Windows 10 and 11).",
    ("_PEB", "OSMinorVersion"):
        "Windows minor version reported to the process.",
    ("_PEB", "OSBuildNumber"):
        "Windows build number reported to the process (e.g. 19041).",
    ("_PEB", "SessionId"):
        "Terminal-services session of the process (0 for services).",
    ("_PEB", "ProcessInJob"):
        "The process is in a job.",
    # ---- _TEB ---------------------------------------------------------------------
    ("_TEB", "NtTib"):
        "Thread information block: stack base and limit, the x86 SEH chain, the fiber data "
        "pointer, and a self pointer (what FS/GS points at).",
    ("_TEB", "ClientId"):
        "Process ID and thread ID of the thread.",
    ("_TEB", "ProcessEnvironmentBlock"):
        "The process's PEB.",
    ("_TEB", "LastErrorValue"):
        "The Win32 error code GetLastError returns.",
    ("_TEB", "LastStatusValue"):
        "The NTSTATUS that RtlNtStatusToDosError last turned into LastErrorValue.",
    ("_TEB", "ThreadLocalStoragePointer"):
        "The thread's static TLS blocks (__declspec(thread) data of each module).",
    ("_TEB", "TlsSlots"):
        "The first 64 dynamic TLS slots (TlsAlloc/TlsGetValue).",
    ("_TEB", "TlsExpansionSlots"):
        "Dynamic TLS slots beyond the first 64.",
    ("_TEB", "FlsData"):
        "Fiber-local storage of the running fiber (FlsAlloc/FlsGetValue).",
    ("_TEB", "HasFiberData"):
        "The thread was converted to a fiber: NtTib.FiberData points at the current fiber.",
    ("_TEB", "CurrentLocale"):
        "The thread's locale (LCID).",
    ("_TEB", "DeallocationStack"):
        "Base of the thread's user stack reservation (freed when the thread exits).",
    ("_TEB", "Win32ThreadInfo"):
        "win32k's per-thread data, NULL until the thread uses a GUI call.",
    ("_TEB", "CurrentIdealProcessor"):
        "The thread's ideal processor (group and number), as user mode sees it.",
    # ---- _EJOB --------------------------------------------------------------------
    ("_EJOB", "Event"):
        "The job's waitable event: waiting on the job waits on it; set when the end-of-job "
        "time limit is reached.",
    ("_EJOB", "JobLinks"):
        "Entry in the system's list of jobs (PspJobList).",
    ("_EJOB", "ProcessListHead"):
        "Head of the list of the job's member processes (EPROCESS.JobLinks).",
    ("_EJOB", "TotalUserTime"):
        "User-mode CPU time of all processes ever in the job, in 100 ns units.",
    ("_EJOB", "TotalKernelTime"):
        "Kernel-mode CPU time of all processes ever in the job, in 100 ns units.",
    ("_EJOB", "ThisPeriodTotalUserTime"):
        "User time charged since the per-job time limit was last set (checked against "
        "PerJobUserTimeLimit).",
    ("_EJOB", "TotalProcesses"):
        "Processes ever assigned to the job.",
    ("_EJOB", "ActiveProcesses"):
        "Processes in the job now.",
    ("_EJOB", "TotalTerminatedProcesses"):
        "Processes terminated because a job limit was exceeded.",
    ("_EJOB", "PerProcessUserTimeLimit"):
        "JOB_OBJECT_LIMIT_PROCESS_TIME: user time each process may use (100 ns units).",
    ("_EJOB", "PerJobUserTimeLimit"):
        "JOB_OBJECT_LIMIT_JOB_TIME: user time all processes together may use (100 ns units).",
    ("_EJOB", "LimitFlags"):
        "Which limits are in force (JOB_OBJECT_LIMIT_*: 0x8 active processes, 0x10 affinity, "
        "0x20 priority class, 0x2000 kill on job close, …).",
    ("_EJOB", "ActiveProcessLimit"):
        "JOB_OBJECT_LIMIT_ACTIVE_PROCESS: most processes the job may hold at once.",
    ("_EJOB", "Affinity"):
        "JOB_OBJECT_LIMIT_AFFINITY: processors the job's processes may use.",
    ("_EJOB", "PriorityClass"):
        "JOB_OBJECT_LIMIT_PRIORITY_CLASS: priority class forced on the job's processes.",
    ("_EJOB", "SchedulingClass"):
        "JOB_OBJECT_LIMIT_SCHEDULING_CLASS: 0–9, the relative quantum of the job's threads "
        "(5 by default).",
    ("_EJOB", "MinimumWorkingSetSize"):
        "JOB_OBJECT_LIMIT_WORKINGSET: minimum working set of each process.",
    ("_EJOB", "MaximumWorkingSetSize"):
        "JOB_OBJECT_LIMIT_WORKINGSET: maximum working set of each process.",
    ("_EJOB", "CompletionPort"):
        "I/O completion port that receives the job's notifications (JOB_OBJECT_MSG_*).",
    ("_EJOB", "CompletionKey"):
        "Key posted with each notification on the completion port.",
    ("_EJOB", "UIRestrictionsClass"):
        "JOB_OBJECT_UILIMIT_* restrictions on the job's user-interface access.",
    ("_EJOB", "EndOfJobTimeAction"):
        "What happens when the job time limit expires: terminate the processes (0) or post "
        "a completion message (1).",
    ("_EJOB", "CpuRateControl"):
        "CPU rate cap (JOBOBJECT_CPU_RATE_CONTROL_INFORMATION): threads over it wait with "
        "WrCpuRateControl.",
    ("_EJOB", "ParentJob"):
        "The job this one is nested in (Windows 8 and later), NULL for a top-level job.",
    ("_EJOB", "RootJob"):
        "The outermost job of the nesting.",
    ("_EJOB", "ChildJobListHead"):
        "Head of the list of jobs nested directly in this one.",
    ("_EJOB", "SiblingJobLinks"):
        "Entry in the parent job's ChildJobListHead list.",
    ("_EJOB", "NestingDepth"):
        "How deep the job is nested (0 for a top-level job).",
    ("_EJOB", "TotalContextSwitches"):
        "Context switches of all threads of the job's processes.",
    ("_EJOB", "TotalPageFaultCount"):
        "Page faults of all processes ever in the job.",
    ("_EJOB", "JobFlags"):
        "Job state flags, also shown bit by bit below it.",
}


def field_help(struct: str, member: str) -> str | None:
    """What member `member` (its own name, ``WaitReason``; a dotted name of an
    anonymous member counts by its last part) of `struct` is for, or None."""
    return FIELD_HELP.get((struct, member.rpartition(".")[2]))
