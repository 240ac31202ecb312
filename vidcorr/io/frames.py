"""A folder of JPEG/PNG frames read as a video: natural order, streamed, one size for all frames.

`vidcorr.video.open_video` returns a `FrameFolderReader` for a folder, so every command that takes a
video takes a folder of frames too. A DAVIS sequence (``JPEGImages/480p/<seq>/00000.jpg``) is such a
folder as it is.

- Order: natural, by the numbers in the names (``frame_9.png`` before ``frame_10.png``), whatever
  their zero-padding; names that differ only in padding are ordered by their text.
- Files: every entry must be a .jpg, .jpeg or .png file; names starting with ``.`` are skipped
  (``.DS_Store`` and the like). Anything else is an error, not silently skipped, so a stray file
  never becomes a frame or hides a missing one.
- Size: every frame's header is read when the folder is opened (no pixels are decoded), so a
  frame of another size is an error up front, not in the middle of a run.
- Orientation: EXIF orientation is applied, as `vidcorr.io.images.read_image` and video players do.
- Depth: 16-bit PNGs are scaled to 8 bits (the high byte of each value, `vidcorr.io.images.rgb8`).
- Links: a link to a frame is read as the frame; a broken link is an error that says so.
- Frame rate: a folder has none; it is given (``fps``, default 30) and recorded in the outputs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vidcorr.errors import InputError
from vidcorr.io.images import rgb8
from vidcorr.io.reader import VideoInfo, VideoReader
from vidcorr.io.reader import check_fps as check_fps

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_FOLDER_FPS = 30.0
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key for natural order: digit runs compare as numbers ("f9" < "f10"), text case-blind.

    Ties (names equal but for zero-padding or case) are broken by the name itself, so the order is total.
    """
    parts = _DIGITS.split(name)
    return (tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)), name)


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """The frame files of `folder` in natural order.

    Raises:
        InputError: the folder does not exist, holds something that is not a .jpg/.jpeg/.png file
            (a folder of sequences gets its own message), or holds no frame.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"frame folder {str(folder)!r} does not exist")
    frames, subfolders = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: natural_key(e.name)):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            subfolders.append(entry.name)
        elif entry.is_file() and Path(entry.name).suffix.lower() in FRAME_SUFFIXES:
            frames.append(Path(entry.path))
        elif entry.is_symlink() and not os.path.exists(entry.path):
            raise InputError(f"frame folder {str(folder)!r} holds {entry.name!r}, a broken link (to "
                             f"{os.readlink(entry.path)!r}, which does not exist)")
        else:
            raise InputError(
                f"frame folder {str(folder)!r} holds {entry.name!r}, which is not a frame: "
                f"a frame folder holds only {', '.join(FRAME_SUFFIXES)} files"
            )
    if subfolders:
        if frames:
            raise InputError(
                f"frame folder {str(folder)!r} holds the folder {subfolders[0]!r}: "
                f"a frame folder holds only {', '.join(FRAME_SUFFIXES)} files"
            )
        raise InputError(
            f"frame folder {str(folder)!r} holds folders, not frames: give one of them "
            f"(e.g. {str(folder / subfolders[0])!r})"
        )
    if not frames:
        raise InputError(f"frame folder {str(folder)!r} has no frames ({', '.join(FRAME_SUFFIXES)} files)")
    return frames


class FrameFolderReader(VideoReader):
    """A folder of JPEG/PNG frames as a `VideoReader` (see the module docstring for the rules).

    Memory stays flat: only the frames of the batch being read are decoded.

    Attributes:
        paths: the frame files, in frame order (frame t is ``paths[t]``).
    """

    backend = "frames"

    def __init__(self, folder: str | os.PathLike, fps: float = DEFAULT_FOLDER_FPS) -> None:
        folder = Path(folder)
        self.name = str(folder)
        fps_f = check_fps(fps)
        self.paths = list_frames(folder)
        first_size = self._header_size(self.paths[0])
        for path in self.paths[1:]:
            size = self._header_size(path)
            if size != first_size:
                raise InputError(
                    f"frame {path.name!r} is {size[0]}x{size[1]} but frame {self.paths[0].name!r} is "
                    f"{first_size[0]}x{first_size[1]}: all frames of {self.name!r} must have one size"
                )
        self.info = VideoInfo(num_frames=len(self.paths), fps=fps_f, width=first_size[0], height=first_size[1])

    @property
    def frame_names(self) -> list[str]:
        """File names in frame order."""
        return [p.name for p in self.paths]

    def _header_size(self, path: Path) -> tuple[int, int]:
        """(W, H) as displayed, from the file's header only."""
        try:
            with Image.open(path) as img:
                width, height = img.size
                orientation = img.getexif().get(_EXIF_ORIENTATION)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise InputError(f"cannot read frame {path.name!r} of {self.name!r}: not a JPEG/PNG image") from None
        return (height, width) if orientation in _TRANSPOSED_ORIENTATIONS else (width, height)

    def _read_batch(self, indices: np.ndarray) -> np.ndarray:
        h, w = self.info.height, self.info.width
        out = np.empty((len(indices), h, w, 3), dtype=np.uint8)
        for i, t in enumerate(indices.tolist()):
            try:
                with Image.open(self.paths[t]) as img:
                    frame = rgb8(ImageOps.exif_transpose(img))
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
                raise self._frame_error(t, "the file is truncated or corrupt") from None
            if frame.shape != (h, w, 3):  # the file changed since the folder was opened
                raise self._frame_error(t, f"it is now {frame.shape[1]}x{frame.shape[0]}, not {w}x{h}")
            out[i] = frame
        return out

    def _frame_error(self, t: int, why: str) -> InputError:
        return InputError(f"cannot decode frame {t} ({self.paths[t].name!r}) of {self.name!r}: {why}")
