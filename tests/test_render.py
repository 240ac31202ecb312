"""Drawing markers, trails, heat maps and correspondence lines; rendering a whole video."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from test_tracks import damage_one_byte
from typer.testing import CliRunner

from vidcorr.errors import InputError
from vidcorr.io.render import (
    CORRECT_RGB,
    WRONG_RGB,
    RenderStyle,
    blend_heatmap,
    default_radius,
    draw_tracks,
    point_colors,
    render_video,
    side_by_side,
)
from vidcorr.io.sample import make_sample_clip, synthetic_frames, write_synthetic_video
from vidcorr.io.tracks import Tracks
from vidcorr.io.video import open_video
from vidcorr.io.writer import default_codec
from vidcorr_cli.app import app

GREY = 90


def grey_frame(width: int = 60, height: int = 40) -> np.ndarray:
    return np.full((height, width, 3), GREY, dtype=np.uint8)


def one_point_tracks(points_xy, visible, size=(60, 40), frame_indices=None) -> Tracks:
    points = np.asarray(points_xy, dtype=np.float32).reshape(-1, 1, 2)
    t = len(points)
    return Tracks(
        points=points,
        visible=np.asarray(visible, dtype=bool).reshape(t, 1),
        confidence=np.ones((t, 1)),
        queries=[[0, *points[0, 0]]],
        frame_indices=np.arange(t) if frame_indices is None else frame_indices,
        fps=10.0,
        size=size,
    )


def assert_near(pixel: np.ndarray, rgb, tol: int = 48) -> None:
    """An anti-aliased thin line or ring covers a pixel only partly: close to its colour, not equal."""
    assert np.abs(pixel.astype(int) - np.asarray(rgb, dtype=int)).max() <= tol, (pixel, rgb)


def test_point_colors():
    colors = point_colors(50)
    assert colors.shape == (50, 3) and colors.dtype == np.uint8
    np.testing.assert_array_equal(point_colors(50)[:7], point_colors(7))  # point i keeps colour i
    assert len({tuple(c) for c in colors}) == 50
    first = colors[:8].astype(float)
    distances = np.linalg.norm(first[:, None] - first[None], axis=-1)
    assert distances[np.triu_indices(8, 1)].min() > 60


def test_filled_marker_takes_the_point_colour_at_the_point():
    frame = grey_frame()
    tracks = one_point_tracks([(20.5, 10.5)], [True])  # the centre of pixel (row 10, column 20)
    out = draw_tracks(frame, tracks, row=0)
    np.testing.assert_array_equal(out[10, 20], point_colors(1)[0])
    np.testing.assert_array_equal(frame, grey_frame())  # the input is not modified
    assert out.shape == frame.shape and out.dtype == np.uint8


def test_hollow_marker_leaves_the_centre_unchanged():
    tracks = one_point_tracks([(20.5, 10.5)], [False])
    out = draw_tracks(grey_frame(), tracks, row=0)
    radius = default_radius(60, 40)
    np.testing.assert_array_equal(out[10, 20], [GREY] * 3)
    assert radius == 5
    assert_near(out[10, 20 - radius], point_colors(1)[0])  # on the ring, left of the centre


def test_trail_follows_earlier_rows():
    xs = [10.5, 20.5, 30.5, 40.5]
    tracks = one_point_tracks([(x, 30.5) for x in xs], [True] * 4)
    color = point_colors(1)[0]
    with_trail = draw_tracks(grey_frame(), tracks, row=3, style=RenderStyle(trail=2, show_ids=False))
    assert_near(with_trail[30, 25], color)  # on the segment from row 1 to row 2
    np.testing.assert_array_equal(with_trail[30, 15], [GREY] * 3)  # row 0 is beyond trail=2
    no_trail = draw_tracks(grey_frame(), tracks, row=3, style=RenderStyle(trail=0, show_ids=False))
    np.testing.assert_array_equal(no_trail[30, 25], [GREY] * 3)


def test_draw_checks_size():
    tracks = one_point_tracks([(5.5, 5.5)], [True], size=(64, 48))
    with pytest.raises(InputError) as err:
        draw_tracks(grey_frame(), tracks, row=0)
    assert str(err.value) == "tracks are for a 64x48 video but the frame is 60x40"


def test_blend_heatmap():
    frame = grey_frame()
    heat = np.zeros((4, 6), np.float32)
    np.testing.assert_array_equal(blend_heatmap(frame, heat, alpha=0.0), frame)
    # a constant map normalises to 0, which JET colours dark blue
    np.testing.assert_array_equal(blend_heatmap(frame, heat, alpha=1.0), np.broadcast_to([0, 0, 128], frame.shape))
    heat[0, 0] = 1.0
    out = blend_heatmap(frame, heat, alpha=1.0)
    assert out.shape == frame.shape
    np.testing.assert_array_equal(out[0, 0], [128, 0, 0])  # the peak: JET's dark red
    with pytest.raises(InputError) as err:
        blend_heatmap(frame, heat, alpha=1.5)
    assert str(err.value) == "heat map alpha 1.5 is out of range [0, 1]"


def test_side_by_side():
    src = np.full((30, 40, 3), 50, np.uint8)
    trg = np.full((50, 20, 3), 200, np.uint8)
    src_pts = np.array([[10.5, 10.5], [30.5, 20.5]])
    trg_pts = np.array([[5.5, 40.5], [15.5, 10.5]])
    out = side_by_side(src, trg, src_pts, trg_pts)
    assert out.shape == (50, 60, 3) and out.dtype == np.uint8
    colors = point_colors(2)
    np.testing.assert_array_equal(out[10, 10], colors[0])
    np.testing.assert_array_equal(out[40, 40 + 5], colors[0])  # the target point, shifted by W1
    np.testing.assert_array_equal(out[45:, :5], 0)  # below the shorter source: black
    judged = side_by_side(src, trg, src_pts, trg_pts, correct=[True, False])
    np.testing.assert_array_equal(judged[10, 10], CORRECT_RGB)
    np.testing.assert_array_equal(judged[20, 30], WRONG_RGB)
    x, y = np.floor(src_pts[0] + 0.25 * (trg_pts[0] + [40, 0] - src_pts[0])).astype(int)  # on the line
    assert_near(judged[y, x], CORRECT_RGB)
    with pytest.raises(InputError) as err:
        side_by_side(src, trg, src_pts, trg_pts[:1])
    assert str(err.value) == "source and target points must both be (N, 2); got (2, 2) and (1, 2)"


def test_render_video_keeps_frame_count_size_and_fps(tmp_path):
    frames, truth = synthetic_frames(num_frames=20, size=(96, 64))
    source = write_synthetic_video(tmp_path / "in.mp4", frames, fps=12.5)
    calls = []
    result = render_video(source, truth, tmp_path / "annotated.mp4", progress=lambda *a: calls.append(a))
    assert (result.num_frames, result.size, result.codec) == (20, (96, 64), default_codec("x.mp4"))
    info = open_video(result.path).info
    assert (info.num_frames, info.size) == (20, (96, 64))
    assert info.fps == pytest.approx(12.5, abs=0.01)
    assert calls[-1] == (20, 20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4", "in.mp4"]


def test_render_video_draws_tracked_frames_only(tmp_path):
    frames = np.full((12, 40, 60, 3), GREY, np.uint8)
    source = write_synthetic_video(tmp_path / "in.mkv", frames, fps=10.0, codec="FFV1")
    # rows at frames 4, 6, 8 (stride 2): frames 4..9 are drawn, 0..3 and 10..11 are not
    tracks = one_point_tracks([(20.5, 10.5)] * 3, [True] * 3, frame_indices=[4, 6, 8])
    render_video(open_video(source), tracks, tmp_path / "out.mkv", codec="FFV1")
    _, got = next(open_video(tmp_path / "out.mkv").iter_frames(batch_size=12))
    color = point_colors(1)[0]
    drawn = [bool(np.array_equal(f[10, 20], color)) for f in got]
    assert drawn == [False] * 4 + [True] * 6 + [False] * 2
    np.testing.assert_array_equal(got[:4], frames[:4])  # untouched, bit-exact

    rows_asked = []

    def heatmap(row: int) -> np.ndarray:
        rows_asked.append(row)
        return np.zeros((1, 4, 4))  # (N, h, w): one point's map

    render_video(source, tracks, tmp_path / "heat.mkv", RenderStyle(heatmap_alpha=1.0), heatmap, codec="FFV1")
    _, got = next(open_video(tmp_path / "heat.mkv").iter_frames(batch_size=12))
    far_corner = got[:, 39, 0]
    np.testing.assert_array_equal(far_corner[4:10], np.broadcast_to([0, 0, 128], (6, 3)))  # JET's 0
    np.testing.assert_array_equal(far_corner[:4], np.full((4, 3), GREY))
    assert rows_asked == [0, 1, 2]  # once per row, though each row is shown on two frames


def test_render_video_errors_leave_nothing(tmp_path):
    truth = make_sample_clip(tmp_path / "in.mp4", num_frames=6, size=(64, 48))
    wrong_size = one_point_tracks([(5.5, 5.5)], [True], size=(60, 40))
    with pytest.raises(InputError) as err:
        render_video(tmp_path / "in.mp4", wrong_size, tmp_path / "out.mp4")
    assert str(err.value) == f"tracks are for a 60x40 video but {str(tmp_path / 'in.mp4')} is 64x48"

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_video(tmp_path / "in.mp4", truth, tmp_path / "out.mp4", batch_size=2, progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_a_point_far_outside_the_frame_is_not_drawn():
    # OpenCV's fixed-point coordinates overflow for 1e9 ("Can't parse 'pt2'"): such a point is off-screen anyway.
    tracks = one_point_tracks([(20.5, 10.5), (1e9, 1e9)], [True, True])
    np.testing.assert_array_equal(draw_tracks(grey_frame(), tracks, 1, RenderStyle(trail=1)), grey_frame())
    drawn = draw_tracks(grey_frame(), tracks, 0)
    np.testing.assert_array_equal(drawn[10, 20], point_colors(1)[0])


def test_cli_render_of_damaged_or_hand_edited_tracks_is_one_line(tmp_path):
    make_sample_clip(tmp_path / "in.mp4", num_frames=3, size=(64, 48))
    tracks = one_point_tracks([(5.5, 5.5), (6.5, 6.5), (7.5, 7.5)], [True] * 3, size=(64, 48))
    damaged = tracks.save_npz(tmp_path / "damaged.npz")
    damage_one_byte(damaged)
    tracks.points[1, 0] = [1e9, 1e9]
    edited = tracks.save_npz(tmp_path / "edited.npz")
    for path, message in [
        (damaged, f"error: tracks file {str(damaged)!r} is damaged: its .npz archive cannot be read (Bad CRC-32 for "
                  "file 'points.npy')"),
        (edited, f"error: tracks file {str(edited)!r} has point 0 at (1e+09, 1e+09) on frame 1, far outside the 64x48 "
                 "video"),
    ]:
        result = CliRunner().invoke(app, ["render", str(tmp_path / "in.mp4"), str(path), "-o", str(tmp_path / "a.mp4")])
        assert result.exit_code == 2
        assert result.output.strip() == message
        assert not (tmp_path / "a.mp4").exists()


def test_cli_render_never_writes_over_its_inputs(tmp_path):
    make_sample_clip(tmp_path / "in.mp4", num_frames=3, size=(64, 48))
    tracks = one_point_tracks([(5.5, 5.5)] * 3, [True] * 3, size=(64, 48)).save_npz(tmp_path / "t.npz")
    (tmp_path / "link.mp4").symlink_to(tmp_path / "in.mp4")
    before = (tmp_path / "in.mp4").read_bytes()
    for out, what in (("in.mp4", "the video being drawn on"), ("link.mp4", "the video being drawn on"),
                      ("t.npz", "the tracks file")):
        result = CliRunner().invoke(app, ["render", str(tmp_path / "in.mp4"), str(tracks), "-o", str(tmp_path / out),
                                          "--overwrite"])
        assert result.exit_code == 2
        assert result.output.strip() == f"error: output file {str(tmp_path / out)!r} is {what}: choose another output"
    assert (tmp_path / "in.mp4").read_bytes() == before


def write_anamorphic_clip(path, sample_aspect_ratio: Fraction | None, num_frames: int = 4) -> None:
    """A 64x48 H.264 clip whose pixels are shown sample_aspect_ratio times as wide as tall (PAL-DV-like)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if sample_aspect_ratio is not None:
            stream.codec_context.sample_aspect_ratio = sample_aspect_ratio
        for t in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * t, np.uint8), format="rgb24")
            container.mux(stream.encode(frame.reformat(format="yuv420p")))
        container.mux(stream.encode(None))


