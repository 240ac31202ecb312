"""Output folders of the pipelines: checked before any work, created just before the first write.

Every file a pipeline (``vidcorr.pipelines``) writes goes through one :class:`OutputFolder`, which stages it
(``vidcorr.staging``): the folder holds one whole run, or nothing new.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from vidcorr.errors import InputError
from vidcorr.io.staging import StagedFolder, check_output, staged_folder


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


class OutputFolder:
    """A pipeline's output folder, complete or absent (see :mod:`vidcorr.staging`).

    Made with the folder's path, checked at once (:func:`vidcorr.staging.check_output`: an existing run there is
    refused unless `overwrite`). Inside :meth:`writing` every file goes to a hidden staging folder (``self.path``
    there, ``self / name`` for a file), which becomes the folder whole when the block ends, or is deleted if it
    raises. :meth:`add` records each file written, by its final name, for the pipeline's result.
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False,
                 overwrite_hint: str = "overwrite=True") -> None:
        self.overwrite, self.overwrite_hint = overwrite, overwrite_hint
        self.final = check_output(path, folder=True, overwrite=overwrite, overwrite_hint=overwrite_hint)
        self.path = self.final
        self.written: list[Path] = []
        self._staged: StagedFolder | None = None

    @contextlib.contextmanager
    def writing(self) -> Iterator[OutputFolder]:
        """Write the run's files under the block: they appear in the folder together, when the block ends."""
        with staged_folder(self.final, overwrite=self.overwrite, overwrite_hint=self.overwrite_hint) as staged:
            self._staged, self.path = staged, staged.path
            try:
                yield self
            finally:
                self._staged, self.path = None, self.final

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def add(self, path: str | os.PathLike) -> Path:
        """Record that `path` was written; returns its final name."""
        final = self._staged.final_name(path) if self._staged is not None else Path(path)
        self.written.append(final)
        return final
