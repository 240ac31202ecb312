"""The tracker's rules against values computed here, outside the code under test: the confidence scale (the attention
at the pixel located on the reference frame), the visibility threshold at its boundary, the per-frame anchor of the
first crop (in image pixels on the tracker's side, squashed into the model space inside locate), and what makes
reused embeddings "the same video" (their reference frames' content).

Frames are 64 x 48 and the model space 64 x 64 (the tiny model's), so a point (x, y) of a frame is (x, y * 4 / 3)
there: a rule applied in the wrong space shows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
from conftest import random_image
from equivariant import write_lossless_video
from typer.testing import CliRunner

import vidcorr
from vidcorr import Config, InputError
from vidcorr.method import locate as locate_module
from vidcorr.method import track as track_module
from vidcorr.pipelines.options import TrackOptions
from vidcorr.pipelines.track import prepare_track
from vidcorr_cli.app import app

S, W, H = 64, 64, 48
CFG = Config(image_size=S, num_steps=3, restarts=2, crops=5, lr=0.05, seed=3)
FRAMES = [random_image(H, W, seed=40 + t) for t in range(5)]
QUERIES = np.array([[1, 20.5, 30.5], [3, 44.25, 12.75]])  # point 0 on frame 1, point 1 on frame 3


def _pixel(x: float, y: float) -> tuple[int, int]:
    """(row, column) of the model-space pixel holding frame point (x, y), by hand: floor(y * S / H), floor(x)."""
    return int(np.floor(y * S / H)), int(np.floor(x * S / W))


@pytest.fixture(scope="module")
def fitted(tiny):
    return vidcorr.fit_queries(tiny, FRAMES, QUERIES, CFG)


@pytest.fixture(scope="module")
def tracked(tiny, fitted):
    """The tracks, with every located frame's Location (on_frame)."""
    located = {}
    tracks = vidcorr.track(tiny, FRAMES, embeddings=fitted, cfg=CFG,
                           on_frame=lambda f, active, loc: located.__setitem__(f, (active.copy(), loc)))
    return tracks, located


# --------------------------------------------------------------------------------------------- confidence


def test_the_confidence_scale_is_the_attention_at_the_pixel_located_on_the_reference_frame(tiny, fitted):
    """The scale is read as every tracked frame is: the reference frame's maps (located from the query, with the
    draws fit_queries makes), the seed's final combination transcribed here (a softmax over the pixels of each
    layer, the mean over layers, the first maximum in row-major order), and the layer-mean attention read at that
    pixel. Not at the query's own pixel (the other rule, a smaller number here)."""
    scale = fitted.extra["ref_attention"]
    for p, (t, x, y) in enumerate(QUERIES):
        again = vidcorr.locate(tiny, FRAMES[int(t)], fitted.subset([p]), CFG, stream_key=int(t), point_ids=[p],
                               anchors_xy=np.array([[x, y]]), return_maps=True)
        maps = again.maps[0].double().numpy()  # (L, S, S), the restart mean
        flat = maps.reshape(len(maps), -1)
        soft = np.exp(flat - flat.max(axis=1, keepdims=True))
        soft = (soft / soft.sum(axis=1, keepdims=True)).mean(axis=0)
        row, col = divmod(int(np.argmax(soft)), S)
        attention = maps.mean(axis=0)
        assert scale[p] == pytest.approx(float(attention[row, col]), rel=1e-5)
        assert (row, col) != _pixel(x, y) and scale[p] > 1.01 * attention[_pixel(x, y)]


def test_tracked_confidence_is_the_located_attention_over_the_scale_clipped_to_1(fitted, tracked):
    tracks, located = tracked
    scale = np.asarray(fitted.extra["ref_attention"])
    expected = np.ones((len(FRAMES), 2))  # a point's own query frame: 1
    for f, (active, loc) in located.items():
        expected[f, active] = np.minimum(loc.confidence.astype(np.float64) / scale[active], 1.0)
    np.testing.assert_allclose(tracks.confidence, expected.astype(np.float32), rtol=1e-6)
    assert 0 < tracks.confidence.min() < 1  # both sides of the clip occur
    assert (tracks.confidence[[1, 3], [0, 1]] == 1).all()


