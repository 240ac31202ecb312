"""One video of a batch, its work run so that a failure stays local.

A batch must go on when one of its videos cannot be decoded (a truncated or corrupt file, a frame
folder with a stray file): `run_video` turns the one-line error a user can fix (a `VidcorrError`,
which the readers raise for every decode failure) into a recorded `VideoOutcome`. Anything else (a bug,
out of memory, Ctrl-C) is not the video's fault and still propagates.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from vidcorr.errors import VidcorrError

T = TypeVar("T")
DONE, FAILED = "done", "failed"


@dataclass(frozen=True)
class VideoOutcome(Generic[T]):
    """What became of one video.

    Attributes:
        video: the video's path.
        status: DONE or FAILED.
        result: what the work returned (DONE), else None.
        error: the failure's one-line reason (FAILED), else None.
        seconds: wall time spent on the video.
    """

    video: Path
    status: str
    result: T | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == FAILED


def one_line(error: BaseException) -> str:
    """An error's message as one line (its first line; the exception's name when it has no message)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def run_video(video: str | os.PathLike, work: Callable[[Path], T],
              clock: Callable[[], float] = time.perf_counter) -> VideoOutcome[T]:
    """`work(video)`, with a VidcorrError (e.g. the reader's InputError for a video that cannot be decoded)
    recorded as a FAILED outcome carrying its one-line message instead of raised."""
    path = Path(video)
    began = clock()
    try:
        result = work(path)
    except VidcorrError as exc:
        return VideoOutcome(path, FAILED, error=one_line(exc), seconds=clock() - began)
    return VideoOutcome(path, DONE, result=result, seconds=clock() - began)
