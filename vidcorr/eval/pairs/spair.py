"""SPair-71k reader (Min et al. 2019), the layout of the official release.

On disk::

    <root>/Layout/large/{trn,val,test}.txt    one pair a line: ``000001-2008_002719-2008_004100:aeroplane``
    <root>/PairAnnotation/{trn,val,test}/<line>.json
    <root>/JPEGImages/<category>/<imname>

The annotation file of a pair is the whole layout line plus ``.json`` (the colon and category included),
which is how the public readers open it (juhongm999/hpf ``data/spair.py`` and its CATs descendant glob
``<PairAnnotation>/<split>/<line>.json``). The pair JSON holds ``pair_id``, ``src_imname``/``trg_imname``
(file names with ``.jpg``), ``src_imsize``/``trg_imsize`` ([W, H, C]), ``src_bndbox``/``trg_bndbox``
([x1, y1, x2, y2]), ``src_kps``/``trg_kps`` (lists of [x, y], only the keypoints visible in both images,
row-aligned), ``kps_ids``, ``category``, ``mirror`` and the difficulty levels ``viewpoint_variation``,
``scale_variation``, ``truncation`` and ``occlusion``.

``Pair.pair_id`` is the layout line (unique across categories); image sizes come from the JSON (the
images are not opened, only checked to exist). ``<root>`` may also be a folder holding ``SPair-71k/``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidcorr.errors import DataError, InputError
from vidcorr.eval.pairs.pair import BBox, Pair, resolve_root, select_indices, valid_rows

SPLITS: tuple[str, ...] = ("trn", "val", "test")
FLAG_NAMES: tuple[str, ...] = ("viewpoint_variation", "scale_variation", "truncation", "occlusion")
"""Per-pair difficulty levels: viewpoint and scale variation 0..2, truncation and occlusion 0..3."""

_SPLIT_ALIASES = {"train": "trn"}


def layout_path(root: Path, split: str) -> Path:
    """The pair list of `split` (``Layout/large/<split>.txt``)."""
    return root / "Layout" / "large" / f"{split}.txt"


def read_layout(path: Path) -> list[tuple[str, str]]:
    """(pair_id, category) of every line of a layout file, in file order; blank lines are skipped.

    Raises:
        DataError: the file is missing, or a line is not ``<id>-<src>-<trg>:<category>``.
    """
    if not path.is_file():
        raise DataError(f"{path}: SPair layout file not found")
    keys = []
    for line_no, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        name, sep, category = line.rpartition(":")
        if not sep or not name or not category or name.count("-") < 2:
            raise DataError(f"{path}:{line_no}: expected '<id>-<src>-<trg>:<category>', got {line!r}")
        keys.append((line, category))
    return keys


def _field(ann: dict[str, Any], key: str, path: Path) -> Any:
    if key not in ann:
        raise DataError(f"{path}: expected key {key!r} in the pair annotation")
    return ann[key]


def _points(ann: dict[str, Any], key: str, path: Path) -> np.ndarray:
    value = _field(ann, key, path)
    try:
        points = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: expected {key} as a list of [x, y] numbers") from None
    if points.size == 0:
        return np.zeros((0, 2))
    if points.ndim != 2 or points.shape[1] != 2:
        raise DataError(f"{path}: expected {key} as a list of [x, y], got shape {points.shape}")
    return points


def _numbers(ann: dict[str, Any], key: str, count: int, path: Path, *, at_least: bool = False) -> list[float]:
    value = _field(ann, key, path)
    ok = isinstance(value, list) and (len(value) >= count if at_least else len(value) == count)
    if ok:
        try:
            return [float(v) for v in value]
        except (TypeError, ValueError):
            pass
    raise DataError(f"{path}: expected {key} as a list of {count} numbers, got {value!r}")


def _box(ann: dict[str, Any], key: str, path: Path) -> BBox:
    x1, y1, x2, y2 = _numbers(ann, key, 4, path)
    return (x1, y1, x2, y2)


def parse_pair_annotation(path: Path, pair_id: str, category: str, image_dir: Path) -> Pair:
    """Read one pair JSON into a :class:`Pair` (keypoints kept where both are valid).

    Raises:
        DataError: the file is missing, is not JSON, lacks a key, has a malformed value, disagrees with the
            layout's category, has no valid keypoint, or names an image that does not exist.
    """
    if not path.is_file():
        raise DataError(f"{path}: SPair pair annotation not found")
    try:
        ann = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(ann, dict):
        raise DataError(f"{path}: expected a JSON object")
    if str(_field(ann, "category", path)) != category:
        raise DataError(f"{path}: category {ann['category']!r} differs from the layout's {category!r}")
    src_kps = _points(ann, "src_kps", path)
    trg_kps = _points(ann, "trg_kps", path)
    if src_kps.shape != trg_kps.shape:
        raise DataError(f"{path}: src_kps has {len(src_kps)} points but trg_kps has {len(trg_kps)}")
    kps_ids = [str(k) for k in _field(ann, "kps_ids", path)]
    if len(kps_ids) != len(src_kps):
        raise DataError(f"{path}: kps_ids has {len(kps_ids)} entries for {len(src_kps)} keypoints")
    keep = valid_rows(src_kps, trg_kps)
    if not keep.any():
        raise DataError(f"{path}: expected at least one keypoint valid in both images")
    src_size = _numbers(ann, "src_imsize", 2, path, at_least=True)[:2]
    trg_size = _numbers(ann, "trg_imsize", 2, path, at_least=True)[:2]
    flags = {}
    for name in FLAG_NAMES:
        value = _field(ann, name, path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(f"{path}: expected {name} as an integer level, got {value!r}")
        flags[name] = value
    src_path = image_dir / category / str(_field(ann, "src_imname", path))
    trg_path = image_dir / category / str(_field(ann, "trg_imname", path))
    for image_path in (src_path, trg_path):
        if not image_path.is_file():
            raise DataError(f"{image_path}: image named by {path.name} not found")
    return Pair(
        dataset="spair",
        pair_id=pair_id,
        category=category,
        src_path=src_path,
        trg_path=trg_path,
        src_size=(int(src_size[0]), int(src_size[1])),
        trg_size=(int(trg_size[0]), int(trg_size[1])),
        src_kps=src_kps[keep],
        trg_kps=trg_kps[keep],
        src_bbox=_box(ann, "src_bndbox", path),
        trg_bbox=_box(ann, "trg_bndbox", path),
        flags=flags,
        kps_ids=tuple(k for k, kept in zip(kps_ids, keep, strict=True) if kept),
    )


def read_pairs(
    data_root: str | Path,
    split: str = "test",
    categories: Sequence[str] | None = None,
    limit: int | None = None,
    pair_ids: Sequence[str] | None = None,
) -> list[Pair]:
    """SPair-71k pairs of `split` (``trn``, ``val`` or ``test``; ``train`` means ``trn``), in layout order.

    Only the annotation files of pairs that pass the filters are read (see
    :func:`vidcorr.eval.pairs.readers.read_benchmark` for their order). The test split has 12,234 pairs in 18
    categories.

    Raises:
        DataError: missing root, layout file or annotation; malformed annotation; empty split.
        InputError: unknown split, category or pair id; negative limit.
    """
    split = _SPLIT_ALIASES.get(split, split)
    if split not in SPLITS:
        raise InputError(f"unknown SPair split {split!r}; expected one of {', '.join(SPLITS)}")
    root = resolve_root(data_root, "Layout", ["SPair-71k"])
    layout = layout_path(root, split)
    keys = read_layout(layout)
    if not keys:
        raise DataError(f"{layout}: expected at least one pair, the split is empty")
    annotation_dir = root / "PairAnnotation" / split
    image_dir = root / "JPEGImages"
    chosen = select_indices(keys, categories=categories, pair_ids=pair_ids, limit=limit)
    return [
        parse_pair_annotation(annotation_dir / f"{keys[i][0]}.json", keys[i][0], keys[i][1], image_dir)
        for i in chosen
    ]
