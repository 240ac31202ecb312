"""Plain, throttled progress lines for logs (nohup, batch jobs): where no progress bar can be drawn.

`PlainProgress` is a ``progress(stage, done, total)`` callback, the signature every long library
call takes. It formats one line per report worth making and hands it to `emit`; it never prints
itself (the CLI passes a function that writes to stderr).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


def format_duration(seconds: float) -> str:
    """'42 s', '12 min', '3.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class _Stage:
    first_time: float
    first_done: int
    done: int
    last_emit: float
    next_fraction: float


class PlainProgress:
    """``progress(stage, done, total)`` -> a line ``label: done/total (pct), rate/s, ETA t`` now and then.

    A line is emitted on a stage's first report, on its last (done == total), and in between when
    `every_s` seconds have passed since the stage's previous line or `done` crossed another
    `every_fraction` of `total`. A report with a smaller `done` than the previous one starts the
    stage again (fitting runs once per reference frame, for example). The rate counts the units
    done since the stage's first report, over the time since then.

    Args:
        emit: called with each line (no newline).
        labels: stage name -> what the line calls it ("track" -> "tracking (frames)").
        every_s: most seconds between two lines of a stage while it runs.
        every_fraction: a line each time this fraction of the stage is crossed.
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, emit: Callable[[str], None], labels: dict[str, str] | None = None, every_s: float = 10.0,
                 every_fraction: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.emit = emit
        self.labels = labels or {}
        self.every_s = every_s
        self.every_fraction = every_fraction
        self.clock = clock
        self._stages: dict[str, _Stage] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        state = self._stages.get(stage)
        fraction = done / total if total > 0 else 1.0
        if state is None or done < state.done:
            state = _Stage(first_time=now, first_done=done, done=done, last_emit=now,
                           next_fraction=self._next_fraction(fraction))
            self._stages[stage] = state
            self.emit(self.line(stage, state, done, total, now))
            return
        state.done = done
        due = (done >= total or now - state.last_emit >= self.every_s or fraction >= state.next_fraction)
        if due and (done != state.first_done or done >= total):
            state.last_emit = now
            state.next_fraction = self._next_fraction(fraction)
            self.emit(self.line(stage, state, done, total, now))

    def _next_fraction(self, fraction: float) -> float:
        return (math.floor(fraction / self.every_fraction + 1e-9) + 1) * self.every_fraction

    def line(self, stage: str, state: _Stage, done: int, total: int, now: float) -> str:
        text = f"{self.labels.get(stage, stage)}: {done}/{total}"
        if total > 0:
            text += f" ({100 * done / total:.0f} %)"
        elapsed = now - state.first_time
        if done > state.first_done and elapsed > 0:
            rate = (done - state.first_done) / elapsed
            text += f", {rate:.2f}/s" if rate < 10 else f", {rate:.0f}/s"
            if done < total:
                text += f", ETA {format_duration((total - done) / rate)}"
        return text
