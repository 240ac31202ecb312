"""JHMDB on disk: split 1's test videos, their frames and their joints, as CRW's and tapnet's evaluations read them.

The layout (the publisher's archives extracted into one folder, ``<data-root>`` or ``<data-root>/JHMDB``)::

    Rename_Images/<action>/<video>/00001.png ...      frames, 320x240, 1-based names
    joint_positions/<action>/<video>/joint_positions.mat   key ``pos_img``: 2 x 15 x T, MATLAB 1-based pixels
    splits/<action>_test_split1.txt                    lines ``<video>.avi 1|2`` (2 = test)

Split 1's test lines give 268 videos over the 21 actions. Videos are ordered by action (the split files' names,
sorted), then as their split file lists them; a video is named ``<action>/<video>``.

Joints are annotated even when occluded or outside the frame; there is no visibility. A clip is cut to the
frames that have both an image and joints (``min`` of the two counts): two test clips have broken trailing
frames (``The_Slow_Clap_clap_u_cm_np1_fr_med_4`` keeps 27 frames, ``The_Slow_Clap_clap_u_nm_np1_fr_bad_20``
18). The frames are the consecutive ``%05d.png`` files from ``00001.png``.

Coordinates: ``pos_img`` holds MATLAB's 1-based pixel indices, where (1, 1) is the top-left pixel. vidcorr's
coordinates put that pixel's centre at (0.5, 0.5), so ``vidcorr_xy = pos_img - 0.5``
(:func:`matlab_to_pixel_centres`). CRW subtracts 1 (0-based pixel indices, centres at integers): distances,
and so PCK, are the same either way. tapnet takes the stored values as they are (see ``vidcorr.eval.jhmdb.pck``).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidcorr.errors import DataError, InputError

FRAMES_DIR = "Rename_Images"
JOINTS_DIR = "joint_positions"
SPLITS_DIR = "splits"
JOINTS_FILE = "joint_positions.mat"
JOINTS_KEY = "pos_img"
SPLIT = 1
TEST = 2
SUBFOLDER = "JHMDB"
"""Where ``--download`` puts the three folders under the data root."""

JOINTS: tuple[str, ...] = (
    "neck", "belly", "face", "right shoulder", "left shoulder", "right hip", "left hip", "right elbow",
    "left elbow", "right knee", "left knee", "right wrist", "left wrist", "right ankle", "left ankle",
)
"""The 15 joints of ``pos_img``, in its order (JHMDB's README_joint_positions)."""
NUM_JOINTS = len(JOINTS)
FULL_TEST_VIDEOS = 268
"""Split 1's test videos."""


def matlab_to_pixel_centres(xy_matlab: np.ndarray) -> np.ndarray:
    """MATLAB's 1-based pixel indices -> vidcorr's coordinates (pixel centres at +0.5): ``xy - 0.5``.

    MATLAB (1, 1), the top-left pixel, becomes (0.5, 0.5), that pixel's centre.
    """
    return np.asarray(xy_matlab, dtype=np.float64) - 0.5


@dataclass(frozen=True)
class JhmdbVideo:
    """One test video, cut to the frames that have both an image and joints.

    Attributes:
        name: ``<action>/<video>``.
        action: the action class.
        frames: T uint8 (H, W, 3) RGB frames.
        joints_matlab: float64 (T, 15, 2) x, y as stored in ``pos_img`` (MATLAB 1-based pixels).
        source_frames: PNG frames on disk; joint_frames: T of ``pos_img`` (T = the smaller).
    """

    name: str
    action: str
    frames: tuple[np.ndarray, ...]
    joints_matlab: np.ndarray
    source_frames: int
    joint_frames: int

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def size_wh(self) -> tuple[int, int]:
        height, width = self.frames[0].shape[:2]
        return int(width), int(height)

    @property
    def joints_xy(self) -> np.ndarray:
        """float64 (T, 15, 2) in vidcorr's pixel coordinates (:func:`matlab_to_pixel_centres`)."""
        return matlab_to_pixel_centres(self.joints_matlab)


def resolve_root(data_root: str | os.PathLike) -> Path:
    """The folder holding ``splits/``, ``Rename_Images/`` and ``joint_positions/``: `data_root` or its ``JHMDB/``.

    Raises:
        DataError: neither holds them (the message gives the layout).
    """
    root = Path(data_root)
    for candidate in (root, root / SUBFOLDER):
        if all((candidate / name).is_dir() for name in (SPLITS_DIR, FRAMES_DIR, JOINTS_DIR)):
            return candidate
    if not root.exists():
        raise DataError(f"{root}: JHMDB folder not found")
    raise DataError(f"{root}: expected JHMDB's {SPLITS_DIR}/, {FRAMES_DIR}/ and {JOINTS_DIR}/ here or in "
                    f"{root / SUBFOLDER} (extract splits.zip, Rename_Images.tar.gz and joint_positions.zip; "
                    "or add --download)")


def read_split(root: Path, split: int = SPLIT) -> list[tuple[str, str]]:
    """(action, video) of every test video of `split`, by action (sorted), then in the split file's order.

    Raises:
        DataError: no split file, or a line that is not ``<video>.avi <1|2>``.
    """
    files = sorted((root / SPLITS_DIR).glob(f"*_test_split{split}.txt"))
    if not files:
        raise DataError(f"{root / SPLITS_DIR}: no *_test_split{split}.txt files")
    videos = []
    for path in files:
        action = path.name[: -len(f"_test_split{split}.txt")]
        for line_no, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in ("1", "2"):
                raise DataError(f"{path}:{line_no}: expected '<video>.avi 1|2', got {line.strip()!r}")
            if int(fields[1]) == TEST:
                videos.append((action, os.path.splitext(fields[0])[0]))
    return videos


def load_joints(path: Path) -> np.ndarray:
    """``pos_img`` of a ``joint_positions.mat`` as float64 (T, 15, 2) x, y (MATLAB 1-based pixels).

    Raises:
        DataError: a missing or unreadable file, no ``pos_img``, or not 2 x 15 x T.
    """
    # scipy only here: reading .mat files is all vidcorr needs it for
    from scipy.io import loadmat

    if not path.is_file():
        raise DataError(f"{path}: joints file not found")
    try:
        mat = loadmat(str(path))
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise DataError(f"{path}: not a readable .mat file ({exc})") from None
    if JOINTS_KEY not in mat:
        raise DataError(f"{path}: no '{JOINTS_KEY}' in this .mat file")
    pos = np.asarray(mat[JOINTS_KEY], dtype=np.float64)
    if pos.ndim == 2 and pos.shape == (2, NUM_JOINTS):
        pos = pos[:, :, None]  # a one-frame clip: MATLAB drops the trailing singleton dimension
    if pos.ndim != 3 or pos.shape[:2] != (2, NUM_JOINTS) or pos.shape[2] == 0:
        raise DataError(f"{path}: '{JOINTS_KEY}' must be 2 x {NUM_JOINTS} x T, got {' x '.join(map(str, pos.shape))}")
    return pos.transpose(2, 1, 0).copy()


def count_frames(folder: Path) -> int:
    """How many consecutive ``%05d.png`` frames the folder holds, from ``00001.png``."""
    count = 0
    while (folder / f"{count + 1:05d}.png").is_file():
        count += 1
    return count


def _read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_video(root: Path, action: str, video: str) -> JhmdbVideo:
    """One video, its frames decoded and cut to the frames that have joints too.

    Raises:
        DataError: no frames, no joints, an unreadable frame or frames of different sizes.
    """
    folder = root / FRAMES_DIR / action / video
    source_frames = count_frames(folder)
    if source_frames == 0:
        raise DataError(f"{folder}: no frames (00001.png, ...)")
    joints = load_joints(root / JOINTS_DIR / action / video / JOINTS_FILE)
    keep = min(source_frames, len(joints))
    frames = tuple(_read_png(folder / f"{t + 1:05d}.png") for t in range(keep))
    if any(f.shape != frames[0].shape for f in frames):
        raise DataError(f"{folder}: frames of different sizes")
    return JhmdbVideo(f"{action}/{video}", action, frames, joints[:keep], source_frames, len(joints))


@dataclass(frozen=True)
class JhmdbSource:
    """JHMDB on disk and which of split 1's test videos to evaluate.

    Attributes:
        root: the folder holding ``splits/`` etc. (see :func:`resolve_root`).
        videos: names (``<action>/<video>`` or ``<video>``) or shell patterns to keep (empty: all).
        actions: actions to keep (empty: all).
        limit: only the first N videos (after `actions` and `videos`), in the benchmark's order.
    """

    root: Path
    videos: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    limit: int | None = None

    def names(self) -> list[str]:
        """``<action>/<video>`` of the selected videos, in order, from the split files alone (no frame read).

        Raises:
            InputError: ``limit`` < 1, an unknown action, or a name or pattern matching no video.
        """
        if self.limit is not None and self.limit < 1:
            raise InputError(f"--limit must be a positive number of videos, got {self.limit}")
        listed = read_split(self.root)
        known = sorted({action for action, _ in listed})
        unknown = [a for a in self.actions if a not in known]
        if unknown:
            raise InputError(f"unknown JHMDB action {unknown[0]!r}; expected one of {', '.join(known)}")
        names: list[str] = []
        unmatched = set(self.videos)
        for action, video in listed:
            if self.actions and action not in self.actions:
                continue
            name = f"{action}/{video}"
            hits = {p for p in self.videos if fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(video, p)}
            if self.videos and not hits:
                continue
            unmatched -= hits
            names.append(name)
        if unmatched:
            raise InputError(f"no JHMDB test video matches {', '.join(sorted(unmatched))}")
        return names[: self.limit] if self.limit is not None else names

    def read(self, wanted: Collection[str] | None = None, names: Sequence[str] | None = None
             ) -> Iterator[JhmdbVideo]:
        """The videos of `names` (default :meth:`names`) that are in `wanted` (default all), decoded one at a
        time."""
        for name in self.names() if names is None else names:
            if wanted is None or name in wanted:
                action, video = name.split("/", 1)
                yield read_video(self.root, action, video)
