"""Output folders of the pipelines: checked before any work, created just before the first write.

Every file a pipeline (``vidcorr.pipelines``) writes goes through one :class:`OutputFolder`, so how an output
is made complete-or-absent is decided in this one place.
"""

from __future__ import annotations

import os
from pathlib import Path

from vidcorr.errors import InputError


def check_out_dir(out: str | os.PathLike) -> Path:
    """Fail early (before any model work) if `out` could not be created or written; create nothing.

    Raises:
        InputError: `out` is a file, or its nearest existing parent is not a writable folder.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder {str(out)!r} is a file")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"output folder {str(out)!r} is not writable")
    return out


def prepare_out_dir(out: str | os.PathLike) -> Path:
    """Create `out` (and parents) just before writing.

    Raises:
        InputError: it cannot be made, or is not writable (one line quoting the folder).
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {str(out)!r}: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise InputError(f"output folder {str(out)!r} is not writable")
    return out


class OutputFolder:
    """A pipeline's output folder.

    Made with the folder's path (checked at once, see :func:`check_out_dir`); :meth:`create` makes it just
    before the first file; :meth:`add` records each file written, in order, for the pipeline's result.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = check_out_dir(path)
        self.written: list[Path] = []

    def create(self) -> Path:
        """Make the folder (see :func:`prepare_out_dir`); returns its path."""
        return prepare_out_dir(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def add(self, path: str | os.PathLike) -> Path:
        """Record that `path` was written; returns it."""
        self.written.append(Path(path))
        return Path(path)
