"""Write files so that a killed run never leaves a complete-looking output behind."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def partial_path(path: Path) -> Path:
    """The temporary name a file is written under before it is renamed into place."""
    return path.with_name(f".{path.name}.partial{path.suffix}")


def _umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but nothing here races it)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives a new file: 0o666 minus the umask."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.

    The temporary keeps `path`'s suffix so that writers that choose a format by extension
    (OpenCV, PIL, numpy) still do so. The file gets the mode a plain ``open()`` would give it
    (some writers, safetensors among them, create 0600 temporaries), so every output has the same
    mode. On any exception (KeyboardInterrupt included) the temporary is removed and `path` is left
    as it was; an OSError names `path`, not the temporary.
    """
    final = Path(path)
    tmp = partial_path(final)
    try:
        try:
            yield tmp
            os.chmod(tmp, default_file_mode())
            os.replace(tmp, final)
        except OSError as exc:
            if exc.filename is None or Path(os.fsdecode(exc.filename)) == tmp:
                raise OSError(exc.errno, exc.strerror or str(exc), str(final)) from exc
            raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` through a temporary private to this process, then a rename.

    Several processes (the shards of a run) may write the same file at once: each renames its own
    complete copy into place, so a reader never sees a mix or a half.
    """
    final = Path(path)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return final


def write_json(path: str | os.PathLike, data: Any, *, indent: int = 2, sort_keys: bool = False,
               allow_nan: bool = True) -> Path:
    """Write `data` as indented JSON with a final newline, atomically (see :func:`write_text`)."""
    return write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan) + "\n")