# --------------------------------------------------------------------------------------------- visibility


def test_a_confidence_equal_to_the_threshold_is_visible_and_one_just_above_it_is_not(tiny, fitted, tracked):
    tracks, _ = tracked
    below_one = np.argwhere(tracks.confidence < 1)
    row, point = (int(v) for v in below_one[0])
    c = float(tracks.confidence[row, point])  # as saved (float32), read back exactly
    at = vidcorr.track(tiny, FRAMES, embeddings=fitted, cfg=CFG, visibility_threshold=c)
    above = vidcorr.track(tiny, FRAMES, embeddings=fitted, cfg=CFG, visibility_threshold=float(np.nextafter(c, 2.0)))
    np.testing.assert_array_equal(at.confidence, tracks.confidence)
    assert at.visible[row, point] and not above.visible[row, point]
    # The rule on every cell, on the saved values: visible exactly where confidence >= threshold.
    np.testing.assert_array_equal(at.visible, tracks.confidence.astype(np.float64) >= c)
    np.testing.assert_array_equal(above.visible, tracks.confidence.astype(np.float64) > c)


# --------------------------------------------------------------------------------------------- anchors


def test_each_frames_first_crop_is_anchored_at_the_label_then_at_the_previous_frames_point(tiny, fitted,
                                                                                          monkeypatch):
    """Point 0 (label on frame 1): forward 2, 3, 4, backward 0; point 1 (label on frame 3): forward 4, backward 2,
    1, 0. On a sweep's first frame from a label the first crop keeps the label inside its margin; on each later
    frame of the sweep, the point's position on the frame located before it. The tracker hands these over in frame
    pixels; locate squashes them into the model space ((x, y * 4 / 3) here) before drawing the window."""
    calls = []
    original_locate, original_draw = track_module.locate, locate_module.draw_window
    windows: list = []

    def draw(point_xy, image_size, side, margin, generator):
        window = original_draw(point_xy, image_size, side, margin, generator)
        windows.append((tuple(point_xy), window))
        return window

    def spy(ldm, image, embeddings, cfg=None, **kwargs):
        start = len(windows)
        loc = original_locate(ldm, image, embeddings, cfg, **kwargs)
        restarts = embeddings.num_restarts
        first = windows[start:start + embeddings.num_points * restarts]  # crop iteration 0, points outer
        calls.append((kwargs["stream_key"], list(kwargs["point_ids"]), kwargs["anchors_xy"], first, loc))
        return loc

    monkeypatch.setattr(track_module, "locate", spy)
    monkeypatch.setattr(locate_module, "draw_window", draw)
    vidcorr.track(tiny, FRAMES, embeddings=fitted, cfg=CFG)

    # The order of the sweeps and who is on each frame, by hand.
    assert [(f, ids) for f, ids, *_ in calls] == [(2, [0]), (3, [0]), (4, [0, 1]), (2, [1]), (1, [1]), (0, [0, 1])]
    position = {}  # (sweep, point) -> where it was located on the frame before, in frame pixels
    for k, (_, ids, anchors, first, loc) in enumerate(calls):
        sweep = "forward" if k < 3 else "backward"
        for j, p in enumerate(ids):
            label = QUERIES[p, 1:]
            expected = position.get((sweep, p), label)
            np.testing.assert_array_equal(anchors[j], expected)
            # The model-space anchor of both restarts' first crop, and its window keeping it 8 px inside: the
            # side is int(64 * 0.9316...) = 59 and the margin int(59 * 0.15) = 8; corners run over 0..5.
            model = (expected[0] * S / W, expected[1] * S / H)
            for r in range(CFG.restarts):
                anchor, window = first[j * CFG.restarts + r]
                assert anchor == pytest.approx(model, abs=1e-12)
                assert window.size == 59
                for corner, a in ((window.x0, model[0]), (window.y0, model[1])):
                    lo, hi = int(min(max(0.0, a - 59 + 8), 5)), int(min(max(0.0, a - 8), 5))
                    assert lo <= corner <= hi
            position[(sweep, p)] = loc.points[j]


