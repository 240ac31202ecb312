import numpy as np
import pytest
from conftest import random_image
from equivariant import equivariant_tiny, exact_config, interior_shifts, rolled_frames, write_lossless_video

import vidcorr
from vidcorr.io.tracks import Tracks

SIZE = 256
QUERIES = np.array([[2, 100.5, 60.5], [2, 180.5, 200.5]])


@pytest.fixture(scope="module")
def exact_run(tmp_path_factory):
    ldm = equivariant_tiny()
    cfg = exact_config()
    base = random_image(SIZE, SIZE, seed=7)
    embeddings = vidcorr.fit_queries(ldm, [base] * 3, QUERIES, cfg)
    located = vidcorr.locate(ldm, base, embeddings, cfg).points
    shifts = interior_shifts(located, SIZE)
    assert len(shifts) >= 2, f"no interior shifts for located points {located.tolist()}"
    # Frame k is the reference frame (index 2) rolled by shifts[k]: two frames before it, two after.
    shifts = [shifts[0], shifts[-1], (0, 0), shifts[-1], shifts[len(shifts) // 2]]
    path = tmp_path_factory.mktemp("video") / "rolled.avi"
    write_lossless_video(path, rolled_frames(base, shifts))
    tracks = vidcorr.track(ldm, path, cfg=cfg, embeddings=embeddings)
    return ldm, cfg, located, shifts, path, embeddings, tracks


def test_tracks_move_exactly_with_the_roll_forward_and_backward(exact_run, tmp_path):
    ldm, cfg, located, shifts, path, embeddings, tracks = exact_run
    for k, (dx, dy) in enumerate(shifts):
        if k == 2:
            np.testing.assert_array_equal(tracks.points[k], QUERIES[:, 1:])  # the reference frame is the query
            continue
        expected = (located + [dx, dy]) % SIZE
        np.testing.assert_array_equal(tracks.points[k], expected.astype(np.float32))
    # ... and survive writing and reading the files.
    tracks.save_all(tmp_path)
    again = Tracks.load_npz(tmp_path / "tracks.npz")
    np.testing.assert_array_equal(again.points, tracks.points)
    np.testing.assert_array_equal(again.frame_indices, np.arange(5))
    import json

    meta = json.loads((tmp_path / "tracks.json").read_text())["meta"]
    assert (meta["precision"], meta["fit_precision"], meta["skipped_steps"]) == ("float32", "float32", [0, 0])


def test_track_shapes_and_confidence(exact_run):
    *_, tracks = exact_run
    assert tracks.points.shape == (5, 2, 2) and tracks.visible.shape == (5, 2) and tracks.confidence.shape == (5, 2)
    assert tracks.queries.shape == (2, 3)
    np.testing.assert_array_equal(tracks.queries, QUERIES.astype(np.float32))
    assert np.all((tracks.confidence >= 0) & (tracks.confidence <= 1))
    np.testing.assert_array_equal(tracks.confidence[2], [1.0, 1.0])
    # On an exactly rolled frame the token claims its pixel exactly as strongly as on the reference.
    np.testing.assert_allclose(tracks.confidence, 1.0, rtol=1e-5)
    np.testing.assert_array_equal(tracks.visible, tracks.confidence >= 0.5)


def test_reused_embeddings_give_the_same_tracks_as_fitting_in_the_run(exact_run, tmp_path):
    ldm, cfg, _, _, path, embeddings, tracks = exact_run
    fitted_in_run = vidcorr.track(ldm, path, QUERIES, cfg)
    np.testing.assert_array_equal(fitted_in_run.points, tracks.points)
    reloaded = vidcorr.Embeddings.load(embeddings.save(tmp_path / "e.safetensors"))
    again = vidcorr.track(ldm, path, cfg=cfg, embeddings=reloaded)
    np.testing.assert_array_equal(again.points, tracks.points)
    np.testing.assert_array_equal(again.confidence, tracks.confidence)


def test_queries_on_several_frames_and_a_stride(tiny):
    frames = [random_image(48, 64, seed=s) for s in range(7)]
    cfg = vidcorr.Config.preset("fast", image_size=64, num_steps=1)
    seen = []
    tracks = vidcorr.track(tiny, frames, np.array([[1, 10, 10], [4, 30, 20], [4, 50.5, 40.5]]), cfg, stride=2,
                           on_frame=lambda f, active, loc: seen.append((f, active.tolist())))
    np.testing.assert_array_equal(tracks.frame_indices, [0, 2, 4, 6])
    # Forward: frames after each query; backward: frames before it, latest first.
    assert seen == [(2, [0]), (4, [0]), (6, [0, 1, 2]), (2, [1, 2]), (0, [0, 1, 2])]
    np.testing.assert_array_equal(tracks.points[2, 1:], [[30, 20], [50.5, 40.5]])


def test_bad_queries_are_one_line_errors(tiny):
    frames = [random_image(48, 64, seed=s) for s in range(3)]
    cfg = vidcorr.Config.preset("fast", image_size=64, num_steps=1)
    with pytest.raises(vidcorr.InputError, match=r"^query 0 is on frame 3, outside the video \(frames 0..2\)$"):
        vidcorr.track(tiny, frames, np.array([[3, 10, 10]]), cfg)
    with pytest.raises(vidcorr.InputError, match=r"^query 1 \(65, 10\) is outside the frame \(64x48 pixels\)$"):
        vidcorr.track(tiny, frames, np.array([[0, 10, 10], [0, 65, 10]]), cfg)
