"""How a benchmark run goes, beside what it evaluates: one object for the three runners (no torch)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from vidcorr.runs.folder import Items, RecordKind, RunningSummary, RunOutcome, RunProgress, check_setup, run_items

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class RunOptions:
    """The run-folder options of ``run_eval`` (pairs), ``run_tapvid`` and ``run_jhmdb``.

    Attributes:
        shard: (index, count) of this process; it names the results file.
        setup: written to ``run.json``, or compared with the one there (``vidcorr.runs.check_setup``); None:
            neither.
        progress: called once before the first item and after each one (a KeyboardInterrupt raised there stops
            the run with every finished item saved).
        fsync: fsync each results line (off for tests).
    """

    shard: tuple[int, int] = (0, 1)
    setup: Mapping[str, Any] | None = None
    progress: Callable[[RunProgress], None] | None = None
    fsync: bool = True

    def run_items(self, kind: RecordKind[R], out_dir: str | os.PathLike, items: Items[T], process: Callable[[T], R],
                  summary: RunningSummary[R]) -> RunOutcome[R]:
        """Check ``run.json`` against `setup` (if given), then ``vidcorr.runs.run_items`` with these options."""
        if self.setup is not None:
            check_setup(out_dir, self.setup)
        return run_items(kind, out_dir, items, process, shard=self.shard, summary=summary, progress=self.progress,
                         fsync=self.fsync)