@pytest.mark.parametrize("backend", ["decord", "opencv"])
def test_annotated_video_keeps_the_sources_pixel_aspect_ratio(tmp_path, backend):
    if backend == "decord":
        pytest.importorskip("decord")
    write_anamorphic_clip(tmp_path / "wide.mp4", Fraction(4, 3))
    write_anamorphic_clip(tmp_path / "square.mp4", None)
    tracks = one_point_tracks([(20.5, 10.5)] * 4, [True] * 4, size=(64, 48))
    for name, expected in (("wide", Fraction(4, 3)), ("square", None)):
        reader = open_video(tmp_path / f"{name}.mp4", backend=backend)
        assert reader.info.sample_aspect_ratio == expected
        render_video(reader, tracks, tmp_path / f"{name}_annotated.mp4")
        with av.open(str(tmp_path / f"{name}_annotated.mp4")) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (64, 48)
            # 64x48 stored pixels, each 4:3 wide: shown at 16:9, as the source is.
            assert stream.sample_aspect_ratio == (expected or None)
            assert stream.display_aspect_ratio == (Fraction(16, 9) if expected else None)


def test_sample_clip_defaults(tmp_path):
    truth = make_sample_clip(tmp_path / "a.mp4", seed=3)
    assert (tmp_path / "a.mp4").stat().st_size < 1_000_000
    assert truth.points.shape == (72, 5, 2) and (truth.fps, truth.size) == (24.0, (320, 192))
    info = open_video(tmp_path / "a.mp4").info
    assert (info.num_frames, info.size) == (72, (320, 192)) and info.fps == pytest.approx(24.0, abs=0.01)
    # the square moves right at constant speed; the disc covers the square's points mid-clip only
    steps = np.diff(truth.points[:, 0, 0])
    np.testing.assert_allclose(steps, steps[0], atol=1e-4)
    assert steps[0] > 0 and np.all(truth.points[:, 0, 1] == truth.points[0, 0, 1])
    hidden = np.flatnonzero(~truth.visible[:, 0])
    assert 0 < len(hidden) < 20 and 20 < hidden.mean() < 52
    assert truth.visible[:, 2:].all()


