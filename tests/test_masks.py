"""Mask queries: binary and palette (DAVIS) masks, the grid inside a mask, and the CLI wiring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import vidcorr
from vidcorr.errors import InputError
from vidcorr.io.masks import grid_in_mask, grid_points, read_labels, read_mask
from vidcorr.io.points import video_labels
from vidcorr_cli.app import app

runner = CliRunner()
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "1", "--image-size", "64", "--device", "cpu"]

# DAVIS's palette begins: background black, then the objects' colours.
DAVIS_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128]


def labels_100x50() -> np.ndarray:
    """Object 1: x in [25, 75), y in [10, 30); object 2: x in [80, 100), y in [40, 50)."""
    labels = np.zeros((50, 100), np.uint8)
    labels[10:30, 25:75] = 1
    labels[40:50, 80:100] = 2
    return labels


def save_palette(path: Path, labels: np.ndarray) -> Path:
    img = Image.fromarray(labels, mode="P")
    img.putpalette(DAVIS_PALETTE + [0] * (768 - len(DAVIS_PALETTE)))
    img.save(path)
    return path


def test_palette_mask_labels_and_objects(tmp_path):
    labels = labels_100x50()
    path = save_palette(tmp_path / "00000.png", labels)
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(read_labels(path), labels)  # palette indices, not colours
    np.testing.assert_array_equal(read_mask(path, (100, 50)), labels != 0)
    np.testing.assert_array_equal(read_mask(path, (100, 50), mask_id=2), labels == 2)
    with pytest.raises(InputError) as err:
        read_mask(path, (100, 50), mask_id=3)
    assert str(err.value) == f"mask {str(path)!r} has no object 3 (its labels: 1, 2)"
    with pytest.raises(InputError) as err:
        read_mask(path, (100, 50), mask_id=0)
    assert str(err.value) == "mask id 0 is invalid: it must be an object label >= 1 (0 is the background)"


@pytest.mark.parametrize("mode", ["1", "L", "grey-RGB", "LA"])
def test_binary_masks(tmp_path, mode):
    inside = labels_100x50() == 1
    if mode == "1":
        img = Image.fromarray(inside)
    elif mode == "L":
        img = Image.fromarray(inside.astype(np.uint8) * 255)
    elif mode == "grey-RGB":
        img = Image.fromarray(np.repeat(inside[..., None].astype(np.uint8) * 255, 3, axis=2))
    else:
        img = Image.fromarray(inside.astype(np.uint8) * 255).convert("LA")
    img.save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png", (100, 50)), inside)


def test_mask_errors(tmp_path):
    path = save_palette(tmp_path / "m.png", labels_100x50())
    with pytest.raises(InputError) as err:
        read_mask(path, (100, 48))
    assert str(err.value) == (f"mask {str(path)!r} is 100x50 but the frame is 100x48: a mask must have the "
                              "frame's size (it is not resized)")
    Image.new("L", (10, 10)).save(tmp_path / "empty.png")
    with pytest.raises(InputError) as err:
        read_mask(tmp_path / "empty.png")
    assert str(err.value) == f"mask {str(tmp_path / 'empty.png')!r} is empty: every pixel is 0 (background)"
    colour = np.zeros((10, 10, 3), np.uint8)
    colour[2:5, 2:5] = (128, 0, 0)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(InputError) as err:
        read_mask(tmp_path / "colour.png")
    assert str(err.value) == (f"mask {str(tmp_path / 'colour.png')!r} is a colour image: give a binary PNG, or a "
                              "palette (indexed) PNG whose indices are object labels")
    (tmp_path / "bad.png").write_bytes(b"no image")
    with pytest.raises(InputError) as err:
        read_mask(tmp_path / "bad.png")
    assert str(err.value) == f"cannot read mask {str(tmp_path / 'bad.png')!r}: not an image"
    with pytest.raises(InputError) as err:
        read_mask(tmp_path / "missing.png")
    assert str(err.value) == f"mask {str(tmp_path / 'missing.png')!r} does not exist"
    with pytest.raises(InputError) as err:
        read_mask(tmp_path)
    assert str(err.value) == (f"mask {str(tmp_path)!r} is a folder: give the mask image of the reference frame "
                              "(e.g. Annotations/480p/<seq>/00000.png)")


def test_grid_in_mask_by_hand():
    # 100x50 frame, n = 5, 10 % margin: x = 10, 30, 50, 70, 90 and y = 5, 15, 25, 35, 45.
    np.testing.assert_allclose(grid_points(5, (100, 50))[:6], [[10, 5], [30, 5], [50, 5], [70, 5], [90, 5], [10, 15]])
    labels = labels_100x50()
    # object 1 covers x in [25, 75), y in [10, 30): x = 30, 50, 70 on rows y = 15, 25
    np.testing.assert_allclose(grid_in_mask(5, labels == 1),
                               [[30, 15], [50, 15], [70, 15], [30, 25], [50, 25], [70, 25]])
    # object 2 covers x in [80, 100), y in [40, 50): x = 90, y = 45
    np.testing.assert_allclose(grid_in_mask(5, labels == 2), [[90, 45]])
    # n = 2: x = 10, 90; y = 5, 45: only (90, 45) is on an object
    np.testing.assert_allclose(grid_in_mask(2, labels != 0), [[90, 45]])


def test_grid_in_mask_misses_give_one_line():
    labels = labels_100x50()
    # n = 3: x = 10, 50, 90; y = 5, 25, 45 -> (50, 25) is in object 1; object 2 at (90, 45) too
    np.testing.assert_allclose(grid_in_mask(3, labels == 1), [[50, 25]])
    small = np.zeros((50, 100), bool)
    small[0:3, 0:3] = True
    with pytest.raises(InputError) as err:
        grid_in_mask(4, small)
    assert str(err.value) == "no point of the 4x4 grid falls inside the mask (9 pixels): use a larger grid"


def test_grid_in_mask_matches_cotrackers_rule():
    """A transcription of CoTracker's filter (cotracker/predictor.py): keep the grid points whose mask value at
    [round(y), round(x)] is set, with coordinates whose pixel centres are integers (ours minus 0.5)."""
    rng = np.random.default_rng(0)
    width, height, n = 97, 61, 7
    grid = grid_points(n, (width, height))
    centred = grid - 0.5
    assert np.all(np.abs(centred - np.floor(centred) - 0.5) > 1e-6)  # no rounding ties at this size
    for _ in range(5):
        mask = rng.random((height, width)) < 0.4
        keep = mask[np.round(centred[:, 1]).astype(int), np.round(centred[:, 0]).astype(int)]
        np.testing.assert_array_equal(grid_in_mask(n, mask), grid[keep])


def test_video_queries_with_mask_and_points(tmp_path):
    path = save_palette(tmp_path / "m.png", labels_100x50())
    queries = video_labels("1.5,2.5", None, 5, 3, 10, (100, 50), mask=path, mask_id=1).queries
    expected_xy = [[1.5, 2.5], [30, 15], [50, 15], [70, 15], [30, 25], [50, 25], [70, 25]]
    np.testing.assert_allclose(queries, np.column_stack([np.full(7, 3.0), expected_xy]))
    cases = [
        (dict(points="1,1", grid=None, mask=path), "--mask needs --grid N: the grid's points inside the mask are the "
                                                    "queries"),
        (dict(points=None, grid=3, mask=None, mask_id=2), "--mask-id needs --mask FILE"),
        (dict(points=None, grid=0, mask=path), "--grid must be at least 1, got 0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InputError) as err:
            video_labels(kwargs.pop("points"), None, kwargs.pop("grid"), 0, 10, (100, 50), **kwargs)
        assert str(err.value) == message
    with pytest.raises(InputError) as err:
        video_labels(None, tmp_path / "p.csv", 3, 0, 10, (100, 50))
    assert str(err.value) == "give --points-file FILE alone, not with --points or --grid"


def test_cli_fit_with_a_mask(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (50, 100, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "frame.png")
    mask = save_palette(tmp_path / "mask.png", labels_100x50())
    out = tmp_path / "e.safetensors"
    result = runner.invoke(app, ["fit", str(tmp_path / "frame.png"), "--grid", "5", "--mask", str(mask),
                                 "--mask-id", "2", "--points", "3.5,4.5", "-o", str(out), *TINY])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(vidcorr.Embeddings.load(out).points, [[3.5, 4.5], [90, 45]])
    Image.new("L", (100, 48), 255).save(tmp_path / "wrong.png")
    result = runner.invoke(app, ["fit", str(tmp_path / "frame.png"), "--grid", "5", "--mask",
                                 str(tmp_path / "wrong.png"), "-o", str(tmp_path / "f.safetensors"), *TINY])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: mask {str(tmp_path / 'wrong.png')!r} is 100x48 but the frame is 100x50: "
                                     "a mask must have the frame's size (it is not resized)")
    assert not (tmp_path / "f.safetensors").exists()
    (tmp_path / "masks").mkdir()
    result = runner.invoke(app, ["fit", str(tmp_path / "frame.png"), "--grid", "5", "--mask", str(tmp_path / "masks"),
                                 "-o", str(tmp_path / "f.safetensors"), *TINY])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: mask {str(tmp_path / 'masks')!r} is a folder: give the mask image of "
                                     "the reference frame (e.g. Annotations/480p/<seq>/00000.png)")
    assert not (tmp_path / "f.safetensors").exists()
