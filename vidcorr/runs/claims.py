"""Claims: which process works on an item of a run folder, so that two processes given one folder never work on
the same item, and a dead process's claim never blocks it for good.

A claim is a small JSON file (``<name>.claim``) created with ``O_CREAT | O_EXCL``, so exactly one process gets
it. It holds who made it: the host, the process id, the process's start time (Linux: from ``/proc``, so a
process id reused by a later process is not mistaken for the claimant) and a random token. The claimant
refreshes the file's modification time as it works (:meth:`Claim.refresh`, at most every
``stale_after_s / 10`` seconds) and deletes it when done (:meth:`Claim.release`).

Another process may take a claim over when it is stale:

- made on this host by a process that is no longer running (killed, crashed); or
- not refreshed for `stale_after_s` seconds (a process on another host, which cannot be asked whether it
  runs; or a claim file whose content could not be read).

A live process on this host keeps its claim however long it works. Taking over moves the stale file aside
under a name private to the taker and checks that it moved the file it judged stale; should a fresh claim
have been moved instead (another taker was faster), it is put back. Then the taker claims as anyone does.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_STALE_S = 1800.0
"""A claim not refreshed for this long may be taken over (what decides for a claim made on another host)."""
CLAIM_SUFFIX = ".claim"


@dataclass(frozen=True)
class Holder:
    """Who made a claim (None where its file could not be read) and when it was last refreshed.

    Attributes:
        host, pid, started: the claimant's host name, process id and start time (None where unknown).
        token: the claim's random token. refreshed: the file's modification time (epoch seconds).
    """

    host: str | None
    pid: int | None
    started: int | None
    token: str | None
    refreshed: float

    def describe(self) -> str:
        """``process 123 on host h`` (or ``an unknown process``), for messages."""
        return f"process {self.pid} on {self.host}" if self.pid is not None else "an unknown process"


def process_start(pid: int) -> int | None:
    """The start time of process `pid` in clock ticks since boot (Linux), or None where not known."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count the fields after its last ')'.
    fields = text[text.rfind(")") + 2:].split()
    try:
        return int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None


def _running(pid: int, started: int | None) -> bool:
    """Whether process `pid` of this host runs and is the one that started at `started` (where known)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it runs, as another user
    except OSError:
        return True  # cannot tell: keep the claim
    now = process_start(pid)
    return started is None or now is None or now == started


def read_holder(path: str | os.PathLike) -> Holder | None:
    """The claim at `path`, or None if there is none."""
    path = Path(path)
    try:
        refreshed = path.stat().st_mtime
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        data = None  # being written, or damaged: judged by its age alone
    if not isinstance(data, dict):
        return Holder(None, None, None, None, refreshed)
    pid, started = data.get("pid"), data.get("started")
    return Holder(str(data.get("host")), pid if isinstance(pid, int) else None,
                  started if isinstance(started, int) else None, str(data.get("token")), refreshed)


def is_stale(holder: Holder, stale_after_s: float = DEFAULT_STALE_S, now: float | None = None) -> bool:
    """Whether a claim may be taken over (the rules are in this module's docstring)."""
    if holder.host == socket.gethostname() and holder.pid is not None and not _running(holder.pid, holder.started):
        return True
    return (time.time() if now is None else now) - holder.refreshed > stale_after_s


class Claim:
    """A claim this process holds; see :func:`claim`."""

    def __init__(self, path: Path, token: str, stale_after_s: float) -> None:
        self.path = path
        self.token = token
        self.stale_after_s = stale_after_s
        self._refreshed = time.monotonic()

    def held(self) -> bool:
        """Whether the claim file is still this process's (it was not taken over)."""
        holder = read_holder(self.path)
        return holder is not None and holder.token == self.token

    def refresh(self) -> None:
        """Mark the claim as alive (its file's modification time), at most every ``stale_after_s / 10`` s."""
        if time.monotonic() - self._refreshed < self.stale_after_s / 10:
            return
        self._refreshed = time.monotonic()
        with contextlib.suppress(OSError):
            os.utime(self.path)

    def release(self) -> None:
        """Delete the claim file, if it is still this process's."""
        if self.held():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def _create(path: Path, token: str) -> bool:
    """Create the claim file with this process's identity; False if it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    pid = os.getpid()
    record = {"host": socket.gethostname(), "pid": pid, "started": process_start(pid), "token": token,
              "claimed": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record))
    return True


def _take_over(path: Path, judged: Holder) -> None:
    """Remove the stale claim at `path` that `judged` describes, and nothing else."""
    aside = path.with_name(f"{path.name}.{secrets.token_hex(8)}.stale")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return  # another process removed it first
    moved = read_holder(aside)
    if moved is not None and (moved.token, moved.refreshed) != (judged.token, judged.refreshed):
        # A fresh claim was moved (its maker replaced the stale one first): put it back, never over another.
        with contextlib.suppress(OSError):
            os.link(aside, path)
    with contextlib.suppress(FileNotFoundError):
        aside.unlink()


def claim(path: str | os.PathLike, stale_after_s: float = DEFAULT_STALE_S) -> Claim | None:
    """Claim the item whose claim file is `path` (its folder is created): the :class:`Claim`, or None while
    another process holds it (a claim that is not stale, see :func:`is_stale`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    for _ in range(3):
        if _create(path, token):
            return Claim(path, token, stale_after_s)
        holder = read_holder(path)
        if holder is not None and not is_stale(holder, stale_after_s):
            return None
        if holder is not None:
            _take_over(path, holder)
    return None
