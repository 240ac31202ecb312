"""PF-Willow reader (Ham et al. 2016): 900 test pairs, 10 keypoints each, 10 categories.

On disk: ``<root>/test_pairs.csv`` with a header row and one pair per row, 42 columns:

- columns 0, 1: source and target image paths, e.g. ``PF-dataset/car(G)/<name>.png``;
- columns 2-11: the 10 source x's, 12-21: the 10 source y's, 22-31: the 10 target x's, 32-41: the 10
  target y's (the layout the public readers assume: juhongm999/hpf and CATs ``data/pfwillow.py`` take
  ``iloc[:, 2:22]`` reshaped to (2, 10) as the source x row and y row, and ``iloc[:, 22:]`` for the target).

Image paths are resolved against ``<root>``; where that file does not exist, the path without its first
folder is tried too (hpf and CATs ship the category folders directly under ``PF-WILLOW/``, next to the csv,
while the csv still says ``PF-dataset/...``). ``<root>`` may also be a folder holding ``PF-WILLOW/``.

The category is the image's folder (``car(G)``, ``duck(S)``, ``winebottle(woC)``, ...). PF-Willow has no
bounding boxes: the PCK threshold comes from the TARGET keypoints' extent (official), or from the seed's
rule over the squashed target keypoints with their -1 padding (see ``vidcorr.eval.pck``). Image sizes
are read from the image headers. ``Pair.pair_id`` is ``<row>-<src stem>-<trg stem>:<category>`` with the
1-based data row zero-padded to 3 digits, e.g. ``001-2008_001-2008_007:car(G)``; ``Pair.kps_ids`` holds the
column index (0..9) of each kept keypoint.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from vidcorr.errors import DataError, InputError
from vidcorr.eval.pairs.pair import Pair, image_size, parse_float, resolve_root, select_indices, valid_rows

CSV_NAME = "test_pairs.csv"
NUM_KEYPOINTS = 10
NUM_COLUMNS = 2 + 4 * NUM_KEYPOINTS


def _image_path(root: Path, relative: str, where: str) -> Path:
    posix = PurePosixPath(relative.replace("\\", "/"))
    candidates = [root / posix]
    if len(posix.parts) > 1:
        candidates.append(root.joinpath(*posix.parts[1:]))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = " or ".join(str(c) for c in candidates)
    raise DataError(f"{where}: image {relative!r} not found (tried {tried})")


def read_pairs(
    data_root: str | Path,
    split: str = "test",
    categories: Sequence[str] | None = None,
    limit: int | None = None,
    pair_ids: Sequence[str] | None = None,
) -> list[Pair]:
    """PF-Willow pairs in csv row order (`split` must be ``test``, the only one PF-Willow has).

    Keypoints with a negative or non-finite coordinate in either image are dropped as padding.

    Raises:
        DataError: missing root, csv or image; a row without 42 columns or with a non-number; no rows.
        InputError: unknown split, category or pair id; negative limit.
    """
    if split != "test":
        raise InputError(f"unknown PF-Willow split {split!r}; PF-Willow has only 'test'")
    root = resolve_root(data_root, CSV_NAME, ["PF-WILLOW", "pf-willow"])
    csv_path = root / CSV_NAME
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{csv_path}: expected a header and {NUM_COLUMNS}-column pair rows, file is empty")
    header, body = rows[0], rows[1:]
    if len(header) != NUM_COLUMNS:
        raise DataError(f"{csv_path}:1: expected a header of {NUM_COLUMNS} columns, got {len(header)}")
    if not body:
        raise DataError(f"{csv_path}: expected at least one pair row, the split is empty")

    keys = []
    for row_no, row in enumerate(body, start=1):
        where = f"{csv_path}:{row_no + 1}"
        if len(row) != NUM_COLUMNS:
            raise DataError(f"{where}: expected {NUM_COLUMNS} columns, got {len(row)}")
        src, trg = PurePosixPath(row[0].strip()), PurePosixPath(row[1].strip())
        category = src.parent.name
        if not category:
            raise DataError(f"{where}: expected an image path '<folder>/<category>/<name>', got {row[0]!r}")
        keys.append((f"{row_no:03d}-{src.stem}-{trg.stem}:{category}", category))

    sizes: dict[Path, tuple[int, int]] = {}
    pairs = []
    for i in select_indices(keys, categories=categories, pair_ids=pair_ids, limit=limit):
        row, where = body[i], f"{csv_path}:{i + 2}"
        values = np.array([parse_float(cell, where, "a keypoint coordinate") for cell in row[2:]])
        src_kps = values[: 2 * NUM_KEYPOINTS].reshape(2, NUM_KEYPOINTS).T
        trg_kps = values[2 * NUM_KEYPOINTS :].reshape(2, NUM_KEYPOINTS).T
        keep = valid_rows(src_kps, trg_kps)
        src_path = _image_path(root, row[0].strip(), where)
        trg_path = _image_path(root, row[1].strip(), where)
        for image in (src_path, trg_path):
            if image not in sizes:
                sizes[image] = image_size(image)
        pairs.append(
            Pair(
                dataset="pfwillow",
                pair_id=keys[i][0],
                category=keys[i][1],
                src_path=src_path,
                trg_path=trg_path,
                src_size=sizes[src_path],
                trg_size=sizes[trg_path],
                src_kps=src_kps[keep],
                trg_kps=trg_kps[keep],
                kps_ids=tuple(str(k) for k in np.flatnonzero(keep)),
            )
        )
    return pairs
