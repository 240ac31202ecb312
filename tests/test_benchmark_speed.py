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

import numpy as np
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
                     "vae_encode[contiguous]", "vae_encode[no_mkldnn]", "unet_forward+backward[explicit,full]",
                     "unet_forward+backward[fused,stop@8]", "unet_forward+backward[fused,stop@8,channels_last]",
                     "unet_forward+backward[fused,stop@8,no_mkldnn]"}
    # The reference configuration (explicit, full) runs at batch 1 only, as the seed does.
    assert sorted(row["batch"] for row in rows) == [1] * 9 + [2] * 8
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


# --- issue 24: --quick, layouts, variants, K labels, the CPU target, decoding --------------------------------
def test_quick_sets_defaults_that_given_options_override():
    quick = speed.parse_args(["--quick"])
    assert (quick.arch, quick.image_size, quick.repeats, quick.warmup, quick.threads, quick.device) == (
        "tiny", 64, 1, 0, 1, "cpu")
    assert speed.parse_args(["--quick", "--repeats", "3", "--image-size", "128"]).repeats == 3
    assert speed.parse_args(["--quick", "--image-size", "128"]).image_size == 128
    assert speed.parse_args([]).arch == "tiny" and speed.parse_args([]).repeats == 3  # no --quick: as before


@pytest.mark.parametrize("argv, message", [
    (["--variants", "fp32,bf8"], "variant 'bf8': precision 'bf8' is not one of fp32, bf16, fp16"),
    (["--variants", "bf16+unet_nhwc"], "variant 'bf16+unet_nhwc': layout 'unet_nhwc' is not one of unet_cl, "
                                       "unet_nchw, vae_cl, vae_nchw"),
    (["--variants", "fp32+unet_cl+unet_nchw"], "variant 'fp32+unet_cl+unet_nchw' gives one module two layouts"),
    (["--labels", "1,0"], "--labels takes label counts >= 1, got 1,0"),
    (["--variants", "fp32", "--labels", "1"], "choose one mode: --variants or --labels"),
    (["--breakdown", "--variants", "fp32"], "choose one mode: --breakdown or --variants"),
])
def test_bad_mode_options_are_refused_in_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        speed.parse_args(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"error: {message}")


def test_variant_names():
    import torch

    assert speed.Variant.parse("fp32") == speed.Variant("fp32", None, ())
    assert speed.Variant.parse("bf16+unet_cl+vae_nchw") == speed.Variant(
        "bf16+unet_cl+vae_nchw", torch.bfloat16, (("unet", torch.channels_last), ("vae", torch.contiguous_format)))


def test_layouts_and_autocast_are_put_back_as_they_were(tiny):
    """vidcorr keeps the VAE channels_last on a CPU; a variant or lever changes it for the block only."""
    import torch

    cl, plain = torch.channels_last, torch.contiguous_format
    assert (speed.memory_format_of(tiny.vae), speed.memory_format_of(tiny.unet)) == (cl, plain)
    with speed.Variant.parse("bf16+unet_cl+vae_nchw").applied(tiny) as layouts:
        assert layouts == {"unet": "channels_last", "vae": "contiguous"}
        assert tiny.autocast == torch.bfloat16
        assert (speed.memory_format_of(tiny.vae), speed.memory_format_of(tiny.unet)) == (plain, cl)
    assert tiny.autocast is None
    assert (speed.memory_format_of(tiny.vae), speed.memory_format_of(tiny.unet)) == (cl, plain)
    with speed.apply_levers(tiny, ["contiguous_vae", "channels_last_unet"]):
        assert (speed.memory_format_of(tiny.vae), speed.memory_format_of(tiny.unet)) == (plain, cl)
    with speed.apply_levers(tiny, ["channels_last_vae"]):
        assert speed.memory_format_of(tiny.vae) == cl
    assert (speed.memory_format_of(tiny.vae), speed.memory_format_of(tiny.unet)) == (cl, plain)


