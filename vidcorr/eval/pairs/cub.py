"""CUB-200-2011 reader (Wah et al. 2011) with the seed's keypoint-transfer pairing.

On disk (``<root>`` is ``CUB_200_2011/`` or a folder holding it), one record per line, space separated::

    images.txt                 <image_id> <class folder>/<file>.jpg
    classes.txt                <class_id> <class name>            e.g. 1 001.Black_footed_Albatross
    image_class_labels.txt     <image_id> <class_id>
    train_test_split.txt       <image_id> <is_training_image>      1 train, 0 test
    bounding_boxes.txt         <image_id> <x> <y> <width> <height>
    parts/part_locs.txt        <image_id> <part_id> <x> <y> <visible>
    images/<class folder>/<file>.jpg

Pairing (the seed's, from the CUB dataset class in Hedlin's evaluation code, the one that reads
``/scratch/iamerich/Datasets_CATs/CUB_200_2011`` and returns ``bool_img_src``/``bool_img_trg``): keep the
images of the split whose class id is at most ``num_classes`` (its default is 3: the first three classes),
and pair every two images of a class, ``itertools.combinations`` style: for each class in id order, the
images in ``images.txt`` order, source before target. A pair keeps the parts visible in both images (in part
id order); pairs that share no visible part are left out (the seed would divide by zero on them).
``num_classes=None`` pairs all 200 classes (about 87k test pairs).

Boxes become (x, y, x + width, y + height). The seed squashes each image to 512 x 512 (its ``load_image``
scales by ``[512 / W, 512 / H]``; the letterbox code is commented out at HEAD) and takes as PCK threshold the
TARGET box's longer side times ``512 / W_target``, the x scale only (see ``vidcorr.eval.pck``). Image sizes
are read from the image headers. ``Pair.pair_id`` is ``<src image id>-<trg image id>:<class name>`` with
5-digit zero-padded ids; ``Pair.kps_ids`` holds the CUB part ids (1..15) as strings.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vidcorr.errors import DataError, InputError
from vidcorr.eval.pairs.pair import Pair, image_size, parse_float, resolve_root, select_indices

SPLITS: tuple[str, ...] = ("train", "test")
SEED_NUM_CLASSES = 3
"""The seed's CUB dataset pairs the test images of classes 1..3 unless told otherwise."""


