"""Benchmark readers on synthetic SPair-71k, PF-Willow and CUB-200-2011 folders in their on-disk formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic_pairs import (
    CUB_SAMPLE_CLASSES,
    CUB_SAMPLE_IMAGES,
    SPairPair,
    willow_sample,
    write_cub,
    write_image,
    write_pfwillow,
    write_spair,
)

from vidcorr.errors import DataError, InputError
from vidcorr.eval.pairs import cub, pfwillow, spair
from vidcorr.eval.pairs.readers import read_benchmark

# ---------------------------------------------------------------------------------------------- SPair

AERO_1 = SPairPair(
    number=1,
    category="aeroplane",
    src="2008_000001",
    trg="2008_000002",
    src_size=(40, 30),
    trg_size=(32, 24),
    src_kps=[[1, 2], [10, 20], [30, 5]],
    trg_kps=[[3, 4], [12, 18], [28, 7]],
    src_bbox=[0, 1, 39, 28],
    trg_bbox=[2, 3, 30, 20],
    kps_ids=["0", "4", "7"],
    flags={"viewpoint_variation": 1, "scale_variation": 2, "truncation": 0, "occlusion": 3},
)
AERO_2 = SPairPair(
    number=2,
    category="aeroplane",
    src="2008_000002",
    trg="2008_000003",
    src_size=(32, 24),
    trg_size=(48, 36),
    src_kps=[[5, 5], [-1, -1]],
    trg_kps=[[6, 6], [-1, -1]],
    src_bbox=[1, 1, 20, 20],
    trg_bbox=[0, 0, 47, 35],
    kps_ids=["0", "3"],
)
CAT_3 = SPairPair(
    number=3,
    category="cat",
    src="2009_000010",
    trg="2009_000011",
    src_size=(20, 20),
    trg_size=(24, 16),
    src_kps=[[2.5, 3.5]],
    trg_kps=[[4.25, 5.75]],
    src_bbox=[0, 0, 19, 19],
    trg_bbox=[1, 2, 23, 15],
    kps_ids=["11"],
)
AERO_TRN = SPairPair(
    number=4,
    category="aeroplane",
    src="2008_000003",
    trg="2008_000001",
    src_size=(48, 36),
    trg_size=(40, 30),
    src_kps=[[7, 8]],
    trg_kps=[[9, 10]],
    src_bbox=[0, 0, 40, 30],
    trg_bbox=[0, 0, 39, 29],
    kps_ids=["1"],
)


@pytest.fixture
def spair_root(tmp_path: Path) -> Path:
    return write_spair(tmp_path / "SPair-71k", {"test": [AERO_1, AERO_2, CAT_3], "trn": [AERO_TRN]})


def test_spair_reads_test_split_in_layout_order(spair_root: Path) -> None:
    pairs = spair.read_pairs(spair_root)
    assert [p.pair_id for p in pairs] == [
        "000001-2008_000001-2008_000002:aeroplane",
        "000002-2008_000002-2008_000003:aeroplane",
        "000003-2009_000010-2009_000011:cat",
    ]
    first = pairs[0]
    assert first.dataset == "spair"
    assert first.category == "aeroplane"
    assert first.src_path == spair_root / "JPEGImages" / "aeroplane" / "2008_000001.jpg"
    assert first.trg_path == spair_root / "JPEGImages" / "aeroplane" / "2008_000002.jpg"
    assert first.src_size == (40, 30) and first.trg_size == (32, 24)
    np.testing.assert_array_equal(first.src_kps, [[1, 2], [10, 20], [30, 5]])
    np.testing.assert_array_equal(first.trg_kps, [[3, 4], [12, 18], [28, 7]])
    assert first.src_bbox == (0.0, 1.0, 39.0, 28.0) and first.trg_bbox == (2.0, 3.0, 30.0, 20.0)
    assert first.kps_ids == ("0", "4", "7")
    assert first.flags == {"viewpoint_variation": 1, "scale_variation": 2, "truncation": 0, "occlusion": 3}
    assert first.num_keypoints == 3
    np.testing.assert_array_equal(pairs[2].trg_kps, [[4.25, 5.75]])
    assert pairs[2].trg_size == (24, 16)


def test_spair_drops_padded_keypoints_with_their_ids(spair_root: Path) -> None:
    second = spair.read_pairs(spair_root)[1]
    np.testing.assert_array_equal(second.src_kps, [[5, 5]])
    np.testing.assert_array_equal(second.trg_kps, [[6, 6]])
    assert second.kps_ids == ("0",)


def test_spair_filters_categories_ids_limit_and_split(spair_root: Path) -> None:
    assert [p.pair_id for p in spair.read_pairs(spair_root, categories=["cat"])] == [CAT_3.line]
    ids = [p.pair_id for p in spair.read_pairs(spair_root, pair_ids=[CAT_3.line, AERO_1.line])]
    assert ids == [AERO_1.line, CAT_3.line]  # the layout's order, not the request's
    assert [p.pair_id for p in spair.read_pairs(spair_root, limit=2)] == [AERO_1.line, AERO_2.line]
    assert [p.pair_id for p in spair.read_pairs(spair_root, categories=["aeroplane"], limit=1)] == [AERO_1.line]
    assert [p.pair_id for p in spair.read_pairs(spair_root, split="trn")] == [AERO_TRN.line]
    assert [p.pair_id for p in spair.read_pairs(spair_root, split="train")] == [AERO_TRN.line]
    assert [p.pair_id for p in read_benchmark("spair", spair_root, categories=["cat"])] == [CAT_3.line]


def test_spair_bad_arguments_are_input_errors(spair_root: Path) -> None:
    with pytest.raises(InputError, match="'dog'.*aeroplane, cat"):
        spair.read_pairs(spair_root, categories=["dog"])
    with pytest.raises(InputError, match="1 pair id"):
        spair.read_pairs(spair_root, pair_ids=["nope"])
    with pytest.raises(InputError, match="split 'tst'"):
        spair.read_pairs(spair_root, split="tst")
    with pytest.raises(InputError, match="limit"):
        spair.read_pairs(spair_root, limit=-1)


def test_spair_accepts_the_parent_folder(spair_root: Path) -> None:
    assert len(spair.read_pairs(spair_root.parent)) == 3


def test_spair_corrupt_annotation_names_the_file(spair_root: Path) -> None:
    bad = spair_root / "PairAnnotation" / "test" / f"{AERO_2.line}.json"
    bad.write_text('{"pair_id": 2, "src_kps": [[1, ')
    with pytest.raises(DataError) as info:
        spair.read_pairs(spair_root)
    assert str(bad) in str(info.value) and "JSON" in str(info.value)
    # A filtered read never opens the broken file.
    assert len(spair.read_pairs(spair_root, categories=["cat"])) == 1


def test_spair_annotation_missing_a_key_names_key_and_file(spair_root: Path) -> None:
    path = spair_root / "PairAnnotation" / "test" / f"{CAT_3.line}.json"
    annotation = json.loads(path.read_text())
    del annotation["trg_bndbox"]
    path.write_text(json.dumps(annotation))
    with pytest.raises(DataError, match=r"trg_bndbox") as info:
        spair.read_pairs(spair_root, categories=["cat"])
    assert str(path) in str(info.value)


def test_spair_missing_annotation_or_image_is_a_data_error(spair_root: Path) -> None:
    (spair_root / "JPEGImages" / "cat" / "2009_000011.jpg").unlink()
    with pytest.raises(DataError, match="2009_000011.jpg"):
        spair.read_pairs(spair_root, categories=["cat"])
    (spair_root / "PairAnnotation" / "test" / f"{AERO_1.line}.json").unlink()
    with pytest.raises(DataError, match="annotation not found"):
        spair.read_pairs(spair_root, limit=1)


def test_spair_empty_split_and_missing_root_are_data_errors(spair_root: Path, tmp_path: Path) -> None:
    (spair_root / "Layout" / "large" / "val.txt").write_text("\n")
    with pytest.raises(DataError, match="val.txt.*empty"):
        spair.read_pairs(spair_root, split="val")
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DataError, match="no-such-folder"):
        spair.read_pairs(missing)
    with pytest.raises(DataError, match="Layout"):
        spair.read_pairs(tmp_path / "SPair-71k" / "JPEGImages")


def test_spair_malformed_layout_line_names_file_and_line(spair_root: Path) -> None:
    layout = spair_root / "Layout" / "large" / "test.txt"
    layout.write_text(f"{AERO_1.line}\nno-colon-here\n")
    with pytest.raises(DataError, match=r"test\.txt:2"):
        spair.read_pairs(spair_root)


# ------------------------------------------------------------------------------------------ PF-Willow


@pytest.mark.parametrize("strip_first_folder", [False, True])
def test_pfwillow_reads_rows_columns_categories_and_sizes(tmp_path: Path, strip_first_folder: bool) -> None:
    rows, sizes = willow_sample()
    root = write_pfwillow(tmp_path / "PF-WILLOW", rows, sizes, strip_first_folder=strip_first_folder)
    pairs = pfwillow.read_pairs(root)
    assert [p.pair_id for p in pairs] == [
        "001-car_000-car_001:car(G)",
        "002-car_001-car_002:car(G)",
        "003-duck_000-duck_001:duck(S)",
    ]
    assert [p.category for p in pairs] == ["car(G)", "car(G)", "duck(S)"]
    first = pairs[0]
    prefix = root if strip_first_folder else root / "PF-dataset"
    assert first.src_path == prefix / "car(G)" / "car_000.png"
    assert first.src_size == (60, 40) and first.trg_size == (50, 50)
    assert pairs[1].trg_size == (44, 33)
    np.testing.assert_array_equal(first.src_kps[:, 0], np.arange(10) + 10.0)  # columns 2-11: source x
    np.testing.assert_array_equal(first.src_kps[:, 1], 2 * np.arange(10) + 20.0)  # columns 12-21: source y
    np.testing.assert_array_equal(first.trg_kps[:, 0], 3 * np.arange(10) + 5.0)  # columns 22-31: target x
    np.testing.assert_array_equal(first.trg_kps[:, 1], np.arange(10) + 1.0)  # columns 32-41: target y
    assert first.src_bbox is None and first.trg_bbox is None and first.flags == {}
    duck = pairs[2]  # its tenth target keypoint is -1 padding
    assert duck.num_keypoints == 9
    assert duck.kps_ids == tuple(str(i) for i in range(9))
    np.testing.assert_array_equal(duck.trg_kps[8], [16.0, 12.0])
    assert [p.pair_id for p in pfwillow.read_pairs(tmp_path, categories=["duck(S)"])] == [duck.pair_id]


def test_pfwillow_malformed_rows_name_file_and_line(tmp_path: Path) -> None:
    rows, sizes = willow_sample()
    root = write_pfwillow(tmp_path / "w", rows, sizes)
    csv_path = root / "test_pairs.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join([*lines[:2], lines[2] + ",7.0", lines[3]]) + "\n")
    with pytest.raises(DataError, match=r"test_pairs\.csv:3: expected 42 columns, got 43"):
        pfwillow.read_pairs(root)
    csv_path.write_text("\n".join([*lines[:3], lines[3].replace("16.0", "sixteen")]) + "\n")
    with pytest.raises(DataError, match=r"test_pairs\.csv:4: expected a keypoint coordinate, got 'sixteen'"):
        pfwillow.read_pairs(root)
    assert len(pfwillow.read_pairs(root, limit=2)) == 2  # rows are parsed only when chosen


def test_pfwillow_empty_csv_missing_image_and_missing_root(tmp_path: Path) -> None:
    rows, sizes = willow_sample()
    root = write_pfwillow(tmp_path / "w", rows, sizes)
    (root / "PF-dataset" / "car(G)" / "car_002.png").unlink()
    with pytest.raises(DataError, match=r"car_002\.png"):
        pfwillow.read_pairs(root)
    csv_path = root / "test_pairs.csv"
    csv_path.write_text(csv_path.read_text().splitlines()[0] + "\n")
    with pytest.raises(DataError, match="empty"):
        pfwillow.read_pairs(root)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match="test_pairs.csv"):
        pfwillow.read_pairs(tmp_path / "elsewhere")
    with pytest.raises(DataError, match="missing-root"):
        pfwillow.read_pairs(tmp_path / "missing-root")
    with pytest.raises(InputError, match="only 'test'"):
        pfwillow.read_pairs(root, split="trn")


# ------------------------------------------------------------------------------------------------ CUB

@pytest.fixture
def cub_root(tmp_path: Path) -> Path:
    return write_cub(tmp_path / "CUB_200_2011", CUB_SAMPLE_CLASSES, CUB_SAMPLE_IMAGES)


def test_cub_pairs_every_two_test_images_of_the_first_three_classes(cub_root: Path) -> None:
    pairs = cub.read_pairs(cub_root)
    # Class 1's test images 1, 3, 4 give (1,3), (1,4), (3,4); (3,4) shares no visible part and is left out.
    # Class 2 gives (5,6); class 3 has no image; class 4 is beyond the seed's three classes.
    assert [p.pair_id for p in pairs] == [
        "00001-00003:001.Black_footed_Albatross",
        "00001-00004:001.Black_footed_Albatross",
        "00005-00006:002.Laysan_Albatross",
    ]
    first = pairs[0]
    assert first.dataset == "cub" and first.category == "001.Black_footed_Albatross"
    assert first.src_path == cub_root / "images" / "001.Black_footed_Albatross" / "a_0001.jpg"
    assert first.src_size == (50, 40) and first.trg_size == (64, 48)
    # Part 1 is the only part visible in both (part 3 is hidden in image 1, part 2 absent from image 3).
    assert first.kps_ids == ("1",)
    np.testing.assert_array_equal(first.src_kps, [[10.0, 12.0]])
    np.testing.assert_array_equal(first.trg_kps, [[11.0, 13.0]])
    assert first.src_bbox == (5.0, 6.0, 25.0, 36.0) and first.trg_bbox == (1.0, 2.0, 41.0, 12.0)
    assert first.flags == {}
    assert pairs[1].kps_ids == ("2",)
    np.testing.assert_array_equal(pairs[1].trg_kps, [[7.0, 8.0]])
    np.testing.assert_array_equal(pairs[2].src_kps, [[1.5, 1.25]])


def test_cub_num_classes_categories_and_limit(cub_root: Path) -> None:
    assert len(cub.read_pairs(cub_root, num_classes=None)) == 4
    assert cub.read_pairs(cub_root, num_classes=None)[-1].pair_id == "00007-00008:004.Groove_billed_Ani"
    assert len(cub.read_pairs(cub_root, num_classes=1)) == 2
    by_short_name = cub.read_pairs(cub_root.parent, categories=["Laysan_Albatross"])
    assert [p.pair_id for p in by_short_name] == ["00005-00006:002.Laysan_Albatross"]
    assert len(cub.read_pairs(cub_root, categories=["001.Black_footed_Albatross"], limit=1)) == 1
    with pytest.raises(InputError, match="Groove"):
        cub.read_pairs(cub_root, categories=["004.Groove_billed_Ani"])  # not among the first three
    with pytest.raises(InputError, match="num_classes"):
        cub.read_pairs(cub_root, num_classes=0)
    assert len(read_benchmark("cub", cub_root, num_classes=None)) == 4
    with pytest.raises(InputError, match="unknown benchmark 'tapvid'"):
        read_benchmark("tapvid", cub_root)


def test_cub_empty_split_and_malformed_files(cub_root: Path) -> None:
    with pytest.raises(DataError, match="train pair"):
        cub.read_pairs(cub_root, split="train")  # class 1 has a single training image
    parts = cub_root / "parts" / "part_locs.txt"
    lines = parts.read_text().splitlines()
    parts.write_text("\n".join([*lines[:4], "1 5 10.0", *lines[5:]]) + "\n")
    with pytest.raises(DataError, match=r"part_locs\.txt:5"):
        cub.read_pairs(cub_root)
    with pytest.raises(DataError, match="nothing-here"):
        cub.read_pairs(cub_root.parent / "nothing-here")


def test_cub_missing_box_is_a_data_error(cub_root: Path) -> None:
    boxes = cub_root / "bounding_boxes.txt"
    boxes.write_text("\n".join(line for line in boxes.read_text().splitlines() if not line.startswith("3 ")))
    with pytest.raises(DataError, match="box for image 3"):
        cub.read_pairs(cub_root, limit=1)


def test_image_size_rejects_a_file_that_is_not_an_image(tmp_path: Path) -> None:
    from vidcorr.eval.pairs.pair import image_size

    assert image_size(write_image(tmp_path / "ok.png", (7, 5))) == (7, 5)
    (tmp_path / "bad.jpg").write_text("not an image")
    with pytest.raises(DataError, match="bad.jpg"):
        image_size(tmp_path / "bad.jpg")
