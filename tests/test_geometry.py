import numpy as np
import pytest
import torch

from vidcorr import InputError
from vidcorr.method.geometry import (
    CORNER_ANCHORS,
    CropWindow,
    argmax_point,
    check_points,
    crop_corner_range,
    crop_resize,
    crop_side,
    draw_window,
    gaussian_targets,
    point_in_crop,
    squash_points,
    unsquash_points,
)

S, PCT, MARGIN = 512, 93.16549294381423, 0.15


def test_crop_side_and_margin_at_512():
    assert crop_side(S, PCT) == 477  # int(477.007...)
    assert int(477 * MARGIN) == 71


@pytest.mark.parametrize(("anchor", "window"), [
    ((0, 0), (0, 0)), ((0, 512), (0, 35)), ((512, 0), (35, 0)), ((512, 512), (35, 35))])
def test_corner_anchors_give_the_four_corner_crops(anchor, window):
    gen = torch.Generator().manual_seed(0)
    w = draw_window(anchor, S, 477, MARGIN, gen)
    assert (w.x0, w.y0, w.size) == (*window, 477)


def test_corner_anchor_order_is_the_seeds():
    assert [(x * S, y * S) for x, y in CORNER_ANCHORS] == [(0, 0), (0, 512), (512, 0), (512, 512)]


def test_mid_image_point_range_by_hand():
    # x = 420.7: lo = min(max(0, 420.7 - 477 + 71), 35) = 14.7 -> 14; hi = min(max(0, 420.7 - 71), 35) = 35
    assert crop_corner_range(420.7, S, 477, MARGIN) == (14, 35)
    # y = 90.2: lo = max(0, 90.2 - 406) = 0; hi = min(90.2 - 71, 35) = 19.2 -> 19
    assert crop_corner_range(90.2, S, 477, MARGIN) == (0, 19)
    gen = torch.Generator().manual_seed(1)
    seen = {(w.x0, w.y0) for w in (draw_window((420.7, 90.2), S, 477, MARGIN, gen) for _ in range(3000))}
    xs, ys = {x for x, _ in seen}, {y for _, y in seen}
    assert xs == set(range(14, 36)) and ys == set(range(0, 20))


def test_point_stays_inside_the_margin_of_every_crop():
    gen = torch.Generator().manual_seed(2)
    for point in [(100.0, 400.0), (256.5, 256.5), (500.0, 20.0)]:
        for _ in range(200):
            w = draw_window(point, S, 477, MARGIN, gen)
            assert 0 <= w.x0 <= 35 and 0 <= w.y0 <= 35
            px, py = point[0] - w.x0, point[1] - w.y0
            # Clamping to the image may push the margin (only) where the point is near an edge.
            assert 71 <= px <= 477 - 71 or w.x0 in (0, 35)
            assert 71 <= py <= 477 - 71 or w.y0 in (0, 35)


def test_point_in_crop_scales_to_the_output_side():
    assert point_in_crop((100.0, 50.0), CropWindow(20, 10, 477), 512) == pytest.approx((80 / 477 * 512, 40 / 477 * 512))


def test_gaussian_target_peaks_at_column_x_row_y():
    maps = gaussian_targets(torch.tensor([[3.0, 5.0], [10.0, 2.0]]), 16, sigma=2.0)
    assert maps.shape == (2, 16, 16)
    assert divmod(int(maps[0].argmax()), 16) == (5, 3)  # (row, column)
    assert divmod(int(maps[1].argmax()), 16) == (2, 10)
    assert float(maps[0, 5, 3]) == 1.0
    assert float(maps[0, 5, 5]) == pytest.approx(np.exp(-4 / 8))


def test_argmax_point_is_at_the_pixel_centre():
    maps = torch.zeros(1, 8, 8)
    maps[0, 6, 2] = 1
    assert argmax_point(maps).tolist() == [[2.5, 6.5]]


def test_squash_unsquash_round_trip():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1, (100, 2)) * [1273, 711]
    model = squash_points(points, (1273, 711), 512)
    assert np.abs(unsquash_points(model, (1273, 711), 512) - points).max() < 1e-4
    assert squash_points(np.array([[1273.0, 711.0]]), (1273, 711), 512).tolist() == [[512.0, 512.0]]


def test_crop_resize_cuts_the_right_window():
    image = torch.arange(3 * 8 * 8, dtype=torch.float32).reshape(3, 8, 8)
    out = crop_resize([image], [CropWindow(2, 3, 4)], 4)
    assert torch.equal(out[0], image[:, 3:7, 2:6])


def test_check_points_messages():
    with pytest.raises(InputError, match=r"^point 1 \(81, 3\) is outside the image \(80x48 pixels\)$"):
        check_points([[1, 1], [81, 3]], (80, 48))
    with pytest.raises(InputError, match=r"must be a non-empty \(N, 2\) array"):
        check_points(np.zeros((0, 2)), (80, 48))


# --------------------------------------------------------------------------------------------- sigma at other sizes


SEED_SIGMA_512 = 27.97853316316864  # the seed's default, in pixels of its 512 x 512 space


def test_sigma_is_the_seeds_at_512_bit_for_bit_and_scales_with_the_image_size():
    from vidcorr import Config

    assert Config().sigma_px(512) == SEED_SIGMA_512  # the paper preset, unchanged
    assert Config.preset("paper").sigma_px(512) == SEED_SIGMA_512
    assert Config(image_size=768).sigma_px(768) == SEED_SIGMA_512 * 768 / 512 == 41.96779974475296
    assert Config().sigma_px(64) == SEED_SIGMA_512 / 8  # the tiny model's native size


def test_the_fit_at_768_draws_its_target_with_the_scaled_sigma(tiny, monkeypatch):
    """A one-step fit at 768: the Gaussian target it trains on has sigma = 27.978... * 768 / 512, and its value
    30 pixels right of and 40 below the point's crop position is exp(-2500 / (2 sigma^2)) = 0.49179, computed here."""
    import vidcorr
    from vidcorr import Config
    from vidcorr.method import fit as fit_module

    seen = []

    def recording(centers_xy, size, sigma):
        maps = gaussian_targets(centers_xy, size, sigma)
        seen.append((centers_xy.clone(), size, sigma, maps))
        return maps

    monkeypatch.setattr(fit_module, "gaussian_targets", recording)
    cfg = Config(image_size=768, num_steps=1, restarts=1, noise="none", crop_percent=100.0)
    image = np.zeros((96, 96, 3), dtype=np.uint8)
    vidcorr.fit(tiny, image, np.array([[30.0, 20.0]]), cfg)  # (240, 160) in the 768 space, one full-frame crop
    (centers, size, sigma, maps), = seen
    sigma_768 = 27.97853316316864 * 768 / 512
    assert (size, sigma) == (768, sigma_768)
    assert centers.tolist() == [[240.0, 160.0]]
    expected = np.exp(-(30**2 + 40**2) / (2 * sigma_768**2))  # 0.49179...
    assert float(maps[0, 160 + 40, 240 + 30]) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.4917895, rel=1e-6)
