"""Complete or absent: a run's outputs become visible all at once, or not at all.

A run writes every output into a hidden staging folder next to its output folder, on the same file
system (``.OUT.partial-<host>-<pid>``), and only when everything is written (and checked) is the
folder renamed into place. What a reader of OUT can see at each moment:

1. While the run writes: OUT is as it was (absent, or the previous run); the new files are only in
   the hidden staging folder.
2. OUT absent (or an empty folder): one ``rename(staging, OUT)``. Atomic: OUT appears whole.
3. OUT holds an earlier run and ``overwrite=True``: ``rename(OUT, .OUT.old-<host>-<pid>)``, then
   ``rename(staging, OUT)``, then the old run is deleted. Between the two renames (microseconds)
   OUT is absent and the earlier run sits whole under the hidden ``.old`` name; OUT never holds a
   mix of two runs.
4. Any exception, KeyboardInterrupt included (the CLI turns SIGTERM into one), removes the staging
   folder. SIGKILL or a power cut leaves at most a hidden ``.partial`` folder, never a
   complete-looking OUT.

The next run for the same OUT tidies up after a killed one (`recover`): ``.partial`` folders of
processes that no longer run on this host are deleted; a ``.old`` folder of a dead process is
deleted when OUT exists (step 3 finished but the clean-up did not), or renamed back to OUT when OUT
is missing (the process died between the two renames: the earlier run is restored whole). Folders
of live processes, or of other hosts sharing the file system, are left alone.

A single output file (``fit -o e.safetensors``, ``render -o a.mp4``) is staged the same way under
a hidden sibling name and put in place with one atomic ``os.replace``.

A write that fails (a full disk, say) is reported as `OutputWriteError`, naming the file by its
final name and the cause. Some writers (OpenCV's VideoWriter) report nothing when the disk fills:
`verify_written_video` reads back what they wrote before it can become visible.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from vidcorr.errors import InputError, VidcorrError
from vidcorr.io.names import RUN_ENTRIES
from vidcorr.io.reader import quiet_native_stderr


class OutputExistsError(InputError):
    """The output is there already and replacing it was not asked for."""


class OutputWriteError(VidcorrError):
    """An output could not be written (full disk, quota, I/O error, an encoder that failed)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is (see `raise_on_sigterm`) so that clean-up runs as for Ctrl-C."""


def raise_on_sigterm() -> None:
    """Make SIGTERM raise `Terminated` in the main thread, so staged outputs are removed as on Ctrl-C.

    For programs (the CLI calls it at start); the library never installs signal handlers itself.
    """
    def handler(signum: int, frame: object) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, handler)


_published: list[Path] = []


def published() -> list[Path]:
    """Every output this process has put in place, in order (a program's interrupt message uses it to
    say truthfully whether a complete output was left)."""
    return list(_published)


def _owner_tag() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _dead_owner(name: str, prefix: str) -> bool:
    """Whether `name` (``<prefix><host>-<pid>[suffix]``) belongs to a process of this host that has ended."""
    host, _, tail = name[len(prefix):].rpartition("-")
    pid = tail.split(".", 1)[0]
    return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def recover(final: str | os.PathLike) -> None:
    """Tidy what killed runs left beside `final` (the module docstring's rules); never raises for it."""
    final = Path(final)
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        return
    partial, old = f".{final.name}.partial-", f".{final.name}.old-"
    try:
        siblings = sorted(parent.iterdir())
    except OSError:
        return
    for entry in siblings:
        if entry.name.startswith(partial) and _dead_owner(entry.name, partial):
            _remove(entry)
        elif entry.name.startswith(old) and _dead_owner(entry.name, old):
            if final.exists():
                _remove(entry)
            else:
                with contextlib.suppress(OSError):
                    os.rename(entry, final)


def _writable_ancestor(path: Path) -> Path:
    existing = path.parent if str(path.parent) else Path(".")
    while not existing.exists():
        existing = existing.parent
    return existing


def check_output(path: str | os.PathLike, *, folder: bool, overwrite: bool = False,
                 overwrite_hint: str = "overwrite=True") -> Path:
    """Check, before any work, that a run may write `path`; creates nothing.

    Args:
        path: the output folder (folder=True) or file (folder=False).
        folder: which of the two it is.
        overwrite: whether an existing output may be replaced (whole).
        overwrite_hint: how the caller's user asks for that (the CLI passes "--overwrite").

    Returns:
        `path` as a Path.

    Raises:
        OutputExistsError: it exists (a non-empty folder, or a file) and overwrite is False.
        InputError: it is the wrong kind (a file for a folder, or the reverse), the folder to hold it
            cannot be written, or a non-empty folder to replace holds no vidcorr run.
    """
    path = Path(path)
    kind = "output folder" if folder else "output file"
    recover(path)
    if path.exists() or path.is_symlink():
        if folder and not path.is_dir():
            raise InputError(f"{kind} {str(path)!r} is a file")
        if not folder and path.is_dir():
            raise InputError(f"{kind} {str(path)!r} is a folder")
        if folder and not any(path.iterdir()):
            pass  # an empty folder holds no earlier run: it is simply used
        elif not overwrite:
            raise OutputExistsError(f"{kind} {str(path)!r} already exists; pass {overwrite_hint} to replace it")
        elif folder and not RUN_ENTRIES & {p.name for p in path.iterdir()}:
            raise InputError(f"{kind} {str(path)!r} holds no vidcorr output (none of tracks.json, matches.json, "
                             "keyframes/, ...): refusing to replace it; choose another folder")
    holder = _writable_ancestor(path)
    if not holder.is_dir() or not os.access(holder, os.W_OK | os.X_OK):
        raise InputError(f"{kind} {str(path)!r} is not writable")
    return path


def write_error(exc: OSError, staged: Path, final: Path) -> OutputWriteError:
    """An OSError from writing under `staged` as one line naming the file by its final name under `final`.

    An error that names no file (numpy and zipfile raise some) names `final` itself.
    """
    shown = final
    if exc.filename is not None:
        shown = Path(os.fsdecode(exc.filename))
        with contextlib.suppress(ValueError):
            shown = final / shown.relative_to(staged)
    cause = exc.strerror or str(exc) or type(exc).__name__
    return OutputWriteError(f"cannot write {str(shown)!r}: {cause}")


@dataclass
class StagedFolder:
    """Where a run writes (`path`, hidden) and where its outputs will be (`final`)."""

    final: Path
    path: Path

    def final_name(self, written: str | os.PathLike) -> Path:
        """The path a file written under `path` will have once the run is in place."""
        try:
            return self.final / Path(written).relative_to(self.path)
        except ValueError:
            return Path(written)


@contextlib.contextmanager
def staged_folder(final: str | os.PathLike, *, overwrite: bool = False,
                  overwrite_hint: str = "overwrite=True") -> Iterator[StagedFolder]:
    """Yield a hidden staging folder; when the block succeeds, make it `final` in one step.

    The module docstring gives what can be seen at each step. `check_output` runs first (again), so
    the rules hold even if the folder appeared since the caller checked. On any exception the
    staging folder is deleted; an OSError while writing becomes an `OutputWriteError` naming the
    file by its final name.
    """
    final = check_output(final, folder=True, overwrite=overwrite, overwrite_hint=overwrite_hint)
    parent = final.parent if str(final.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = parent / f".{final.name}.partial-{_owner_tag()}"
        staging.mkdir()
    except OSError as exc:
        raise InputError(f"cannot create output folder {str(final)!r}: {exc.strerror or exc}") from None
    staged = StagedFolder(final=final, path=staging)
    try:
        try:
            yield staged
        except OSError as exc:
            raise write_error(exc, staging, final) from exc
        _publish(staging, final, overwrite, overwrite_hint)
    except BaseException:
        _remove(staging)
        raise


def _publish(staging: Path, final: Path, overwrite: bool, overwrite_hint: str) -> None:
    try:
        os.rename(staging, final)  # also replaces an empty folder, atomically
        _published.append(final)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise write_error(exc, staging, final) from exc
    if not overwrite:  # the folder filled up while this run worked
        raise OutputExistsError(f"output folder {str(final)!r} already exists; pass {overwrite_hint} to replace it")
    aside = final.parent / f".{final.name}.old-{_owner_tag()}"
    os.rename(final, aside)
    try:
        os.rename(staging, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rename(aside, final)
        raise
    _published.append(final)
    _remove(aside)


@contextlib.contextmanager
def staged_file(final: str | os.PathLike, *, overwrite: bool = False,
                overwrite_hint: str = "overwrite=True") -> Iterator[Path]:
    """Yield a hidden sibling path to write one output file to; put it at `final` when the block succeeds.

    The staged name keeps `final`'s suffix (writers choose the format by it). `os.replace` puts it in
    place in one step, replacing an earlier file only when overwrite is True. On any exception the
    staged file is deleted; an OSError while writing becomes an `OutputWriteError` naming `final`.
    """
    final = check_output(final, folder=False, overwrite=overwrite, overwrite_hint=overwrite_hint)
    parent = final.parent if str(final.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create folder {str(parent)!r} for {str(final)!r}: {exc.strerror or exc}") from None
    staged = parent / f".{final.name}.partial-{_owner_tag()}{final.suffix}"
    try:
        try:
            yield staged
            if not staged.exists():
                raise OutputWriteError(f"cannot write {str(final)!r}: the writer produced no file")
            if final.exists() and not overwrite:
                raise OutputExistsError(f"output file {str(final)!r} already exists; pass {overwrite_hint} to "
                                        "replace it")
            os.replace(staged, final)
            _published.append(final)
        except OSError as exc:
            raise write_error(exc, staged, final) from exc
    except BaseException:
        _remove(staged)
        raise


def verify_written_video(path: str | os.PathLike, frames_written: int) -> None:
    """Read back a video just written: it must open and hold `frames_written` frames, the last one decodable.

    OpenCV's VideoWriter reports no write error (a full disk leaves a short or unreadable file), so
    this is what stands between such a file and its final name.

    Raises:
        OSError: EIO naming `path` (`staged_folder` and `staged_file` report it by its final name).
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise OSError(errno.EIO, "the video encoder wrote nothing (is the disk full?)", str(path))
    with quiet_native_stderr():
        capture = cv2.VideoCapture(str(path))
        try:
            count = int(round(capture.get(cv2.CAP_PROP_FRAME_COUNT))) if capture.isOpened() else 0
            last_ok = False
            if count == frames_written and count > 0:
                capture.set(cv2.CAP_PROP_POS_FRAMES, count - 1)
                last_ok = capture.grab()
            if capture.isOpened() and not last_ok:
                # Some containers only estimate the count (or seeking missed): count by decoding.
                capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                count = 0
                while capture.grab():
                    count += 1
                last_ok = count == frames_written
        finally:
            capture.release()
    if count != frames_written or not last_ok:
        found = "cannot be read back" if count == 0 else f"holds {count} readable frames of {frames_written}"
        raise OSError(errno.EIO, f"the encoded video {found} (is the disk full?)", str(path))
