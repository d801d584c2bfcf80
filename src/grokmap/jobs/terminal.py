"""What a run prints (config.yaml ``terminal``): with ``summary`` (the default), the terminal
shows the settings checks, progress, warnings and errors and, at the end, the answer (phase
counts, undecided cells, the validation verdict, where the report and explorer are); Snakemake's
per-job lines (rule, inputs, outputs, reason, "Select jobs to execute...") go to its log file
only (``.snakemake/log/``), whose path the run names; a failed job's input and output lists and
its command are cut short on the terminal (the log file keeps them whole). ``full`` leaves
Snakemake's terminal as is.

Snakemake has no setting for "the log file in full, the terminal brief" (``--quiet`` silences
both), so :func:`brief_terminal` adds a filter to the handler Snakemake writes the terminal with;
when that handler is not found (another Snakemake, a logger plugin) the terminal stays full.
"""
from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["TERMINAL_MODES", "brief_terminal", "end_summary"]

TERMINAL_MODES = ("summary", "full")
_KEEP = ("Nothing to be done", "Complete log")  # INFO lines a reader needs


class _Brief(logging.Filter):
    """Warnings and errors, and the few INFO lines in :data:`_KEEP`; notes whether Snakemake
    said there was nothing to do (then no onsuccess runs, and the summary is printed at exit)."""

    nothing_to_do = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        try:
            text = str(record.getMessage()).lstrip()
        except Exception:  # a record whose message does not format: let Snakemake's handler decide
            return True
        if text.startswith("Nothing to be done"):
            _Brief.nothing_to_do = True
        return text.startswith(_KEEP)


class _ShortLists(logging.Formatter):
    """Snakemake's terminal formatter, with a failed job's input and output lists cut to their
    first few files (an aggregation job lists every cell: thousands of paths), its shell command
    to its first 400 characters, and the reason a step gave (the last error line of its log
    file) shown under it; the log file's handler keeps its own formatter, and so everything."""

    SHELL_CHARS = 400

    def __init__(self, inner: logging.Formatter, keep: int = 3):
        super().__init__()
        self.inner, self.keep = inner, keep

    def format(self, record: logging.LogRecord) -> str:
        long = [k for k in ("input", "output") if len(getattr(record, k, None) or ()) > self.keep]
        shell = getattr(record, "shellcmd", None)
        long_shell = isinstance(shell, str) and len(shell) > self.SHELL_CHARS
        if long or long_shell:
            import copy

            record = copy.copy(record)
            for k in long:
                files = list(getattr(record, k))
                setattr(record, k, files[:self.keep] + [f"... and {len(files) - self.keep} more (all of them in the log file)"])
            if long_shell:
                record.shellcmd = shell[:self.SHELL_CHARS] + " ... (the whole command in the log file)"
        text = self.inner.format(record)
        reason = _step_error(getattr(record, "log", None)) if "Error in rule" in text else None
        return text + f"\n    reason: {reason}" if reason else text


def _step_error(logs) -> str | None:
    """The last ERROR line of a failed job's log file (an aggregation step logs why it failed),
    cut to 400 characters; None when there is none."""
    for path in [logs] if isinstance(logs, str) else list(logs or []):
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        errors = [line.split(" ERROR ", 1)[1].removeprefix("grokmap: ") for line in lines if " ERROR " in line]
        if errors:
            first = next((e for e in errors if "removed " not in e), errors[0])
            return first[:400] + (" ..." if len(first) > 400 else "")
    return None


def wants_brief_terminal(setting: str, argv: list) -> bool:
    """config.yaml ``terminal: summary``, except for dry runs, listings and -p/--verbose/--debug,
    which keep Snakemake's own terminal."""
    from .resume import is_dry_run

    return (setting == "summary" and not is_dry_run(argv)
            and not any(a in ("-p", "--printshellcmds", "--verbose", "--debug") for a in argv))


def brief_terminal(results_dir: str | Path, started: float, logger_name: str = "snakemake.logging") -> bool:
    """Filter Snakemake's terminal handler (not its log file's); True when one was found. A run
    with nothing to do (no onsuccess) prints :func:`end_summary` as the process exits."""
    import atexit
    import sys

    found = False
    for handler in logging.getLogger(logger_name).handlers:
        if handler.get_name() == "DefaultStreamHandler" and not any(isinstance(f, _Brief) for f in handler.filters):
            handler.addFilter(_Brief())
            if handler.formatter is not None and not isinstance(handler.formatter, _ShortLists):
                handler.setFormatter(_ShortLists(handler.formatter))
            found = True
    if found:
        def at_exit() -> None:
            if _Brief.nothing_to_do:
                print("\n".join(end_summary(results_dir, started)), file=sys.stderr)

        atexit.register(at_exit)
    return found


def end_summary(results_dir: str | Path, started: float) -> list[str]:
    """The lines a finished run ends with: the sweep's answer when this run validated it (or found
    it up to date), else where the results stand."""
    from ..cli import summary_lines

    results_dir = Path(results_dir)
    phases, validation = results_dir / "phases.json", results_dir / "validation.json"
    if not phases.is_file():
        return [f"grokmap: no phases.json in {results_dir} yet (this run trained cells only)"]
    if not validation.is_file() or validation.stat().st_mtime < phases.stat().st_mtime:
        return [f"grokmap: {results_dir} has phases but no validation newer than them; run the default target "
                f"to aggregate and validate"]
    fresh = validation.stat().st_mtime >= started
    lines = summary_lines(results_dir)
    head = "grokmap: " + ("this run's results" if fresh else "results up to date")
    return [head] + ["  " + line for line in lines]