def test_sample_clip_is_deterministic(tmp_path):
    kwargs = dict(num_frames=12, size=(96, 64), seed=5)
    truth = make_sample_clip(tmp_path / "a.mp4", **kwargs)
    again = make_sample_clip(tmp_path / "b.mp4", **kwargs)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    np.testing.assert_array_equal(truth.points, again.points)
    frames, in_memory = synthetic_frames(**kwargs)
    np.testing.assert_array_equal(in_memory.points, truth.points)
    _, decoded = next(open_video(tmp_path / "a.mp4").iter_frames(batch_size=12))
    assert np.abs(decoded.astype(np.int16) - frames).mean() < 12  # the same scene, through mp4v


def test_sample_ground_truth_marks_the_texture():
    frames, truth = synthetic_frames(num_frames=8, size=(160, 96), seed=1)
    # the square's inner point sits on a checker cell: the same colour wherever the square has moved,
    # except where the disc hides it
    x, y = np.floor(truth.points[:, 1]).astype(int).T
    colours = frames[np.arange(8), y, x]
    visible = truth.visible[:, 1]
    assert 0 < visible.sum() < 8
    assert np.all(colours[visible] == colours[0]) and np.all(colours[~visible] != colours[0])
    assert np.abs(colours[0].astype(int) - frames[0, 90, 5]).sum() > 0  # not just the background
