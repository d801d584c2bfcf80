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
