"""Writers of tiny benchmark folders in the exact on-disk formats of SPair-71k, PF-Willow and CUB-200-2011.

Tests import these as ``from synthetic_pairs import ...`` (pytest puts ``tests/`` on ``sys.path``). Images
are small solid-colour files of the requested (W, H); only their headers and existence matter to readers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

PFWILLOW_HEADER = (
    ["imageA", "imageB"]
    + [f"XA{i}" for i in range(1, 11)]
    + [f"YA{i}" for i in range(1, 11)]
    + [f"XB{i}" for i in range(1, 11)]
    + [f"YB{i}" for i in range(1, 11)]
)


def write_image(path: Path, size_wh: tuple[int, int], colour: tuple[int, int, int] = (90, 140, 200)) -> Path:
    """Write a solid-colour image of (W, H) at `path` (format from the suffix); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size_wh, colour).save(path)
    return path


@dataclass
class SPairPair:
    """One SPair pair annotation; `number` becomes the zero-padded 6-digit prefix of its layout line."""

    number: int
    category: str
    src: str
    trg: str
    src_size: tuple[int, int]
    trg_size: tuple[int, int]
    src_kps: list[list[float]]
    trg_kps: list[list[float]]
    src_bbox: list[float]
    trg_bbox: list[float]
    kps_ids: list[str]
    flags: dict[str, int] = field(
        default_factory=lambda: {
            "viewpoint_variation": 0,
            "scale_variation": 0,
            "truncation": 0,
            "occlusion": 0,
        }
    )

    @property
    def line(self) -> str:
        """The layout line, which is also the annotation file's stem and vidcorr's pair id."""
        return f"{self.number:06d}-{self.src}-{self.trg}:{self.category}"

    def annotation(self) -> dict:
        """The pair JSON exactly as SPair-71k's PairAnnotation files hold it."""
        return {
            "pair_id": self.number,
            "src_imname": f"{self.src}.jpg",
            "trg_imname": f"{self.trg}.jpg",
            "src_imsize": [self.src_size[0], self.src_size[1], 3],
            "trg_imsize": [self.trg_size[0], self.trg_size[1], 3],
            "src_bndbox": self.src_bbox,
            "trg_bndbox": self.trg_bbox,
            "category": self.category,
            "src_pose": "Frontal",
            "trg_pose": "Left",
            "src_kps": self.src_kps,
            "trg_kps": self.trg_kps,
            "kps_ids": self.kps_ids,
            "mirror": 0,
            **self.flags,
        }


def write_spair(root: Path, splits: Mapping[str, Sequence[SPairPair]]) -> Path:
    """Write ``Layout/large/<split>.txt``, ``PairAnnotation/<split>/<line>.json`` and the JPEGs under `root`."""
    for split, pairs in splits.items():
        layout = root / "Layout" / "large" / f"{split}.txt"
        layout.parent.mkdir(parents=True, exist_ok=True)
        layout.write_text("".join(f"{p.line}\n" for p in pairs))
        annotation_dir = root / "PairAnnotation" / split
        annotation_dir.mkdir(parents=True, exist_ok=True)
        for pair in pairs:
            (annotation_dir / f"{pair.line}.json").write_text(json.dumps(pair.annotation()))
            for name, size in ((pair.src, pair.src_size), (pair.trg, pair.trg_size)):
                image = root / "JPEGImages" / pair.category / f"{name}.jpg"
                if not image.exists():
                    write_image(image, size)
    return root


@dataclass
class WillowRow:
    """One PF-Willow csv row: image paths as the csv writes them and 10 (x, y) per image."""

    src: str
    trg: str
    src_kps: list[tuple[float, float]]
    trg_kps: list[tuple[float, float]]

    def cells(self) -> list[str]:
        """The 42 csv cells: paths, source x's, source y's, target x's, target y's."""
        numbers = (
            [x for x, _ in self.src_kps]
            + [y for _, y in self.src_kps]
            + [x for x, _ in self.trg_kps]
            + [y for _, y in self.trg_kps]
        )
        return [self.src, self.trg] + [repr(float(v)) for v in numbers]


def write_pfwillow(
    root: Path,
    rows: Sequence[WillowRow],
    image_sizes: Mapping[str, tuple[int, int]],
    *,
    strip_first_folder: bool = False,
) -> Path:
    """Write ``test_pairs.csv`` and PNG images under `root`.

    `image_sizes` maps csv image paths to (W, H). With `strip_first_folder` the images go where hpf and
    CATs keep them (``<root>/<category>/<name>.png``) while the csv still names ``PF-dataset/...``.
    """
    root.mkdir(parents=True, exist_ok=True)
    lines = [",".join(PFWILLOW_HEADER)] + [",".join(row.cells()) for row in rows]
    (root / "test_pairs.csv").write_text("\n".join(lines) + "\n")
    for relative, size in image_sizes.items():
        parts = Path(relative).parts
        write_image(root.joinpath(*(parts[1:] if strip_first_folder else parts)), size)
    return root


@dataclass
class CubImage:
    """One CUB image: its id, class id, file, split flag, size, box (x, y, w, h) and parts."""

    image_id: int
    class_id: int
    file: str
    is_train: int
    size: tuple[int, int]
    box_xywh: tuple[float, float, float, float]
    parts: dict[int, tuple[float, float, int]]
    """part id -> (x, y, visible); parts 1..15 not listed are written as invisible (0, 0, 0)."""