# --------------------------------------------------------------------------------------------- same video


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The frames above as a lossless clip, and another clip of the same size and length."""
    folder = tmp_path_factory.mktemp("clips")
    write_lossless_video(folder / "clip.avi", FRAMES)
    write_lossless_video(folder / "other.avi", [random_image(H, W, seed=90 + t) for t in range(len(FRAMES))])
    return folder / "clip.avi", folder / "other.avi"


def _digest(frame: np.ndarray) -> str:
    """sha256 of the frame's shape (int64) then its pixels, by hand."""
    return hashlib.sha256(np.asarray(frame.shape, dtype=np.int64).tobytes() + frame.tobytes()).hexdigest()


def test_embeddings_record_their_reference_frames_and_a_same_size_other_clip_is_searched_globally(tiny, clips,
                                                                                                  tmp_path):
    clip, other = clips
    embeddings = vidcorr.fit_queries(tiny, clip, QUERIES, CFG)
    assert embeddings.extra["frame_sha256"] == {"1": _digest(FRAMES[1]), "3": _digest(FRAMES[3])}

    def global_search(video, **options):
        return prepare_track(video, tmp_path / "out", embeddings=embeddings, options=TrackOptions(**options)
                             ).global_search

    assert global_search(clip) is False  # its own clip: anchored on frames 1 and 3
    assert global_search(other) is True  # same size, same length, other content: no frame is a reference
    assert global_search(other, same_video=True) is False  # forced either way
    assert global_search(clip, same_video=False) is True
    # A file from before the digests: the frame size and count decide, as they used to.
    old = dataclasses.replace(embeddings, extra={k: v for k, v in embeddings.extra.items() if k != "frame_sha256"})
    assert prepare_track(other, tmp_path / "out", embeddings=old).global_search is False
    # One changed pixel on a reference frame is another video.
    changed = [f.copy() for f in FRAMES]
    changed[3][0, 0, 0] ^= 1
    write_lossless_video(tmp_path / "changed.avi", changed)
    assert global_search(tmp_path / "changed.avi") is True


def test_the_same_video_flags_are_refused_without_embeddings_and_for_an_image_fit(tiny, clips, tmp_path):
    clip, _ = clips
    with pytest.raises(InputError) as caught:
        prepare_track(clip, tmp_path / "out", queries=QUERIES, options=TrackOptions(same_video=True))
    assert str(caught.value) == ("--same-video and --other-video apply to --embeddings (points fitted here are on this "
                                 "video)")
    image_fit = vidcorr.fit(tiny, FRAMES[0], np.array([[10.5, 10.5]]), CFG.replace(num_steps=1))
    with pytest.raises(InputError) as caught:
        prepare_track(clip, tmp_path / "out", embeddings=image_fit, options=TrackOptions(same_video=True))
    assert str(caught.value) == ("these embeddings were fitted on an image, not on a video's frames: they cannot be "
                                 "anchored on this video's frames (drop --same-video)")


def test_the_cli_flags_force_the_mode(tiny, clips, tmp_path):
    clip, other = clips
    embeddings = tmp_path / "e.safetensors"
    vidcorr.fit_queries(tiny, clip, QUERIES, CFG).save(embeddings)
    common = ["--embeddings", str(embeddings), "--no-video", "--keyframes", "0", "--model", "tiny", "--device", "cpu"]
    for video, flag, expected in ((other, [], True), (other, ["--same-video"], False), (clip, [], False),
                                  (clip, ["--other-video"], True)):
        out = tmp_path / f"out-{video.stem}-{len(flag)}"
        result = CliRunner().invoke(app, ["track", str(video), "-o", str(out), *flag, *common])
        assert result.exit_code == 0, result.output
        assert json.loads((out / "tracks.json").read_text())["meta"]["global_search"] is expected
