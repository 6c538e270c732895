"""The fiber forms of the Thread > Fiber menu: Convert Thread to Fiber and Create Fiber.

`ConvertFiberDialog` asks ConvertThreadToFiberEx's lpParameter and dwFlags (0 or
FIBER_FLAG_FLOAT_SWITCH, §7.2); `CreateFiberDialog` asks CreateFiberEx's: the fiber's
name, its program, lpParameter and the stack reserve (0: the 1 MB default, §7.3).  After
accept() `request` is a `ConvertRequest` or a `FiberRequest`.

A fiber's program is written in the scenario syntax and read by the Create Process
form's parser (`parse_programs`), so it is checked as you type and accepts what a
scenario's program does.  Its steps may name the process's fibers and FLS slots as they
are now: the parser is shown them as threads of the same process (a converted thread's
fiber is named after its thread) and as `fls_alloc` steps of one more thread.  A
`fiber_create` step needs a scenario's [programs] and so is refused, as in Create Process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox, QDialog, QFormLayout, QLabel, QLineEdit, QPlainTextEdit,
    QVBoxLayout, QWidget,
)

from core import scenario as sc
from core.kernel.fibers import FIBER_FLAG_FLOAT_SWITCH, POINTER_LIMIT
from core.units import parse_size
from inspector.fiber_view import process_fibers
from inspector.process_dialog import PROGRAM_LINES, ProgramError, add_form_footer, parse_programs


@dataclass(frozen=True)
class ConvertRequest:
    """ConvertThreadToFiberEx(parameter, flags)."""

    parameter: int = 0
    flags: int = 0


@dataclass(frozen=True)
class FiberRequest:
    """CreateFiberEx: the fiber's name, its program as scenario steps (core.scenario),
    lpParameter and the stack reserve in bytes (0: the default)."""

    name: str
    program: tuple[sc.Step, ...]
    parameter: int = 0
    stack_reserve: int = 0


def is_word(name: str) -> bool:
    """Whether program steps can refer to `name` (they name objects by words)."""
    return bool(name) and all(c.isprintable() and not c.isspace() for c in name)


def parse_pointer(text: str, what: str) -> int:
    """A pointer-sized value typed in decimal or as 0x hex (WinDbg's ` allowed)."""
    text = text.strip().replace("`", "")
    if not text:
        return 0
    try:
        value = int(text, 0)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number (decimal, or hex as 0x...)") \
            from None
    if not 0 <= value < POINTER_LIMIT:
        raise ValueError(f"{what}: {text} is outside 0..0xFFFFFFFFFFFFFFFF")
    return value


def parse_fiber_program(text: str, name: str, fibers: Sequence[str] = (),
                        slots: Sequence[str] = (),
                        objects: Mapping[str, object] | None = None) -> tuple[sc.Step, ...]:
    """The program of a new fiber `name` as scenario steps; its steps may name the fibers
    `fibers` and the FLS slots `slots` besides the named `objects`.  ProgramError (step
    and line in `text`) for the first step that does not parse."""
    known = [f for f in dict.fromkeys(fibers) if f != name and is_word(f)]
    texts, names = [text], [name]
    texts += [""] * len(known)
    names += known
    declared = [s for s in dict.fromkeys(slots) if is_word(s)]
    if declared:
        texts.append("; ".join(f"fls_alloc {s}" for s in declared))
        names.append(None)
    return parse_programs(texts, names, objects)[0]


def program_problem(exc: ProgramError) -> str:
    """A ProgramError of a fiber's program, without the thread the parser saw."""
    if exc.step is None:
        return exc.reason
    return f"Step {exc.step + 1} (line {exc.line}): {exc.reason}"


class _FiberForm(QDialog):
    """A form whose OK stays disabled, with the problem shown, while its subclass's
    `make_request` finds an entry bad."""

    def __init__(self, parent: QWidget | None, title: str, name: str) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setWindowTitle(title)
        self.request = None
        box = QVBoxLayout(self)
        self.form = QFormLayout()
        box.addLayout(self.form, 1)
        self.error_label, self.buttons, self.ok_button = add_form_footer(
            self, box, "fiber_form_error")

    def _parameter_edit(self) -> QLineEdit:
        edit = QLineEdit("0")
        edit.setObjectName("fiber_parameter")
        edit.setToolTip("lpParameter: what GetFiberData returns (§7.5); decimal or 0x hex")
        edit.textChanged.connect(self.validate)
        return edit

    def validate(self, _value=None) -> str:
        """Check the form: the problem shown under it (OK disabled), or ""."""
        try:
            self.make_request()
        except ValueError as exc:
            problem = program_problem(exc) if isinstance(exc, ProgramError) else str(exc)
        else:
            problem = ""
        self.error_label.setText(problem)
        self.ok_button.setEnabled(not problem)
        return problem

    def accept(self) -> None:
        if self.validate():
            return
        self.request = self.make_request()
        super().accept()


class ConvertFiberDialog(_FiberForm):
    """ConvertThreadToFiberEx's lpParameter and FIBER_FLAG_FLOAT_SWITCH."""

    def __init__(self, parent: QWidget | None = None, *,
                 title: str = "Convert Thread to Fiber") -> None:
        super().__init__(parent, title, "convert_fiber_dialog")
        self.parameter_edit = self._parameter_edit()
        self.form.addRow("Parameter:", self.parameter_edit)
        self.float_check = QCheckBox("FIBER_FLAG_FLOAT_SWITCH (save the floating-point "
                                     "state on a switch)")
        self.float_check.setObjectName("fiber_float_switch")
        self.form.addRow(self.float_check)
        self.validate()

    def make_request(self) -> ConvertRequest:
        return ConvertRequest(parse_pointer(self.parameter_edit.text(), "Parameter"),
                              FIBER_FLAG_FLOAT_SWITCH if self.float_check.isChecked() else 0)


class CreateFiberDialog(_FiberForm):
    """CreateFiberEx in the process of `thread`: a name (by default the first fiberN no
    fiber of the process has), a program (by default one that switches back to the
    thread's fiber, when it is one), the parameter and the stack reserve.  `objects` are
    the named objects steps may refer to."""

    def __init__(self, thread, parent: QWidget | None = None, *,
                 objects: Mapping[str, object] | None = None,
                 title: str = "Create Fiber") -> None:
        super().__init__(parent, title, "create_fiber_dialog")
        self._objects = dict(objects or {})
        self._fibers = [f.name for f in process_fibers(thread.process)]
        self._slots = list(thread.process.fls_slots.values())
        n = 1
        while f"fiber{n}" in self._fibers:
            n += 1
        self.name_edit = QLineEdit(f"fiber{n}")
        self.name_edit.setObjectName("fiber_name")
        self.form.addRow("Name:", self.name_edit)
        current = thread.fiber.name if thread.fiber is not None else None
        back = f"fiber_switch {current}" if current and is_word(current) else "sleep 50ms"
        self.program_edit = QPlainTextEdit(f"cpu 10ms\n{back}\nrepeat")
        self.program_edit.setObjectName("fiber_program")
        self.program_edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.program_edit.setTabChangesFocus(True)
        self.program_edit.setToolTip("Steps as in a scenario, a step a line or separated by "
                                     "; (formats.md §2): " + ", ".join(sc.STEP_USAGE.values()))
        lines = self.program_edit.fontMetrics().lineSpacing() * PROGRAM_LINES
        self.program_edit.setMinimumHeight(lines + 2 * self.program_edit.frameWidth() + 8)
        self.form.addRow("Program:", self.program_edit)
        self.parameter_edit = self._parameter_edit()
        self.form.addRow("Parameter:", self.parameter_edit)
        self.reserve_edit = QLineEdit()
        self.reserve_edit.setObjectName("fiber_stack_reserve")
        self.reserve_edit.setPlaceholderText("0: the executable's default, 1 MiB")
        self.reserve_edit.setToolTip("dwStackReserveSize, e.g. 64KiB (§7.3)")
        self.form.addRow("Stack reserve:", self.reserve_edit)
        self.hint = QLabel()
        self.hint.setObjectName("fiber_form_hint")
        self.hint.setWordWrap(True)
        self.form.addRow(self.hint)
        self.name_edit.textChanged.connect(self.validate)
        self.program_edit.textChanged.connect(self.validate)
        self.reserve_edit.textChanged.connect(self.validate)
        self.validate()

    def validate(self, _value=None) -> str:
        name = self.name_edit.text().strip()
        names = [n for n in dict.fromkeys(self._fibers) if is_word(n)]
        hint = ("Steps may name the fibers " + ", ".join(names) if names
                else "The process has no fiber yet")
        if self._slots:
            hint += " and the FLS slots " + ", ".join(dict.fromkeys(self._slots))
        if name in self._fibers:
            hint += (f". A fiber named {name} exists: the name will refer to the new one "
                     f"(the older fiber lives on at its address)")
        self.hint.setText(hint + ".")
        return super().validate()

    def make_request(self) -> FiberRequest:
        """The form as a FiberRequest; ValueError (ProgramError for the program)."""
        name = self.name_edit.text().strip()
        if not is_word(name):
            raise ValueError("Give the fiber a name without spaces (steps name fibers by "
                             "a word)")
        program = parse_fiber_program(self.program_edit.toPlainText(), name, self._fibers,
                                      self._slots, self._objects)
        parameter = parse_pointer(self.parameter_edit.text(), "Parameter")
        text = self.reserve_edit.text().strip()
        try:
            reserve = parse_size(text) if text else 0
        except ValueError as exc:
            raise ValueError(f"Stack reserve: {exc}") from None
        return FiberRequest(name, program, parameter, reserve)
