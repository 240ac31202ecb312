"""benchmarks.speed on the tiny model: the report's structure, its arithmetic and the paths' agreement.

No timing is asserted: only that the harness measures what it says and that the reference and
fast paths it compares locate the same points. One thread: tiny ops on a shared machine otherwise
spend most of their time waiting at OpenMP barriers; main() restores the thread count after.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

# benchmarks/ lives beside the package, outside it; make it importable however pytest was started.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import speed  # noqa: E402

POINTS, REPEATS, CROPS, STEPS = 2, 2, 5, 1


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("speed") / "speed.json"
    report = speed.main(["--arch", "tiny", "--image-size", "64", "--points", str(POINTS), "--restarts", "1",
                         "--steps", str(STEPS), "--crops", str(CROPS), "--repeats", str(REPEATS), "--warmup", "0",
                         "--device", "cpu", "--threads", "1", "--json", str(out)])
    return report, json.loads(out.read_text())


def test_json_is_the_returned_report(written):
    report, on_disk = written
    assert on_disk == json.loads(json.dumps(report))
    assert on_disk["settings"]["arch"] == "tiny" and on_disk["settings"]["device"] == "cpu"
    assert on_disk["machine"]["torch_threads"] >= 1
    assert on_disk["target"] is None  # the CPU target is about SD 1.x at 512 only


def test_fit_structure_and_arithmetic(written):
    fit = written[1]["comparison"]["fit"]
    for path in ("reference", "fast"):
        entry = fit[path]
        assert len(entry["wall_s"]) == REPEATS and len(entry["cpu_s"]) == REPEATS
        assert all(t > 0 for t in entry["wall_s"])
        assert entry["median_wall_s"] == pytest.approx(statistics.median(entry["wall_s"]))
        assert entry["per_keypoint_step_s"] == pytest.approx(entry["median_wall_s"] / STEPS / POINTS)
        # 5 restarts x 129 steps per keypoint, from the time per sample and step (1 restart here).
        assert entry["per_keypoint_paper_s"] == pytest.approx(entry["median_wall_s"] / STEPS / POINTS * 5 * 129)
        assert entry["peak_rss_mib"] > 0 and entry["cuda_peak_mib"] is None
    assert fit["ratio_wall"] == pytest.approx(fit["fast"]["median_wall_s"] / fit["reference"]["median_wall_s"])
    # Same draws, same math: the two paths' embeddings agree to float rounding.
    assert fit["embeddings_max_abs_diff"] < 1e-4


def test_locate_structure_and_agreement(written):
    locate = written[1]["comparison"]["locate"]
    assert locate["points_max_diff_px"] <= 1.0
    assert len(locate["reference"]["points_model"]) == POINTS and len(locate["fast"]["points_model"]) == POINTS
    for path in ("reference", "fast"):
        entry = locate[path]
        assert len(entry["iteration_s"]) == CROPS
        assert entry["later_iterations_measured"] is True  # crop 5 is the first argmax-centred one
        assert sum(entry["iteration_s"]) <= entry["median_wall_s"] * 1.001
        assert entry["per_frame_point_s"] == pytest.approx(entry["median_wall_s"] / POINTS)
    assert locate["ratio_median_wall_s"] == pytest.approx(locate["fast"]["median_wall_s"]
                                                          / locate["reference"]["median_wall_s"])


def test_locate_extrapolation_by_hand():
    # Four corner iterations of 1 s, one later one of 2 s, 1 s outside the iterations; one point,
    # one restart. Paper (5 restarts x 20 crops): (4 * 1 + 16 * 2 + 1) * 5 = 185 s.
    # Fast preset (1 restart x 4 crops): 4 * 1 + 1 = 5 s.
    estimates = speed._locate_estimates([1.0, 1.0, 1.0, 1.0, 2.0], wall_s=7.0, points=1, restarts=1)
    assert estimates["paper_per_frame_point_s"] == pytest.approx(185.0)
    assert estimates["fast_preset_per_frame_point_s"] == pytest.approx(5.0)
    # Without a later iteration measured, later crops are assumed to cost a corner crop's time.
    corners_only = speed._locate_estimates([1.0], wall_s=1.5, points=2, restarts=1)
    assert corners_only["later_iterations_measured"] is False
    assert corners_only["paper_per_frame_point_s"] == pytest.approx((20 * 1.0 + 0.5) * 5 / 2)


def test_breakdown_pieces(tmp_path):
    report = speed.main(["--arch", "tiny", "--image-size", "64", "--breakdown", "--batches", "1,2", "--repeats", "1",
                         "--warmup", "0", "--device", "cpu", "--threads", "1",
                         "--pieces", "vae_encode*,unet_forward+backward*", "--json", str(tmp_path / "b.json")])
    rows = report["breakdown"]["pieces"]
    names = {row["piece"] for row in rows}
    assert names == {"vae_encode", "vae_encode[inference_mode]", "vae_encode[channels_last]",
                     "vae_encode[no_mkldnn]", "unet_forward+backward[explicit,full]",
                     "unet_forward+backward[fused,stop@8]", "unet_forward+backward[fused,stop@8,channels_last]",
                     "unet_forward+backward[fused,stop@8,no_mkldnn]"}
    # The reference configuration (explicit, full) runs at batch 1 only, as the seed does.
    assert sorted(row["batch"] for row in rows) == [1] * 8 + [2] * 7
    assert {row["piece"] for row in rows if row["batch"] == 2} == names - {"unet_forward+backward[explicit,full]"}
    for row in rows:
        assert row["median_per_sample_s"] == pytest.approx(row["median_s"] / row["batch"])
        if row["piece"].startswith("unet_forward+backward"):
            assert row["median_forward_s"] + row["median_backward_s"] == pytest.approx(row["median_s"])


def test_autocast_option_runs_the_fast_path_on_a_configured_copy(tmp_path):
    """--autocast acts on `fast` only; --baseline keeps vidcorr's default fast path beside it."""
    report = speed.main(["--arch", "tiny", "--image-size", "64", "--points", "2", "--restarts", "1", "--steps", "1",
                         "--crops", "1", "--repeats", "1", "--warmup", "0", "--device", "cpu", "--threads", "1",
                         "--autocast", "bfloat16", "--baseline"])
    comparison = report["comparison"]
    assert comparison["fast_options"] == ["autocast_bfloat16"] and comparison["compile_warmup_s"] == {}
    assert set(comparison["paths"]) == {"reference", "fast", "fast_no_levers"}
    fit = comparison["fit"]
    # bfloat16 rounding moves the embeddings a little; the float32 fast path matches the seed's.
    assert 1e-4 < fit["fast"]["embeddings_max_abs_diff"] < 0.05
    assert fit["fast_no_levers"]["embeddings_max_abs_diff"] < 1e-4
    assert "fast (autocast_bfloat16) vs reference" in speed.format_report(report)


def test_labels_mode_times_the_joint_fit_per_k():
    report = speed.main(["--arch", "tiny", "--image-size", "64", "--points", "2", "--restarts", "1", "--steps", "1",
                         "--repeats", "2", "--warmup", "0", "--device", "cpu", "--threads", "1", "--labels", "2,1"])
    rows = report["labels"]["rows"]
    assert [row["labels"] for row in rows] == [1, 2]
    for row in rows:
        assert len(row["wall_s"]) == 2
        assert row["per_point_step_s"] == pytest.approx(row["median_wall_s"] / 2)
        assert row["ratio_to_one_label"] == pytest.approx(row["median_wall_s"] / rows[0]["median_wall_s"])
    assert "x one label" in speed.format_report(report)
