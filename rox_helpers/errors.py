"""The error tree of the workbook.

Every error a user can cause says *where* (file, key or column), *which rule*
was broken and *how to fix it*.  The CLI prints these fields and exits
non-zero; a traceback is only shown with ``--debug``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class RoxError(Exception):
    """Base class for every error the workbook raises on purpose.

    Parameters
    ----------
    message : str
        What went wrong, in one sentence.
    file : str, optional
        The file (or source) the problem is in.
    column : str, optional
        The column or configuration key path concerned.
    rule : str, optional
        The rule that was broken, e.g. ``"required column"``.
    fix : str, optional
        What the user should do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        rule: str | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.column = column
        self.rule = rule
        self.fix = fix

    def details(self) -> dict[str, str]:
        """The non-empty location fields, in display order."""
        out = {"file": self.file, "column": self.column, "rule": self.rule, "fix": self.fix}
        return {k: v for k, v in out.items() if v}

    def __str__(self) -> str:
        lines = [self.message]
        lines += [f"  {k}: {v}" for k, v in self.details().items()]
        return "\n".join(lines)


@dataclass
class Problem:
    """One problem found in a configuration or a data file.

    ``severity`` is ``"error"`` (stops the run), ``"warning"`` (rows are
    quarantined or an analysis is skipped) or ``"info"``.
    """

    severity: str
    message: str
    file: str = ""
    table: str = ""
    column: str = ""
    rule: str = ""
    fix: str = ""
    n_rows: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "table": self.table,
            "file": self.file,
            "column": self.column,
            "rule": self.rule,
            "n_rows": self.n_rows,
            "message": self.message,
            "fix": self.fix,
        }


class ConfigError(RoxError):
    """engagement.yml is missing, unreadable or invalid.

    ``problems`` holds every problem found (validation is not stopped at the
    first one).
    """

    def __init__(self, message: str, *, problems: list[Problem] | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return super().__str__()
        lines = [self.message]
        for p in self.problems:
            where = p.column or "(top level)"
            lines.append(f"  - {where}: {p.message}")
            if p.fix:
                lines.append(f"      fix: {p.fix}")
        return "\n".join(lines)


class DataValidationError(RoxError):
    """A data file cannot be used at all (missing file, missing required column).

    Row-level failures never raise: those rows are quarantined.  ``problems``
    lists every hard problem found across all tables.
    """

    def __init__(self, message: str, *, problems: list[Problem] | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return super().__str__()
        lines = [self.message]
        for p in self.problems:
            lines.append(f"  - [{p.table}] {p.file} column {p.column!r}: {p.message} ({p.rule})")
            if p.fix:
                lines.append(f"      fix: {p.fix}")
        return "\n".join(lines)


class PrivacyError(RoxError):
    """A privacy rule would be broken (e.g. a key is unusable, raw identifiers would leak)."""


@dataclass
class NotebookFailure:
    notebook: str
    cell_index: int | None = None
    ename: str = ""
    evalue: str = ""
    output_path: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class NotebookRunError(RoxError):
    """A notebook failed while ``rox run`` executed it."""

    def __init__(self, failures: list[NotebookFailure]) -> None:
        first = failures[0]
        cell = f"cell {first.cell_index}" if first.cell_index is not None else "a cell"
        msg = f"Notebook {first.notebook} failed at {cell}: {first.ename}: {first.evalue}"
        if len(failures) > 1:
            msg += f" (and {len(failures) - 1} more failed step(s))"
        super().__init__(
            msg,
            file=first.output_path or first.notebook,
            rule="notebook executes without error",
            fix="Open the executed notebook named above, read the failing cell, fix the "
            "data or parameters, then re-run.",
        )
        self.failures = failures