def test_variants_mode_times_each_variant_against_the_first(tmp_path):
    steps, crops = 2, 5
    out = tmp_path / "variants.json"
    report = speed.main(["--quick", "--variants", "fp32,fp32+unet_cl,fp32+vae_nchw,bf16", "--points", "2",
                         "--steps", str(steps), "--crops", str(crops), "--repeats", "2", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    v = report["variants"]
    rows = {row["variant"]: row for row in v["rows"]}
    assert list(rows) == ["fp32", "fp32+unet_cl", "fp32+vae_nchw", "bf16"] and v["baseline"] == "fp32"
    assert rows["fp32"]["layouts"] == {"unet": "contiguous", "vae": "channels_last"}  # vidcorr's own on a CPU
    assert rows["fp32+unet_cl"]["layouts"] == {"unet": "channels_last", "vae": "channels_last"}
    assert rows["fp32+vae_nchw"]["layouts"] == {"unet": "contiguous", "vae": "contiguous"}
    assert (rows["fp32"]["autocast"], rows["bf16"]["autocast"]) == (None, "bfloat16")
    base = rows["fp32"]
    for name, row in rows.items():
        assert len(row["fit"]["wall_s"]) == 2 and len(row["locate"]["wall_s"]) == 2
        assert row["fit"]["per_step_s"] == pytest.approx(row["fit"]["median_wall_s"] / steps)
        assert row["locate"]["per_crop_s"] == pytest.approx(row["locate"]["median_wall_s"] / crops)
        assert len(row["locate"]["iteration_s"]) == crops and len(row["locate"]["points_model"]) == 2
        if name == "fp32":
            assert "pays" not in row
            continue
        assert row["fit_ratio_wall"] == pytest.approx(row["fit"]["median_wall_s"] / base["fit"]["median_wall_s"])
        paired = statistics.median(f / b for f, b in zip(row["locate"]["wall_s"], base["locate"]["wall_s"],
                                                         strict=True))
        assert row["locate_ratio_wall_paired"] == pytest.approx(paired)
        diff = np.sqrt(((np.array(row["locate"]["points_model"]) - np.array(base["locate"]["points_model"])) ** 2)
                       .sum(axis=1))
        assert row["points_max_diff_px"] == pytest.approx(diff.max())
        # The verdict is what its definition says.
        assert row["pays"] == (row["points_max_diff_px"] <= row["points_tolerance_px"]
                               and row["fit_ratio_wall_paired"] < 1 and row["locate_ratio_wall_paired"] < 1)
    # float32 layouts keep the math: embeddings equal to rounding, points compared with no tolerance.
    for name in ("fp32+unet_cl", "fp32+vae_nchw"):
        assert rows[name]["embeddings_max_abs_diff"] < 1e-4 and rows[name]["points_tolerance_px"] == 0.0
    assert 0 < rows["bf16"]["embeddings_max_abs_diff"] < 0.05
    assert rows["bf16"]["points_tolerance_px"] == speed.AUTOCAST_TOLERANCE_PX
    text = speed.format_report(report)
    table = [line.split() for line in text.splitlines()[2:7]]
    assert [cells[0] for cells in table] == ["variant", "fp32", "fp32+unet_cl", "fp32+vae_nchw", "bf16"]
    assert table[1][-1] == "baseline"
    assert [cells[-1] == "pays" for cells in table[2:]] == [rows[name]["pays"] for name in list(rows)[1:]]


def _stand_in_fit_labels(ldm, frames, labels, cfg=None, progress=None, point_ids=None):
    """For a checkout without the several-label fit: the signature of vidcorr.fit_labels, fitting each point's
    labels one frame after another (the harness's arithmetic does not depend on the fit's math)."""
    import vidcorr

    first = None
    for t in sorted(frames):
        points = np.stack([rows[rows[:, 0] == t][0, 1:] for rows in labels.labels])
        emb = vidcorr.fit(ldm, frames[t], points, cfg, progress=progress)
        if first is None:
            first = emb
    return first


def test_labels_mode_joint_against_separate_fits(monkeypatch):
    if speed.find_fit_labels() is None:
        monkeypatch.setattr(speed, "find_fit_labels", lambda: _stand_in_fit_labels)
    report = speed.main(["--quick", "--labels", "4,1,2", "--points", "2", "--steps", "1", "--repeats", "2"])
    labels = report["labels"]
    rows = labels["rows"]
    assert [row["labels"] for row in rows] == [1, 2, 4]
    assert [row["samples_per_step"] for row in rows] == [2, 4, 8]  # points x restarts x K
    for row in rows:
        assert len(row["joint"]["wall_s"]) == 2 and len(row["separate"]["wall_s"]) == 2
        assert row["ratio_wall"] == pytest.approx(row["joint"]["median_wall_s"] / row["separate"]["median_wall_s"])
        assert row["joint_per_sample_step_s"] == pytest.approx(row["joint"]["median_wall_s"] / row["samples_per_step"])
        assert row["joint_over_k_one_label_fits"] == pytest.approx(
            row["joint"]["median_wall_s"] / (row["labels"] * rows[0]["joint"]["median_wall_s"]))
    # One label per point: the joint fit is `fit` itself.
    assert labels["k1_joint_vs_separate_max_abs_diff"] == 0.0
    assert "joint/separate" in speed.format_report(report)


def test_labels_mode_says_so_where_the_joint_fit_is_missing(monkeypatch, capsys):
    monkeypatch.setattr(speed, "find_fit_labels", lambda: None)
    report = speed.main(["--quick", "--labels", "1,2"])
    assert report["labels"] == {"skipped": speed.LABELS_MISSING}
    assert f"skipped: {speed.LABELS_MISSING}" in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("ratio, met", [(0.49, True), (0.5, True), (0.51, False)])
def test_the_cpu_target_is_half_the_seeds_fit_step(ratio, met):
    import argparse

    import torch

    args = argparse.Namespace(arch="sd14", image_size=512)
    comparison = {"fit": {"ratio_wall": ratio, "ratio_cpu": ratio}, "locate": {"points_max_diff_px": 0.0}}
    target = speed._target(args, torch.device("cpu"), comparison)
    assert target["fit_ratio_limit"] == 0.5 and target["fit_ratio_met"] is met and target["points_met"] is True
    assert speed._target(argparse.Namespace(arch="tiny", image_size=64), torch.device("cpu"), comparison) is None


def test_decode_quick_counts_each_frames_decodes(tmp_path):
    """benchmarks.decode on a 12-frame clip: every frame decoded, none more than twice (decode-once)."""
    from benchmarks import decode

    report = decode.main(["--quick", "--json", str(tmp_path / "decode.json")])
    assert json.loads((tmp_path / "decode.json").read_text()) == report
    assert (report["frames"], report["size"], "before" in report) == (12, [160, 120], False)
    (run,) = report["after"]
    assert run["frames"] == 12 and 12 <= run["decoded"] <= 24 and run["max_per_frame"] <= 2
    assert 0 < run["seconds"] < run["process_seconds"]
