"""Sweep progress: cells done / total and an estimate of the time left.

A daemon thread polls the output files of the cells still to train this run (a cell is
done when its file exists and is newer than the start of the run), and prints a line
when the count changes (at most every ``min_interval`` seconds) and otherwise every
``interval`` seconds. It runs inside the scheduler's process and touches only ``stat``.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Iterable, TextIO

__all__ = ["ProgressMonitor", "format_duration"]


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class ProgressMonitor:
    def __init__(self, paths: Iterable[str], total_cells: int, interval: float = 30.0,
                 min_interval: float = 5.0, stream: TextIO | None = None):
        self.paths = list(paths)
        self.total_cells = total_cells
        self.interval, self.min_interval = interval, min_interval
        self.stream = stream or sys.stderr
        self.start = time.time()
        self._stop = threading.Event()
        self.last_printed = -1
        self._thread = threading.Thread(target=self._loop, name="grokmap-progress", daemon=True)

    def done(self) -> int:
        n = 0
        for p in self.paths:
            try:
                n += os.stat(p).st_mtime >= self.start - 1
            except OSError:
                pass
        return n

    def line(self, done: int) -> str:
        todo = len(self.paths)
        elapsed = time.time() - self.start
        text = (f"[progress] {done}/{todo} cells trained this run "
                f"({self.total_cells - todo + done}/{self.total_cells} of the grid), "
                f"{format_duration(elapsed)} elapsed")
        if 0 < done < todo:
            text += f", ~{format_duration(elapsed / done * (todo - done))} left"
        return text

    def _loop(self) -> None:
        last_count, last_print = -1, 0.0
        while not self._stop.wait(1.0):
            count, now = self.done(), time.time()
            if (count != last_count and now - last_print >= self.min_interval) or \
                    now - last_print >= self.interval:
                print(self.line(count), file=self.stream, flush=True)
                last_count, last_print = count, now
                self.last_printed = count
            if count >= len(self.paths):
                return

    def begin(self) -> "ProgressMonitor":
        if self.paths:
            print(f"[progress] {len(self.paths)} of {self.total_cells} cells to train",
                  file=self.stream, flush=True)
            self._thread.start()
        return self

    def end(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)


class RoundProgress(ProgressMonitor):
    """The cells of the rounds after the grid (refinement, extension), counted as their lists
    appear: ``lists()`` returns (round label, the metrics.json paths the round's list names) for
    every round list that exists so far. A line names each round whose count changed, e.g.
    ``[progress] extension round 1 (x2): 12/141 cells, 3m10s elapsed``, and every ``interval``
    seconds the rounds still training."""

    def __init__(self, lists, interval: float = 30.0, min_interval: float = 5.0, stream: TextIO | None = None):
        super().__init__([], 0, interval, min_interval, stream)
        self.lists = lists
        self.shown: dict[str, tuple[int, int]] = {}
        self._thread = threading.Thread(target=self._rounds, name="grokmap-round-progress", daemon=True)

    @staticmethod
    def _existing(paths: list[str]) -> int:
        return sum(os.path.exists(p) for p in paths)

    def _rounds(self) -> None:
        shown = self.shown
        last_print = 0.0
        while not self._stop.wait(1.0):
            try:
                counts = {label: (self._existing(paths), len(paths)) for label, paths in self.lists()}
            except (OSError, ValueError):  # a list being written: read it at the next poll
                continue
            now = time.time()
            changed = [k for k, v in counts.items() if shown.get(k) != v]
            pending = [k for k, (done, todo) in counts.items() if done < todo]
            due = changed if changed and now - last_print >= self.min_interval else \
                pending if pending and now - last_print >= self.interval else []
            for label in due:
                done, todo = counts[label]
                print(f"[progress] {label}: {done}/{todo} cells, {format_duration(now - self.start)} elapsed",
                      file=self.stream, flush=True)
                shown[label] = counts[label]
            if due:
                last_print = now

    def begin(self) -> "RoundProgress":
        self._thread.start()
        return self

    def end(self) -> None:
        """Stop, and print each round whose last count was not printed yet."""
        super().end()
        try:
            lists = self.lists()
        except (OSError, ValueError):
            return
        for label, paths in lists:
            now = (self._existing(paths), len(paths))
            if self.shown.get(label) != now:
                print(f"[progress] {label}: {now[0]}/{now[1]} cells, {format_duration(time.time() - self.start)} "
                      f"elapsed", file=self.stream, flush=True)


def round_cell_lists(results_dir: str, params: dict) -> list[tuple[str, list[str]]]:
    """:class:`RoundProgress`'s lists: each refinement and extension round list written so far
    (named by these settings), with the records of the cells it names."""
    import json
    from pathlib import Path

    from ..analysis.aggregate import REFINED, round_file
    from ..analysis.extend import EXTENDED, extension_file, multiple

    out = []
    for r in range(1, params["refine"]["rounds"] + 1):
        path = round_file(results_dir, r, params)
        if path.exists():
            cells = json.loads(Path(path).read_text())["cells"]
            out.append((f"refinement round {r}", [f"{results_dir}/{REFINED}/cells/{c}/metrics.json" for c in cells]))
    for r in range(1, params["extend"]["rounds"] + 1):
        path, m = extension_file(results_dir, r, params), multiple(params, r)
        if path.exists():
            cells = json.loads(Path(path).read_text())["cells"]
            out.append((f"extension round {r} (x{m} budget)",
                        [f"{results_dir}/{EXTENDED}/x{m}/cells/{c}/metrics.json" for c in cells]))
    return out


def start_monitors(plan) -> list:
    """The run's progress lines (a :class:`grokmap.jobs.plan.Plan`): the grid's cells to train,
    and with refinement or extension each round's cells as its list appears."""
    monitors = [ProgressMonitor([f"{plan.results}/cells/{c.relpath}/metrics.json" for c in plan.todo],
                                len(plan.cells)).begin()]
    if plan.rounds or plan.xrounds:
        monitors.append(RoundProgress(lambda: round_cell_lists(plan.results, plan.params)).begin())
    return monitors


def end_monitors(monitors: list, final: bool) -> None:
    """Stop them; after a successful run, print each count whose last value was not printed."""
    for m in monitors:
        m.end()
        if final and m.paths and m.last_printed != m.done():
            print(m.line(m.done()), file=sys.stderr)
