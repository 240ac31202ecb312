"""One benchmark image pair, and what every pair-benchmark reader (SPair-71k, PF-Willow, CUB) shares.

Conventions, stated once for the readers in ``spair.py``, ``pfwillow.py`` and ``cub.py``:

- Coordinates are (x, y) in the ORIGINAL image's pixels, exactly as the annotation files give them: no
  half-pixel shift, no resizing. (The official SPair devkit and the seed compare against these values as
  they are; the PCK module maps them into other spaces where a protocol asks for it.)
- ``src_kps[i]`` and ``trg_kps[i]`` are the same semantic keypoint. Readers drop padding (-1 entries,
  non-finite values) and keypoints not annotated in both images, so every row is a valid correspondence.
- Every reader (registered in ``readers.py``) takes the same filters and returns pairs in a deterministic order (the
  order of the benchmark's own list), so a position in that list names a pair on every machine.
- Missing or malformed files raise :class:`vidcorr.errors.DataError` naming the file; bad arguments
  (an unknown category or pair id, a negative limit) raise :class:`vidcorr.errors.InputError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from vidcorr.errors import DataError, InputError

BENCHMARKS: tuple[str, ...] = ("spair", "pfwillow", "cub")
"""Image-pair benchmarks with a reader: the module ``vidcorr.eval.<name>`` exposes ``read_pairs``."""

BBox = tuple[float, float, float, float]
"""(x1, y1, x2, y2) corners in original image pixels."""


def _as_kps(points: object, name: str) -> np.ndarray:
    """A read-only float64 (K, 2) copy of `points`."""
    array = np.array(points, dtype=np.float64)
    if array.size == 0:
        array = np.zeros((0, 2))
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"{name} must have shape (K, 2), got {array.shape}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Pair:
    """One source/target pair of a benchmark, with its ground-truth correspondences.

    Attributes:
        dataset: which benchmark it comes from, one of :data:`BENCHMARKS`; the PCK module reads it to pick
            the threshold rule and the seed's image space.
        pair_id: unique within the benchmark and stable across runs (results files key on it).
        category: the benchmark's class name (SPair ``aeroplane``, PF-Willow ``car(G)``, CUB
            ``001.Black_footed_Albatross``).
        src_path, trg_path: image files.
        src_size, trg_size: (W, H) in pixels of the original images.
        src_kps, trg_kps: float64 (K, 2) x, y in original pixels of each image; row i of one corresponds
            to row i of the other; read-only arrays.
        src_bbox, trg_bbox: (x1, y1, x2, y2) object box in original pixels, or None where the benchmark
            has none (PF-Willow).
        flags: per-pair difficulty levels (SPair: ``viewpoint_variation``, ``scale_variation``,
            ``truncation``, ``occlusion``); empty for the other benchmarks.
        kps_ids: the benchmark's keypoint (part) id of each row, as strings, or None where it has none.
    """

    dataset: str
    pair_id: str
    category: str
    src_path: Path
    trg_path: Path
    src_size: tuple[int, int]
    trg_size: tuple[int, int]
    src_kps: np.ndarray
    trg_kps: np.ndarray
    src_bbox: BBox | None = None
    trg_bbox: BBox | None = None
    flags: Mapping[str, int] = field(default_factory=dict)
    kps_ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        src_kps = _as_kps(self.src_kps, "src_kps")
        trg_kps = _as_kps(self.trg_kps, "trg_kps")
        if src_kps.shape != trg_kps.shape:
            raise ValueError(f"src_kps {src_kps.shape} and trg_kps {trg_kps.shape} differ in shape")
        if self.kps_ids is not None and len(self.kps_ids) != len(src_kps):
            raise ValueError(f"kps_ids has {len(self.kps_ids)} entries for {len(src_kps)} keypoints")
        object.__setattr__(self, "src_kps", src_kps)
        object.__setattr__(self, "trg_kps", trg_kps)
        object.__setattr__(self, "src_path", Path(self.src_path))
        object.__setattr__(self, "trg_path", Path(self.trg_path))
        object.__setattr__(self, "src_size", (int(self.src_size[0]), int(self.src_size[1])))
        object.__setattr__(self, "trg_size", (int(self.trg_size[0]), int(self.trg_size[1])))
        for name in ("src_bbox", "trg_bbox"):
            box = getattr(self, name)
            if box is not None:
                if len(box) != 4:
                    raise ValueError(f"{name} must be (x1, y1, x2, y2), got {box!r}")
                object.__setattr__(self, name, tuple(float(v) for v in box))
        object.__setattr__(self, "flags", {str(k): int(v) for k, v in self.flags.items()})
        if self.kps_ids is not None:
            object.__setattr__(self, "kps_ids", tuple(str(k) for k in self.kps_ids))

    @property
    def num_keypoints(self) -> int:
        """K, the number of ground-truth correspondences."""
        return int(self.src_kps.shape[0])


@dataclass(frozen=True)
class Prediction:
    """What a predictor says about one pair.

    Attributes:
        trg_xy: float64 (K, 2) predicted x, y in the target image's original pixels, row k for source
            keypoint k.
        confidence: float32 (K,) in [0, 1], or None where the predictor has none.
        src_maps, trg_maps: float32 (K, L, S, S) restart-averaged attention maps per layer on the source
            and the target (``Location.maps``, torch tensors), or None; only asked for when visualizing.
        layers: the seed's numbers of the L layers of the maps.
        precision: how the fit computed (``vidcorr.fit.precision_name``), or None.
        skipped_steps: int64 (K,) fit steps each keypoint skipped for a non-finite gradient, or None.
    """

    trg_xy: np.ndarray
    confidence: np.ndarray | None = None
    src_maps: Any = None
    trg_maps: Any = None
    layers: tuple[int, ...] = ()
    precision: str | None = None
    skipped_steps: np.ndarray | None = None


def select_indices(
    keys: Sequence[tuple[str, str]],
    *,
    categories: Sequence[str] | None = None,
    pair_ids: Sequence[str] | None = None,
    limit: int | None = None,
    category_aliases: Mapping[str, str] | None = None,
) -> list[int]:
    """Positions of the (pair_id, category) `keys` that pass the filters, in order.

    Readers call this on their pair list before opening per-pair files, so a filtered run reads only
    what it needs. `category_aliases` maps extra accepted spellings to category names (CUB accepts a
    class name without its ``001.`` prefix).

    Raises:
        InputError: an unknown category or pair id, or a negative limit.
    """
    if limit is not None and limit < 0:
        raise InputError(f"limit must be >= 0, got {limit}")
    indices = list(range(len(keys)))
    if categories is not None:
        known = {category for _, category in keys}
        aliases = dict(category_aliases or {})
        wanted = set()
        for name in categories:
            resolved = name if name in known else aliases.get(name)
            if resolved is None or resolved not in known:
                choices = ", ".join(sorted(known))
                raise InputError(f"unknown category {name!r}; this split has: {choices}")
            wanted.add(resolved)
        indices = [i for i in indices if keys[i][1] in wanted]
    if pair_ids is not None:
        known_ids = {pair_id for pair_id, _ in keys}
        missing = [p for p in pair_ids if p not in known_ids]
        if missing:
            shown = ", ".join(repr(p) for p in missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise InputError(f"{len(missing)} pair id(s) not in this split: {shown}")
        wanted_ids = set(pair_ids)
        indices = [i for i in indices if keys[i][0] in wanted_ids]
    if limit is not None:
        indices = indices[:limit]
    return indices


def resolve_root(data_root: str | Path, marker: str, subdirs: Iterable[str]) -> Path:
    """The benchmark folder: `data_root` itself if it holds `marker`, else the first of `subdirs` that does.

    This accepts both the benchmark's own folder and its parent (e.g. ``Datasets_CATs/`` holding
    ``SPair-71k/``), the two layouts the public evaluation code uses.

    Raises:
        DataError: `data_root` does not exist, or neither it nor a known sub-folder holds `marker`.
    """
    root = Path(data_root)
    if not root.is_dir():
        raise DataError(f"{root}: data root does not exist or is not a folder")
    candidates = [root] + [root / sub for sub in subdirs]
    for candidate in candidates:
        if (candidate / marker).exists():
            return candidate
    tried = " or ".join(str(c / marker) for c in candidates)
    raise DataError(f"{root}: not a benchmark folder: expected {tried}")


def image_size(path: Path) -> tuple[int, int]:
    """(W, H) of an image file, read from its header only.

    Raises:
        DataError: the file is missing or not a readable image.
    """
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc.__class__.__name__})") from None
    return int(width), int(height)


def valid_rows(src_kps: np.ndarray, trg_kps: np.ndarray) -> np.ndarray:
    """bool (K,): rows where both keypoints are finite and not padding (any coordinate < 0)."""
    def ok(kps: np.ndarray) -> np.ndarray:
        return np.isfinite(kps).all(axis=1) & (kps >= 0).all(axis=1)

    return ok(src_kps) & ok(trg_kps)


def parse_float(text: str, where: str, what: str) -> float:
    """`text` as a float, or a DataError naming `where` (a file, or file:line) and `what` was expected."""
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: expected {what}, got {text!r}") from None
    if math.isnan(value):
        raise DataError(f"{where}: expected {what}, got {text!r}")
    return value
