"""Test-only: hold a run at a chosen stage so a test can send it a signal there. Not an API.

With ``VIDCORR_TEST_PAUSE_AT=STAGE:MARKER`` in the environment, the first progress report of STAGE
(a ``progress(stage, done, total)`` stage name: fit, track, render, keyframes, ...) creates the
file MARKER and then sleeps for up to `PAUSE_S` seconds, inside the stage, with its outputs
half-written. tests/test_interrupts.py waits for MARKER, then signals the process. Without the
variable `pause_point` returns at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENV = "VIDCORR_TEST_PAUSE_AT"
PAUSE_S = 30.0
_paused: set[str] = set()


def pause_point(stage: str) -> None:
    """Pause here if the environment asks for `stage` (once per process)."""
    spec = os.environ.get(ENV)
    if not spec or stage in _paused:
        return
    wanted, _, marker = spec.partition(":")
    if wanted != stage or not marker:
        return
    _paused.add(stage)
    Path(marker).write_text(str(os.getpid()))
    deadline = time.monotonic() + PAUSE_S
    while time.monotonic() < deadline:  # short sleeps: a signal's handler runs between them
        time.sleep(0.05)