def _records(path: Path, num_fields: int, what: str) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank line; a line with another field count is a DataError."""
    if not path.is_file():
        raise DataError(f"{path}: CUB file not found")
    records = []
    for line_no, raw in enumerate(path.read_text().splitlines(), start=1):
        fields = raw.split(maxsplit=num_fields - 1) if num_fields == 2 else raw.split()
        if not fields:
            continue
        if len(fields) != num_fields:
            raise DataError(f"{path}:{line_no}: expected {what}, got {raw.strip()!r}")
        records.append((line_no, fields))
    return records


def _int(text: str, where: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataError(f"{where}: expected {what}, got {text!r}") from None


def _id_table(path: Path, what: str) -> dict[int, str]:
    """First column (an integer id) -> the rest of the line."""
    table = {}
    for line_no, (key, value) in _records(path, 2, what):
        table[_int(key, f"{path}:{line_no}", "an integer id")] = value.strip()
    return table


class _Parts:
    """Part locations of every image: (part ids, x, y, visible) arrays in part id order."""

    def __init__(self, path: Path) -> None:
        rows: dict[int, list[tuple[int, float, float, int]]] = {}
        what = "'<image_id> <part_id> <x> <y> <visible>'"
        for line_no, fields in _records(path, 5, what):
            where = f"{path}:{line_no}"
            image_id = _int(fields[0], where, "an integer image id")
            part_id = _int(fields[1], where, "an integer part id")
            x = parse_float(fields[2], where, "an x coordinate")
            y = parse_float(fields[3], where, "a y coordinate")
            visible = _int(fields[4], where, "visible 0 or 1")
            rows.setdefault(image_id, []).append((part_id, x, y, visible))
        self._path = path
        self._parts = {k: sorted(v) for k, v in rows.items()}

    def get(self, image_id: int) -> dict[int, tuple[float, float]]:
        """Visible parts of an image: part id -> (x, y)."""
        if image_id not in self._parts:
            raise DataError(f"{self._path}: expected part locations for image {image_id}")
        return {part: (x, y) for part, x, y, visible in self._parts[image_id] if visible}


class _Candidate(NamedTuple):
    """Two images of a class that share a visible part: a pair, before selection."""

    pair_id: str
    category: str
    src_id: int
    trg_id: int
    shared: list[int]  # the part ids visible in both, ascending
    src_parts: dict[int, tuple[float, float]]
    trg_parts: dict[int, tuple[float, float]]


def read_pairs(
    data_root: str | Path,
    split: str = "test",
    categories: Sequence[str] | None = None,
    limit: int | None = None,
    pair_ids: Sequence[str] | None = None,
    num_classes: int | None = SEED_NUM_CLASSES,
) -> list[Pair]:
    """CUB pairs: every two images of a class within `split`, classes 1..`num_classes` (None: all).

    `categories` takes class names as in ``classes.txt`` (``001.Black_footed_Albatross``) or without the
    number (``Black_footed_Albatross``); it selects among the classes `num_classes` admits.

    Raises:
        DataError: missing root, file or image; a malformed line; an image without its class, split, box
            or parts; no pair in the split.
        InputError: unknown split, category or pair id; negative limit; `num_classes` < 1.
    """
    if split not in SPLITS:
        raise InputError(f"unknown CUB split {split!r}; expected one of {', '.join(SPLITS)}")
    if num_classes is not None and num_classes < 1:
        raise InputError(f"num_classes must be >= 1 or None, got {num_classes}")
    root = resolve_root(data_root, "images.txt", ["CUB_200_2011"])
    images = _id_table(root / "images.txt", "'<image_id> <path>'")
    classes = _id_table(root / "classes.txt", "'<class_id> <class name>'")
    by_class = _images_by_class(root, images, split, num_classes)
    candidates = _candidates(root, classes, by_class, split)
    keys = [(c.pair_id, c.category) for c in candidates]
    aliases = {name.split(".", 1)[1]: name for _, name in keys if "." in name}
    chosen = select_indices(
        keys, categories=categories, pair_ids=pair_ids, limit=limit, category_aliases=aliases
    )
    if not chosen:
        return []
    boxes_path = root / "bounding_boxes.txt"
    boxes = _boxes(boxes_path)
    sizes: dict[int, tuple[int, int]] = {}  # read once per image, from its header
    return [_pair(root, images, boxes_path, boxes, sizes, candidates[i]) for i in chosen]


def _images_by_class(root: Path, images: dict[int, str], split: str, num_classes: int | None) -> dict[int, list[int]]:
    """The image ids of `split` per class id, classes 1..`num_classes` (None: all), in ``images.txt`` order."""
    labels_path = root / "image_class_labels.txt"
    split_path = root / "train_test_split.txt"
    labels = {
        k: _int(v, str(labels_path), "an integer class id")
        for k, v in _id_table(labels_path, "'<image_id> <class_id>'").items()
    }
    is_train = {
        k: _int(v, str(split_path), "0 or 1") for k, v in _id_table(split_path, "'<image_id> <0|1>'").items()
    }

    want_train = 1 if split == "train" else 0
    by_class: dict[int, list[int]] = {}
    for image_id in images:
        if image_id not in labels:
            raise DataError(f"{labels_path}: expected a class for image {image_id}")
        if image_id not in is_train:
            raise DataError(f"{split_path}: expected a split flag for image {image_id}")
        class_id = labels[image_id]
        if is_train[image_id] == want_train and (num_classes is None or class_id <= num_classes):
            by_class.setdefault(class_id, []).append(image_id)
    return by_class


def _candidates(root: Path, classes: dict[int, str], by_class: dict[int, list[int]], split: str) -> list[_Candidate]:
    """Every two images of a class that share a visible part: classes in id order, then the images in
    ``images.txt`` order, source before target (``itertools.combinations``)."""
    parts = _Parts(root / "parts" / "part_locs.txt")
    candidates = []
    for class_id in sorted(by_class):
        if class_id not in classes:
            raise DataError(f"{root / 'classes.txt'}: expected a name for class {class_id}")
        name = classes[class_id]
        for src_id, trg_id in itertools.combinations(by_class[class_id], 2):
            src_parts, trg_parts = parts.get(src_id), parts.get(trg_id)
            shared = sorted(set(src_parts) & set(trg_parts))
            if shared:
                candidates.append(_Candidate(f"{src_id:05d}-{trg_id:05d}:{name}", name, src_id, trg_id, shared,
                                             src_parts, trg_parts))
    if not candidates:
        raise DataError(f"{root}: expected at least one {split} pair with a shared visible part, found none")
    return candidates


def _boxes(path: Path) -> dict[int, tuple[float, float, float, float]]:
    """Image id -> its box (x, y, x + width, y + height)."""
    boxes = {}
    for line_no, fields in _records(path, 5, "'<image_id> <x> <y> <width> <height>'"):
        where = f"{path}:{line_no}"
        x, y, w, h = (parse_float(v, where, "a box coordinate") for v in fields[1:])
        boxes[_int(fields[0], where, "an integer image id")] = (x, y, x + w, y + h)
    return boxes


def _pair(root: Path, images: dict[int, str], boxes_path: Path, boxes: dict[int, tuple[float, float, float, float]],
          sizes: dict[int, tuple[int, int]], candidate: _Candidate) -> Pair:
    """The `Pair` of a chosen candidate; image sizes are read into `sizes` on first use."""
    src_id, trg_id, shared = candidate.src_id, candidate.trg_id, candidate.shared
    for image_id in (src_id, trg_id):
        if image_id not in boxes:
            raise DataError(f"{boxes_path}: expected a box for image {image_id}")
        if image_id not in sizes:
            sizes[image_id] = image_size(root / "images" / images[image_id])
    return Pair(
        dataset="cub",
        pair_id=candidate.pair_id,
        category=candidate.category,
        src_path=root / "images" / images[src_id],
        trg_path=root / "images" / images[trg_id],
        src_size=sizes[src_id],
        trg_size=sizes[trg_id],
        src_kps=np.array([candidate.src_parts[p] for p in shared]),
        trg_kps=np.array([candidate.trg_parts[p] for p in shared]),
        src_bbox=boxes[src_id],
        trg_bbox=boxes[trg_id],
        kps_ids=tuple(str(p) for p in shared),
    )
