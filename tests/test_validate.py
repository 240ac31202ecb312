"""vidcorr.validate: argument checks made before any work, with messages naming the real cause."""

import cv2
import numpy as np
import pytest
from PIL import Image

from vidcorr.errors import InputError
from vidcorr.validate import check_fraction, check_frame_index, check_video_file, image_kind, refuse_options


@pytest.mark.parametrize(("value", "message"), [
    (float("nan"), "--visibility-threshold must be a number in [0, 1], got nan"),
    (2, "--visibility-threshold must be a number in [0, 1], got 2"),
    (-0.25, "--visibility-threshold must be a number in [0, 1], got -0.25"),
    (float("inf"), "--visibility-threshold must be a number in [0, 1], got inf"),
    ("high", "--visibility-threshold must be a number in [0, 1], got 'high'"),
])
def test_fractions_outside_0_1_or_not_finite_are_refused(value, message):
    with pytest.raises(InputError) as info:
        check_fraction(value, "--visibility-threshold")
    assert str(info.value) == message


def test_fractions_inside_are_returned_as_floats():
    assert [check_fraction(v, "t") for v in (0, 0.5, 1)] == [0.0, 0.5, 1.0]


def test_frame_indices_negative_is_its_own_message():
    with pytest.raises(InputError) as info:
        check_frame_index(-1, "--ref-frame", num_frames=6)
    assert str(info.value) == "--ref-frame -1 is negative: frames are numbered from 0"
    with pytest.raises(InputError) as info:
        check_frame_index(6, "--ref-frame", num_frames=6)
    assert str(info.value) == "--ref-frame 6 is past the end of the video (frames 0..5)"
    assert check_frame_index(5, "--ref-frame", 6) == 5 and check_frame_index(None, "--end") is None
    assert check_frame_index(10**6, "--start") == 10**6  # no length known: only the sign is checked


def test_still_images_are_named_as_images_whatever_their_suffix(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a.jpg"), image)
    cv2.imwrite(str(tmp_path / "b.png"), image)
    Image.fromarray(image).save(tmp_path / "c.webp")
    (tmp_path / "a.jpg").rename(tmp_path / "photo.mp4")
    assert [image_kind(tmp_path / n) for n in ("photo.mp4", "b.png", "c.webp")] == [
        "a JPEG image", "a PNG image", "a WebP image"]
    with pytest.raises(InputError) as info:
        check_video_file(tmp_path / "photo.mp4")
    assert str(info.value) == f"'{tmp_path / 'photo.mp4'}' is a JPEG image, not a video"
    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (8, 8))
    writer.write(image)
    writer.release()
    assert image_kind(tmp_path / "v.avi") is None and check_video_file(tmp_path / "v.avi") == tmp_path / "v.avi"


def test_refuse_options_names_the_first_option_set():
    refuse_options({"--steps": None, "--restarts": None}, "applies to fitting")
    with pytest.raises(InputError) as info:
        refuse_options({"--steps": None, "--restarts": 2, "--init-prompt": "a cat"}, "applies to fitting")
    assert str(info.value) == "--restarts applies to fitting"
