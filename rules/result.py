"""The outcome of loading rule files: errors and warnings, each with its position."""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR = "error"
WARNING = "warning"

# Error codes (Falco's load_result names, so users can search for them)
LOAD_ERR_FILE_READ = "LOAD_ERR_FILE_READ"
LOAD_ERR_YAML_PARSE = "LOAD_ERR_YAML_PARSE"
LOAD_ERR_YAML_VALIDATE = "LOAD_ERR_YAML_VALIDATE"
LOAD_ERR_COMPILE_CONDITION = "LOAD_ERR_COMPILE_CONDITION"
LOAD_ERR_COMPILE_OUTPUT = "LOAD_ERR_COMPILE_OUTPUT"
LOAD_ERR_VALIDATE = "LOAD_ERR_VALIDATE"

# Warning codes
LOAD_UNKNOWN_SOURCE = "LOAD_UNKNOWN_SOURCE"
LOAD_UNSAFE_NA_CHECK = "LOAD_UNSAFE_NA_CHECK"
LOAD_NO_EVTTYPE = "LOAD_NO_EVTTYPE"
LOAD_UNKNOWN_FILTER = "LOAD_UNKNOWN_FILTER"
LOAD_UNUSED_MACRO = "LOAD_UNUSED_MACRO"
LOAD_UNUSED_LIST = "LOAD_UNUSED_LIST"
LOAD_UNKNOWN_ITEM = "LOAD_UNKNOWN_ITEM"
LOAD_DEPRECATED_ITEM = "LOAD_DEPRECATED_ITEM"
LOAD_WARNING_INTERNAL = "LOAD_WARNING_INTERNAL"
LOAD_APPEND_NO_VALUES = "LOAD_APPEND_NO_VALUES"
LOAD_EXCEPTION_NAME_NOT_UNIQUE = "LOAD_EXCEPTION_NAME_NOT_UNIQUE"
LOAD_INVALID_MACRO_NAME = "LOAD_INVALID_MACRO_NAME"
LOAD_INVALID_LIST_NAME = "LOAD_INVALID_LIST_NAME"
LOAD_COMPILE_CONDITION = "LOAD_COMPILE_CONDITION"
LOAD_UNKNOWN_KEY = "LOAD_UNKNOWN_KEY"
LOAD_DEPRECATED_FIELD = "LOAD_DEPRECATED_FIELD"
LOAD_DUPLICATE_KEY = "LOAD_DUPLICATE_KEY"


@dataclass(frozen=True, slots=True)
class Position:
    """Where something is: a file, a 1-based line and column (0 when unknown)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file


@dataclass(frozen=True, slots=True)
class LoadMessage:
    """One error or warning of a load.

    ``item`` names what was being read (``rule 'Write below etc'``); ``detail`` shows the
    offending text with a caret under the position, when there is one (for condition
    errors: the condition after list expansion, with the offset inside it).
    """

    severity: str
    code: str
    message: str
    position: Position
    item: str = ""
    detail: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def format(self) -> str:
        where = f"{self.position}: " if self.position.file else ""
        head = f"{where}{self.severity} {self.code}: {self.message}"
        if self.item:
            head += f" (in {self.item})"
        if self.detail:
            head += "\n" + "\n".join("    " + ln for ln in self.detail.splitlines())
        return head

    def to_json_obj(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": self.position.file,
            "line": self.position.line,
            "column": self.position.column,
            "item": self.item,
        }


@dataclass(slots=True)
class FileStats:
    """What one rules file defined (counted per item, as `falconet rules validate` prints)."""

    path: str
    rules: int = 0
    macros: int = 0
    lists: int = 0


@dataclass(slots=True)
class LoadResult:
    """Errors, warnings and per-file counts of :meth:`Engine.load`."""

    messages: list[LoadMessage] = field(default_factory=list)
    files: list[FileStats] = field(default_factory=list)

    @property
    def errors(self) -> list[LoadMessage]:
        return [m for m in self.messages if m.is_error]

    @property
    def warnings(self) -> list[LoadMessage]:
        return [m for m in self.messages if not m.is_error]

    @property
    def ok(self) -> bool:
        return not any(m.is_error for m in self.messages)

    def add(self, msg: LoadMessage) -> None:
        self.messages.append(msg)

    def summary(self) -> str:
        """A one-line human summary: ``3 files, 0 errors, 2 warnings``."""
        n_err = len(self.errors)
        n_warn = len(self.warnings)
        return (
            f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}, "
            f"{n_err} error{'s' if n_err != 1 else ''}, "
            f"{n_warn} warning{'s' if n_warn != 1 else ''}"
        )
