"""One progress display for every command: rich bars on a terminal, throttled plain lines elsewhere.

A command's progress has up to two levels:

- its items (the pairs of an evaluation, the videos of a batch), reported by the library's run loop after each
  item (``RunProgress``, or a batch's ``BatchProgress``, which adds frames): a bar of items, and for a batch a
  bar of frames with the ETA over all;
- the steps inside one item or one command (fit steps, locate crops, tracked frames, rendered frames), reported
  as ``progress(stage, done, total)``: a bar per stage.

Off a terminal (logs, SLURM, each rank of a multi-process launch) every level prints plain lines instead: the
steps as `vidcorr.progress.PlainProgress` words them, the items at most every `plain_every_s` seconds and once
per finished item, each line starting with the display's label.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from vidcorr._testhooks import pause_point
from vidcorr.errors import VidcorrError
from vidcorr.progress import PlainProgress, format_duration

from .common import console, err_console

ITEM_STEP_LABELS = {"fit": "  fit steps", "locate": "  locate crops", "track": "  track frames"}
"""How the steps inside one item of a run are named under its items' bar."""


class Interrupted(VidcorrError):
    """Ctrl-C during a run of many items: the finished ones are saved and a re-run resumes."""

    exit_code = 130


class RateColumn(ProgressColumn):
    """Units per second of a stage (steps/s, frames/s)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else (f"{speed:.2f}/s" if speed < 10 else f"{speed:.0f}/s"), style="cyan")


class Display:
    """Progress of one command (see the module docstring).

    Args:
        label: what the command is (``batch shard 0/2``, ``spair test``); starts every plain line.
        unit: what its items are (``pairs``, ``videos``); None for a command without items (one track).
        stage_labels: stage name -> its bar's words (``{"fit": "fitting embeddings (steps)"}``); for a run of
            items the steps are named by ITEM_STEP_LABELS.
        summary: a run's running summary (``RunProgress.running``) -> text, shown beside the items.
        plain: plain lines even on a terminal (each rank of a multi-process launch).
        plain_every_s: the least time between two plain item lines.
    """

    def __init__(self, label: str = "", unit: str | None = None, *, stage_labels: dict[str, str] | None = None,
                 summary: Callable[[dict[Any, float]], str] | None = None, plain: bool = False,
                 plain_every_s: float = 30.0) -> None:
        self.label, self.unit, self.summary = label, unit, summary
        self.stage_labels = stage_labels or (ITEM_STEP_LABELS if unit is not None else {})
        self.enabled = console.is_terminal and not plain
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[note]}"), console=console, disable=not self.enabled)
        # Steps inside one item of a run say nothing off a terminal: the item lines carry the news.
        self.plain_steps = None if self.enabled or unit is not None else PlainProgress(
            lambda line: err_console.print(line, highlight=False, markup=False, soft_wrap=True), self.stage_labels)
        self.tasks: dict[str, TaskID] = {}
        self.last: Any = None
        self.printed: Any = None
        self.plain_every_s = plain_every_s
        self.last_plain = -math.inf
        self.start = time.perf_counter()
        self.first_frames: float | None = None

    def __enter__(self) -> Display:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)
        if not self.enabled and self.last is not None and self.last is not self.printed and exc[0] is None:
            self._print(self.last)

    def _bar(self, key: str, label: str, total: float, completed: float, note: str = "") -> None:
        if key not in self.tasks or self.progress.tasks[self.tasks[key]].completed > completed:
            self.tasks[key] = self.progress.add_task(label, total=total, note="")
        self.progress.update(self.tasks[key], description=label, completed=completed, total=total, note=note)

    def __call__(self, stage: str, done: int, total: int) -> None:
        """The library's ``progress(stage, done, total)``: the steps of one command or of the current item."""
        pause_point(stage)
        if self.plain_steps is not None:
            self.plain_steps(stage, done, total)
        elif self.enabled and not (stage == "track" and self.first_frames is not None):
            # (a batch's frames have their own bars, from its items: not a second "track" bar)
            key = stage if self.unit is None else "step"
            self._bar(key, self.stage_labels.get(stage, f"  {stage}"), total, done)

    def items(self, update: Any) -> None:
        """The run loop's report after each item (and once before the first): ``RunProgress`` or
        ``BatchProgress``."""
        self.last = update
        frames_total = getattr(update, "frames_total", None)
        if frames_total is not None and self.first_frames is None:
            self.first_frames = update.frames_done
        if self.enabled:
            running = getattr(update, "running", None)
            note = self.summary(running) if self.summary is not None and running else ""
            self._bar("items", f"{self.label} {self.unit}", update.total, update.done, note)
            if frames_total is not None:
                self._bar("frames", "  frames (all)", frames_total, update.frames_done)
                label = f"  {update.video} frames" if update.video else "  current video"
                self._bar("video", label, max(update.video_total, 1), update.video_done)
            return
        finished = getattr(update, "finished", None) or getattr(update, "item", None)
        if finished is None and time.perf_counter() - self.last_plain < self.plain_every_s:
            return
        self._print(update)

    def _print(self, update: Any) -> None:
        self.printed, self.last_plain = update, time.perf_counter()
        console.print(self.line(update), highlight=False, soft_wrap=True)

    def line(self, update: Any) -> str:
        """One plain line: items done, frames done (a batch), the ETA, the latest item, the running summary."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        failed = getattr(update, "failed", 0)
        text = f"{self.label}: {update.done}/{update.total} {self.unit}" + (f" ({failed} failed)" if failed else "")
        if getattr(update, "frames_total", None) is not None:
            rate, left = (update.frames_done - (self.first_frames or 0.0)) / elapsed, update.frames_total - \
                update.frames_done
            text += f", {update.frames_done:.0f}/{update.frames_total} frames"
        else:
            rate, left = (update.done - update.resumed) / elapsed, update.total - update.done
        if rate > 0 and left > 0:
            text += f", ETA {format_duration(left / rate)}"
        finished = getattr(update, "finished", None) or getattr(update, "item", None)
        if finished is not None:
            status = getattr(update, "status", None) or "done"
            text += f"; {finished} {status} in {format_duration(update.seconds or 0.0)}"
        elif getattr(update, "video", None) is not None:
            text += f"; {update.video} frame {update.video_done}/{update.video_total}"
        elif update.resumed:
            text += f"; {update.resumed} done before"
        running = getattr(update, "running", None)
        if self.summary is not None and running:
            text += f"; {self.summary(running)}"
        return text

    def interrupted(self, where: str) -> Interrupted:
        """The one-line error for Ctrl-C during a run of items: what is saved where, and how to resume."""
        last = self.last
        done = f"{last.done} of {last.total} {self.unit} are" if last is not None else f"the finished {self.unit} are"
        return Interrupted(f"interrupted; {done} saved in {where}; run the same command again to resume")