def write_cub(root: Path, class_names: Mapping[int, str], images: Sequence[CubImage]) -> Path:
    """Write a CUB_200_2011 folder: the five index files, ``parts/part_locs.txt`` and the JPEGs."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("".join(f"{k} {v}\n" for k, v in class_names.items()))
    (root / "images.txt").write_text(
        "".join(f"{im.image_id} {class_names[im.class_id]}/{im.file}\n" for im in images)
    )
    (root / "image_class_labels.txt").write_text("".join(f"{im.image_id} {im.class_id}\n" for im in images))
    (root / "train_test_split.txt").write_text("".join(f"{im.image_id} {im.is_train}\n" for im in images))
    (root / "bounding_boxes.txt").write_text(
        "".join(f"{im.image_id} " + " ".join(repr(float(v)) for v in im.box_xywh) + "\n" for im in images)
    )
    part_lines = []
    for im in images:
        for part_id in range(1, 16):
            x, y, visible = im.parts.get(part_id, (0.0, 0.0, 0))
            part_lines.append(f"{im.image_id} {part_id} {float(x)!r} {float(y)!r} {visible}\n")
    (root / "parts").mkdir(exist_ok=True)
    (root / "parts" / "part_locs.txt").write_text("".join(part_lines))
    for im in images:
        write_image(root / "images" / class_names[im.class_id] / im.file, im.size)
    return root


def memory_pair(
    pair_id: str,
    *,
    dataset: str = "spair",
    category: str = "aeroplane",
    src_size: tuple[int, int] = (512, 512),
    trg_size: tuple[int, int] = (512, 512),
    src_kps: Sequence[Sequence[float]] = ((10.0, 10.0),),
    trg_kps: Sequence[Sequence[float]] = ((20.0, 20.0),),
    src_bbox: tuple[float, float, float, float] | None = (0.0, 0.0, 100.0, 100.0),
    trg_bbox: tuple[float, float, float, float] | None = (0.0, 0.0, 100.0, 100.0),
    flags: Mapping[str, int] | None = None,
):
    """A :class:`vidcorr.eval.pairs.Pair` built in memory (its image paths do not exist)."""
    from vidcorr.eval.pairs.pair import Pair

    return Pair(
        dataset=dataset,
        pair_id=pair_id,
        category=category,
        src_path=Path(f"/nonexistent/{pair_id}-src.jpg"),
        trg_path=Path(f"/nonexistent/{pair_id}-trg.jpg"),
        src_size=src_size,
        trg_size=trg_size,
        src_kps=src_kps,
        trg_kps=trg_kps,
        src_bbox=src_bbox,
        trg_bbox=trg_bbox,
        flags=dict(flags or {}),
    )


def willow_sample() -> tuple[list[WillowRow], dict[str, tuple[int, int]]]:
    """Three PF-Willow rows (two car(G), one duck(S) whose last target keypoint is -1 padding) and sizes."""
    car_src = [(10.0 + i, 20.0 + 2 * i) for i in range(10)]
    car_trg = [(5.0 + 3 * i, 1.0 + i) for i in range(10)]
    duck_src = [(float(i), float(i)) for i in range(10)]
    duck_trg = [(2.0 * i, 1.5 * i) for i in range(9)] + [(-1.0, -1.0)]
    rows = [
        WillowRow("PF-dataset/car(G)/car_000.png", "PF-dataset/car(G)/car_001.png", car_src, car_trg),
        WillowRow("PF-dataset/car(G)/car_001.png", "PF-dataset/car(G)/car_002.png", car_trg, car_src),
        WillowRow("PF-dataset/duck(S)/duck_000.png", "PF-dataset/duck(S)/duck_001.png", duck_src, duck_trg),
    ]
    sizes = {
        "PF-dataset/car(G)/car_000.png": (60, 40),
        "PF-dataset/car(G)/car_001.png": (50, 50),
        "PF-dataset/car(G)/car_002.png": (44, 33),
        "PF-dataset/duck(S)/duck_000.png": (30, 20),
        "PF-dataset/duck(S)/duck_001.png": (25, 35),
    }
    return rows, sizes


CUB_SAMPLE_CLASSES = {
    1: "001.Black_footed_Albatross",
    2: "002.Laysan_Albatross",
    3: "003.Sooty_Albatross",
    4: "004.Groove_billed_Ani",
}
CUB_SAMPLE_IMAGES = [
    # Class 1: test images 1, 3, 4 and training image 2; class 2: test 5, 6; class 3: none; class 4: test 7, 8.
    CubImage(1, 1, "a_0001.jpg", 0, (50, 40), (5, 6, 20, 30), {1: (10, 12, 1), 2: (20, 22, 1), 3: (30, 32, 0)}),
    CubImage(2, 1, "a_0002.jpg", 1, (30, 30), (0, 0, 10, 10), {1: (1, 1, 1)}),
    CubImage(3, 1, "a_0003.jpg", 0, (64, 48), (1, 2, 40, 10), {1: (11, 13, 1), 3: (31, 33, 1), 4: (5, 5, 1)}),
    CubImage(4, 1, "a_0004.jpg", 0, (20, 24), (0, 0, 5, 5), {2: (7, 8, 1)}),
    CubImage(5, 2, "b_0005.jpg", 0, (20, 20), (1, 1, 2, 2), {1: (1.5, 1.25, 1)}),
    CubImage(6, 2, "b_0006.jpg", 0, (22, 20), (2, 2, 3, 4), {1: (2, 2, 1), 5: (3, 3, 1)}),
    CubImage(7, 4, "d_0007.jpg", 0, (20, 20), (0, 0, 9, 9), {1: (1, 1, 1)}),
    CubImage(8, 4, "d_0008.jpg", 0, (20, 20), (0, 0, 9, 9), {1: (2, 2, 1)}),
]
