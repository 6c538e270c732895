"""The Create Process dialog, and carrying out what it asks on a simulated machine.

`CreateProcessDialog` is a form over CreateProcess's choices: image name, priority class
(or the default, inherited from an IDLE/BELOW_NORMAL parent, §1.6), parent, job,
CREATE_BREAKAWAY_FROM_JOB (§6.9), protection (§9), affinity (or the parent's, §8.1),
DisableBoost, foreground, and a table of threads, each a relative priority, a program and
a name.  After accept() its `request` is a `ProcessRequest`.

A program is written in the scenario syntax (formats.md §2 "Program steps"), one step a
line or steps separated by ``;``.  The scenario parser itself reads it
(`parse_programs`), so the dialog accepts exactly what a scenario file does; while a step
does not parse, OK is disabled and the form says which thread, which step and why.
Steps may name the events, semaphores and mutexes of the `objects` mapping (a `Run`'s
`objects`); a `fiber_create` needs a scenario's [programs] and so is refused here.

`create_from_request(machine, request)` does what a launcher does: CreateProcess (the
child joins its parent's jobs unless it breaks away), AssignProcessToJobObject while the
process has no thread yet (as after CREATE_SUSPENDED, §6.3), then the threads.  A
failure comes back as text with the Win32 error name (GetLastError).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QGridLayout,
    QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPlainTextEdit, QPushButton,
    QTableWidget, QVBoxLayout, QWidget,
)

from core import scenario as sc
from core.kernel import KernelError, Machine
from core.kernel.constants import (
    ERROR_INVALID_PARAMETER, ERROR_NAMES, RELATIVE_PRIORITIES, base_priority,
    parse_relative_priority,
)
from core.kernel.handles import PROTECTION_NAMES
from core.runner import kernel_step
from core.kernel.objects import Event, Mutex, Process, Semaphore, mask_to_list
from inspector.process_model import PRIORITY_CLASS_NAMES, protection_text

DEFAULT_PROGRAM = "cpu 200ms\nsleep 50ms\nrepeat"
PROGRAM_LINES = 4  # the height of a program cell, in lines

# Steps after which a repeating program has spent time or may have blocked; a loop of
# anything else never lets simulated time advance (the kernel's ProgramLivelock).
_TIME_STEPS = (sc.Cpu, sc.Sleep, sc.Io)
_NEVER_REACHED = re.compile(r"^step \d+ is never reached")


def add_form_footer(dialog: QDialog, box: QVBoxLayout,
                    error_name: str) -> tuple[QLabel, QDialogButtonBox, QPushButton]:
    """The foot of a checked form: a red line for the problem found, then OK and
    Cancel (the form keeps OK disabled while a problem shows)."""
    error_label = QLabel()
    error_label.setObjectName(error_name)
    error_label.setWordWrap(True)
    error_label.setStyleSheet("QLabel { color: #b02a37; }")
    box.addWidget(error_label)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    box.addWidget(buttons)
    return error_label, buttons, buttons.button(QDialogButtonBox.StandardButton.Ok)


def error_text(code: int) -> str:
    """A GetLastError value as its name and number: ``ERROR_NOT_ENOUGH_QUOTA (1816)``."""
    return f"{ERROR_NAMES.get(code, 'error')} ({code})"


# ---- The request

@dataclass(frozen=True)
class ThreadRequest:
    """One thread: its relative priority (a THREAD_PRIORITY_* name or value), its program
    as parsed scenario steps (core.scenario), and its name (None: unnamed)."""

    priority: str | int = "normal"
    program: tuple[sc.Step, ...] = ()
    name: str | None = None


@dataclass
class ProcessRequest:
    """What the form asks for.  None means the CreateProcess default: the class and
    affinity inherited from the parent (§1.6, §8.1), no parent, no job."""

    name: str
    priority_class: str | None = None
    parent_pid: int | None = None
    job: str | None = None
    breakaway: bool = False
    protection: str = "none"
    affinity: list[int] | None = None
    disable_boost: bool = False
    foreground: bool = False
    threads: list[ThreadRequest] = field(default_factory=list)


# ---- Programs in the scenario syntax

class ProgramError(ValueError):
    """A program that does not parse.  `thread` and `step` are 0-based (None: the problem
    is not in one step), `line` 1-based in the thread's text; str() is one line."""

    def __init__(self, reason: str, thread: int | None = None, step: int | None = None,
                 line: int | None = None, text: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.thread = thread
        self.step = step
        self.line = line
        self.text = text

    def __str__(self) -> str:
        if self.thread is None:
            return self.reason
        where = f"Thread {self.thread + 1}"
        if self.step is not None:
            where += f", step {self.step + 1} (line {self.line})"
        return f"{where}: {self.reason}"


def split_steps(text: str) -> list[tuple[int, str]]:
    """A program's steps with their line numbers: one a line, or several separated by
    ``;``; blank ones are dropped."""
    steps = []
    for line_no, line in enumerate(text.splitlines(), 1):
        for part in line.split(";"):
            if part.strip():
                steps.append((line_no, part.strip()))
    return steps


def _toml_string(text: str) -> str:
    # JSON escapes every control character TOML forbids in a basic string except DEL
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _declarations(objects: Mapping[str, object]) -> list[str]:
    """The objects steps may name, declared as a scenario declares them."""
    lines = []
    for name, obj in objects.items():
        if isinstance(obj, Event):
            kind = "notification" if obj.notification else "synchronization"
            lines += ["[[event]]", f"name = {_toml_string(name)}", f'kind = "{kind}"']
        elif isinstance(obj, Semaphore):
            lines += ["[[semaphore]]", f"name = {_toml_string(name)}",
                      f"maximum = {obj.maximum}"]
        elif isinstance(obj, Mutex):
            lines += ["[[mutex]]", f"name = {_toml_string(name)}"]
    return lines


def _unique(wanted: str | None, taken: set[str], fallback: str) -> str:
    """`wanted` if it can be a scenario name not yet taken (so that a step naming the
    thread's own fiber parses), else a free variant of `fallback`."""
    if wanted and wanted not in taken and all(c.isprintable() and not c.isspace()
                                              for c in wanted):
        return wanted
    name, n = fallback, 1
    while name in taken:
        n += 1
        name = f"{fallback}_{n}"
    return name


def parse_programs(texts: Sequence[str], names: Sequence[str | None] = (),
                   objects: Mapping[str, object] | None = None) -> list[tuple[sc.Step, ...]]:
    """Each thread's program text (`names[i]` names thread i) as scenario steps, read by
    the scenario parser as the threads of one process; ProgramError for the first step
    that does not parse, or a loop that never lets time pass."""
    objects = objects or {}
    split = [split_steps(text) for text in texts]
    taken = set(objects)
    process = _unique("process", taken, "process")
    taken.add(process)
    thread_names = []
    for i in range(len(texts)):
        name = _unique(names[i] if i < len(names) else None, taken, f"thread{i + 1}")
        taken.add(name)
        thread_names.append(name)
    lines = _declarations(objects)
    lines += ["[[process]]", f"name = {_toml_string(process)}"]
    for name, steps in zip(thread_names, split):
        lines += ["[[process.thread]]", f"name = {_toml_string(name)}",
                  "program = [" + ", ".join(_toml_string(s) for _, s in steps) + "]"]
    try:
        scenario = sc.parse_scenario("\n".join(lines) + "\n", "<program>")
    except sc.ScenarioError as exc:
        raise _step_error(exc, split) from None
    programs = [scenario.thread(name).program for name in thread_names]
    for i, steps in enumerate(programs):
        problem = livelock_problem(steps)
        if problem is not None:
            line, text = split[i][len(steps) - 1]
            raise ProgramError(problem, i, len(steps) - 1, line, text)
    return programs


def _step_error(exc: sc.ScenarioError, split: list[list[tuple[int, str]]]) -> ProgramError:
    """The parser's error on `process[0].thread[T].program[S]` as thread T, step S."""
    found = re.fullmatch(r"process\[0\]\.thread\[(\d+)\]\.program\[(\d+)\]", exc.key or "")
    if found is None:
        return ProgramError(exc.message)
    thread, step = int(found[1]), int(found[2])
    line, text = split[thread][step]
    reason = exc.message
    if _NEVER_REACHED.match(reason):  # its 0-based "step N" would contradict ours
        reason = f"{text!r} " + _NEVER_REACHED.sub("is never reached", reason)
    elif not reason.startswith(repr(text)):
        reason = f"{text!r}: {reason}"
    return ProgramError(reason, thread, step, line, text)


def livelock_problem(steps: Sequence[sc.Step]) -> str | None:
    """Why a program that repeats can spin forever at one instant (the kernel stops such
    a run with ProgramLivelock), or None: a repeating loop needs a step that uses time
    or may block."""
    if not steps or not isinstance(steps[-1], sc.Repeat):
        return None
    if any(isinstance(s, sc.Wait) or isinstance(s, _TIME_STEPS) and s.duration_ns > 0
           for s in steps):
        return None
    return ("the program repeats without using time: it needs a cpu, kcpu, sleep or io "
            "step longer than 0, or a wait")


def kernel_program(steps: Sequence[sc.Step],
                   objects: Mapping[str, object] | None = None) -> tuple:
    """Scenario steps as the kernel's step tuples (core/kernel/program.py), the named
    objects taken from `objects`; ValueError for a name it does not have."""
    objects = objects or {}

    def obj(name: str):
        try:
            return objects[name]
        except KeyError:
            raise ValueError(f"no object named {name!r}") from None

    return tuple(kernel_step(s, obj) for s in steps)


# ---- Carrying out a request

def create_from_request(machine: Machine, request: ProcessRequest,
                        objects: Mapping[str, object] | None = None
                        ) -> tuple[Process | None, str | None]:
    """Create the process, put it in the job, then create its threads; (process, None),
    or (None, what failed) with nothing left running.  `objects` are the named objects
    the programs' steps refer to."""
    parent = None
    if request.parent_pid is not None:
        parent = machine.processes.get(request.parent_pid)
        if parent is None or parent.exited:
            return None, f"Parent process {request.parent_pid} no longer exists"
    job = None
    if request.job is not None:
        job = next((j for j in machine.jobs if machine.job_name(j) == request.job), None)
        if job is None:
            return None, f"Job {request.job} no longer exists"
    # Everything the threads need is checked first: a failure then creates nothing
    programs = []
    for i, t in enumerate(request.threads):
        problem = livelock_problem(t.program)
        try:
            if problem is not None:
                raise ValueError(problem)
            programs.append(kernel_program(t.program, objects))
        except ValueError as exc:
            return None, f"Thread {i + 1}: {exc}"
    try:
        proc = machine.create_process(
            request.name, request.priority_class, request.affinity, request.foreground,
            request.disable_boost, parent, protection=request.protection,
            breakaway=request.breakaway)
    except KernelError as exc:
        return None, f"CreateProcess: {exc}"
    if proc is None:
        return None, f"CreateProcess failed: {error_text(machine.last_error)}"
    # A child that inherited the job from its parent is already in it
    if job is not None and job not in proc.jobs:
        if not machine.assign_process_to_job(job, proc):
            error = machine.last_error
            _abandon(machine, proc, error)
            return None, (f"AssignProcessToJobObject({request.job}) failed: "
                          f"{error_text(error)}")
    # The class is known only now (it may be inherited, or set by the job, §6.7)
    for i, t in enumerate(request.threads):
        try:
            relative = parse_relative_priority(t.priority)
        except ValueError as exc:
            relative, problem = None, str(exc)
        else:
            problem = f"relative priority {relative} is not valid in class {proc.priority_class}"
        if relative is None or base_priority(proc.priority_class, relative) is None:
            _abandon(machine, proc, ERROR_INVALID_PARAMETER)
            return None, (f"Thread {i + 1}: SetThreadPriority failed: "
                          f"{error_text(ERROR_INVALID_PARAMETER)}: {problem}")
    for t, steps in zip(request.threads, programs):
        try:
            machine.create_thread(proc, t.priority, program=steps, name=t.name)
        except KernelError as exc:
            _abandon(machine, proc, ERROR_INVALID_PARAMETER)
            return None, f"CreateThread: {exc}"
        machine.dispatch()  # each new ready thread is dispatched before the next exists
    return proc, None


def _abandon(machine: Machine, proc: Process, code: int) -> None:
    """A launcher whose set-up of a new process failed ends it with the error code."""
    if not proc.exited:
        machine.terminate_process(proc, code)


# ---- The dialog

def _relative_label(name: str) -> str:
    value = RELATIVE_PRIORITIES[name]
    return f"{name.replace('_', ' ').capitalize()} ({value:+d})" if value else "Normal (0)"


class CreateProcessDialog(QDialog):
    """The Create Process form for `machine`: the parent chooser lists its live processes
    (`selected_pid` first chosen), the job chooser its jobs, the affinity its CPUs.
    `objects` are the named objects steps may refer to.  OK stays disabled, with the
    problem shown, while an entry is invalid; `request` is the result."""

    def __init__(self, machine: Machine, parent: QWidget | None = None, *,
                 selected_pid: int | None = None,
                 objects: Mapping[str, object] | None = None,
                 title: str = "Create Process") -> None:
        super().__init__(parent)
        self.setObjectName("create_process_dialog")
        self.setWindowTitle(title)
        self.request: ProcessRequest | None = None
        self._machine = machine
        self._objects = dict(objects or {})
        box = QVBoxLayout(self)

        form = QFormLayout()
        self.name_edit = QLineEdit("app.exe")
        self.name_edit.setObjectName("process_name")
        form.addRow("Image name:", self.name_edit)

        self.parent_combo = QComboBox()
        self.parent_combo.setObjectName("process_parent")
        self.parent_combo.addItem("(none)", None)
        for pid, p in sorted(machine.processes.items()):
            if pid != 0 and not p.exited:  # Idle creates nothing
                self.parent_combo.addItem(f"{p.name} ({pid})", pid)
        found = self.parent_combo.findData(selected_pid) if selected_pid is not None else -1
        self.parent_combo.setCurrentIndex(max(found, 0))
        form.addRow("Parent:", self.parent_combo)

        self.class_combo = QComboBox()
        self.class_combo.setObjectName("process_class")
        self.class_combo.addItem("Default (Normal, or an Idle/Below normal parent's)", None)
        for cls, label in PRIORITY_CLASS_NAMES.items():
            self.class_combo.addItem(label, cls)
        self.class_combo.setToolTip("Without a class flag CreateProcess gives NORMAL, unless "
                                    "the parent is IDLE or BELOW_NORMAL (§1.6)")
        form.addRow("Priority class:", self.class_combo)

        self.protection_combo = QComboBox()
        self.protection_combo.setObjectName("process_protection")
        for name in PROTECTION_NAMES:
            self.protection_combo.addItem(
                "None" if name == "none" else f"{name} ({protection_text(name)})", name)
        form.addRow("Protection:", self.protection_combo)

        self.job_combo = QComboBox()
        self.job_combo.setObjectName("process_job")
        self.job_combo.addItem("(none)", None)
        for job in machine.jobs:
            name = machine.job_name(job)
            self.job_combo.addItem(name, name)
        self.job_combo.setToolTip("AssignProcessToJobObject right after creation, before "
                                  "any thread exists (§6.3)")
        form.addRow("Job:", self.job_combo)
        self.breakaway_check = QCheckBox("Break away from the parent's job "
                                         "(CREATE_BREAKAWAY_FROM_JOB)")
        self.breakaway_check.setObjectName("process_breakaway")
        self.breakaway_check.setToolTip("Fails with ERROR_ACCESS_DENIED unless the job allows "
                                        "breakaway (§6.9)")
        form.addRow(self.breakaway_check)
        self.job_hint = QLabel()
        self.job_hint.setObjectName("process_job_hint")
        self.job_hint.setWordWrap(True)
        form.addRow(self.job_hint)
        self.foreground_check = QCheckBox("Foreground (the longer quantum, §2.3)")
        self.foreground_check.setObjectName("process_foreground")
        self.boost_check = QCheckBox("Disable priority boosts (SetProcessPriorityBoost, §4.8)")
        self.boost_check.setObjectName("process_disable_boost")
        form.addRow(self.foreground_check)
        form.addRow(self.boost_check)
        box.addLayout(form)

        affinity_group = QGroupBox("Affinity")
        affinity_box = QVBoxLayout(affinity_group)
        self.inherit_affinity = QCheckBox("The parent's affinity (all CPUs without a parent)")
        self.inherit_affinity.setObjectName("process_inherit_affinity")
        self.inherit_affinity.setChecked(True)
        affinity_box.addWidget(self.inherit_affinity)
        grid = QGridLayout()
        self.cpu_checks: list[QCheckBox] = []
        for cpu in range(machine.ncpu):
            check = QCheckBox(str(cpu))
            check.setObjectName(f"process_cpu_{cpu}")
            check.setEnabled(False)  # while the parent's affinity is inherited
            grid.addWidget(check, cpu // 8, cpu % 8)
            self.cpu_checks.append(check)
        affinity_box.addLayout(grid)
        box.addWidget(affinity_group)

        threads_group = QGroupBox("Threads (programs in the scenario syntax: a step a line, "
                                  "or steps separated by ;)")
        threads_box = QVBoxLayout(threads_group)
        self.threads_table = QTableWidget(0, 3)
        self.threads_table.setObjectName("process_threads")
        self.threads_table.setHorizontalHeaderLabels(["Priority", "Program", "Name"])
        header = self.threads_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(2, 140)
        self.threads_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.threads_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        threads_box.addWidget(self.threads_table)
        row_buttons = QHBoxLayout()
        self.add_button = QPushButton("Add thread")
        self.add_button.setObjectName("process_add_thread")
        self.remove_button = QPushButton("Remove thread")
        self.remove_button.setObjectName("process_remove_thread")
        row_buttons.addWidget(self.add_button)
        row_buttons.addWidget(self.remove_button)
        row_buttons.addStretch(1)
        threads_box.addLayout(row_buttons)
        box.addWidget(threads_group, 1)

        self.error_label, self.buttons, self.ok_button = add_form_footer(
            self, box, "process_form_error")

        self.add_button.clicked.connect(lambda: self.add_thread())
        self.remove_button.clicked.connect(lambda: self.remove_thread())
        self.name_edit.textChanged.connect(self.validate)
        self.parent_combo.currentIndexChanged.connect(self._on_parent)
        self.job_combo.currentIndexChanged.connect(self._show_job_hint)
        self.breakaway_check.toggled.connect(self._show_job_hint)
        self.inherit_affinity.toggled.connect(self._on_inherit_affinity)
        for check in self.cpu_checks:
            check.toggled.connect(self.validate)
        self.add_thread("normal", DEFAULT_PROGRAM, "main")
        self._on_parent()

    # ---- the threads table
    @property
    def thread_count(self) -> int:
        return self.threads_table.rowCount()

    def priority_combo(self, row: int) -> QComboBox:
        return self.threads_table.cellWidget(row, 0)

    def program_edit(self, row: int) -> QPlainTextEdit:
        return self.threads_table.cellWidget(row, 1)

    def thread_name_edit(self, row: int) -> QLineEdit:
        return self.threads_table.cellWidget(row, 2)

    def add_thread(self, priority: str = "normal", program_text: str = DEFAULT_PROGRAM,
                   name: str = "") -> int:
        """Append a thread row; returns its row."""
        row = self.threads_table.rowCount()
        self.threads_table.insertRow(row)
        combo = QComboBox()
        for level in RELATIVE_PRIORITIES:
            combo.addItem(_relative_label(level), level)
        combo.setCurrentIndex(max(combo.findData(priority), 0))
        edit = QPlainTextEdit(program_text)
        edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        edit.setTabChangesFocus(True)
        edit.setToolTip("Steps as in a scenario (formats.md §2): "
                        + ", ".join(sc.STEP_USAGE.values()))
        name_edit = QLineEdit(name)
        name_edit.setPlaceholderText("unnamed")
        self.threads_table.setCellWidget(row, 0, combo)
        self.threads_table.setCellWidget(row, 1, edit)
        self.threads_table.setCellWidget(row, 2, name_edit)
        lines = edit.fontMetrics().lineSpacing() * PROGRAM_LINES
        self.threads_table.setRowHeight(row, lines + 2 * edit.frameWidth() + 8)
        edit.textChanged.connect(self.validate)
        name_edit.textChanged.connect(self.validate)
        self.threads_table.selectRow(row)
        self.validate()
        return row

    def remove_thread(self, row: int | None = None) -> None:
        """Remove `row` (default: the selected one, else the last); one thread stays, as
        CreateProcess always makes the initial thread."""
        if self.thread_count <= 1:
            return
        if row is None:
            row = self.threads_table.currentRow()
            if row < 0:
                row = self.thread_count - 1
        self.threads_table.removeRow(row)
        self.validate()

    # ---- reacting to the form
    def _parent(self) -> Process | None:
        pid = self.parent_combo.currentData()
        return None if pid is None else self._machine.processes.get(pid)

    def _on_parent(self, _index: int = 0) -> None:
        if self.inherit_affinity.isChecked():
            self._show_inherited_affinity()
        self._show_job_hint()

    def _show_inherited_affinity(self) -> None:
        parent = self._parent()
        cpus = set(mask_to_list(parent.affinity) if parent is not None
                   else range(len(self.cpu_checks)))
        for cpu, check in enumerate(self.cpu_checks):
            check.setChecked(cpu in cpus)

    def _on_inherit_affinity(self, inherit: bool) -> None:
        for check in self.cpu_checks:
            check.setEnabled(not inherit)
        if inherit:
            self._show_inherited_affinity()
        self.validate()

    def _show_job_hint(self, _value=None) -> None:
        parent = self._parent()
        if parent is None or not parent.jobs:
            text = ""
        else:
            inner = self._machine.job_name(parent.jobs[0])
            if self.breakaway_check.isChecked():
                text = (f"The parent is in job {inner}: the child breaks away if the job "
                        f"allows it, else CreateProcess fails with ERROR_ACCESS_DENIED (§6.9)")
            else:
                text = (f"The parent is in job {inner}: the child joins it, unless the job "
                        f"has silent breakaway (§6.9)")
        self.job_hint.setText(text)

    def validate(self, _value=None) -> str:
        """Check the form: the problem shown under it (OK disabled), or "" when it is
        complete."""
        try:
            self.make_request()
        except ValueError as exc:
            problem = str(exc)
        else:
            problem = ""
        self.error_label.setText(problem)
        self.ok_button.setEnabled(not problem)
        return problem

    def make_request(self) -> ProcessRequest:
        """The form as a ProcessRequest; ValueError (one line for the user) if an entry
        is bad, ProgramError for a program."""
        name = self.name_edit.text().strip()
        if not name:
            raise ValueError("Give the image name (e.g. app.exe)")
        affinity = None
        if not self.inherit_affinity.isChecked():
            affinity = [cpu for cpu, check in enumerate(self.cpu_checks) if check.isChecked()]
            if not affinity:
                raise ValueError("Affinity: choose at least one CPU")
        rows = range(self.thread_count)
        names = [self.thread_name_edit(r).text().strip() or None for r in rows]
        programs = parse_programs([self.program_edit(r).toPlainText() for r in rows], names,
                                  self._objects)
        threads = [ThreadRequest(self.priority_combo(r).currentData(), programs[r], names[r])
                   for r in rows]
        return ProcessRequest(
            name=name, priority_class=self.class_combo.currentData(),
            parent_pid=self.parent_combo.currentData(), job=self.job_combo.currentData(),
            breakaway=self.breakaway_check.isChecked(),
            protection=self.protection_combo.currentData(), affinity=affinity,
            disable_boost=self.boost_check.isChecked(),
            foreground=self.foreground_check.isChecked(), threads=threads)

    def accept(self) -> None:
        try:
            self.request = self.make_request()
        except ValueError as exc:
            self.request = None
            self.error_label.setText(str(exc))
            self.ok_button.setEnabled(False)
            return
        self.error_label.clear()
        super().accept()

