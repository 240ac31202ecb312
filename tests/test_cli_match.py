import csv
import json

import numpy as np
import pytest
from conftest import random_image
from PIL import Image
from typer.testing import CliRunner

from vidcorr_cli.app import app

runner = CliRunner()
FAST = ["--model", "tiny", "--preset", "fast", "--steps", "2", "--image-size", "64", "--device", "cpu"]


@pytest.fixture
def pair(tmp_path):
    Image.fromarray(random_image(48, 80, seed=1)).save(tmp_path / "src.png")
    Image.fromarray(random_image(72, 56, seed=2)).save(tmp_path / "trg.jpg")
    return tmp_path / "src.png", tmp_path / "trg.jpg"


def test_match_writes_the_three_outputs(tmp_path, pair):
    out = tmp_path / "out"
    result = runner.invoke(app, ["match", str(pair[0]), str(pair[1]), "--points", "10,20; 40.5,30", "-o", str(out),
                                 "--save-embeddings", str(tmp_path / "e.safetensors"), *FAST])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "matches.json").read_text())
    assert data["source_size"] == [80, 48] and data["target_size"] == [56, 72]
    assert [m["source"] for m in data["matches"]] == [[10.0, 20.0], [40.5, 30.0]]
    for m in data["matches"]:
        assert 0 <= m["target"][0] <= 56 and 0 <= m["target"][1] <= 72 and 0 <= m["confidence"] <= 1
    assert data["config"]["restarts"] == 1 and data["config"]["num_steps"] == 2 and data["model"] == "tiny"
    rows = list(csv.DictReader((out / "matches.csv").open()))
    assert len(rows) == 2 and float(rows[1]["src_x"]) == 40.5
    assert float(rows[0]["trg_x"]) == pytest.approx(data["matches"][0]["target"][0], abs=1e-3)
    image = np.asarray(Image.open(out / "matches.jpg"))
    assert image.shape == (72, 80 + 56, 3)
    assert (tmp_path / "e.safetensors").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["matches.csv", "matches.jpg", "matches.json"]


def test_points_file_csv_and_json_give_the_same_run(tmp_path, pair):
    (tmp_path / "p.csv").write_text("x,y\n10,20\n40.5,30\n")
    (tmp_path / "p.json").write_text(json.dumps({"points": [{"x": 10, "y": 20}, {"x": 40.5, "y": 30}]}))
    outs = []
    for name in ("p.csv", "p.json"):
        out = tmp_path / name.replace(".", "_")
        result = runner.invoke(app, ["match", str(pair[0]), str(pair[1]), "--points-file", str(tmp_path / name),
                                     "-o", str(out), *FAST])
        assert result.exit_code == 0, result.output
        outs.append(json.loads((out / "matches.json").read_text())["matches"])
    assert outs[0] == outs[1]


@pytest.mark.parametrize(("args", "message"), [
    (["--points", "10,20;40"], "error: malformed --points entry '40': expected 'x,y;x,y'"),
    (["--points", "a,b"], "error: malformed --points entry 'a,b': not numbers"),
    (["--points", "10,20;81,3"], "error: point 1 (81, 3) is outside the source image src.png (80x48 pixels)"),
    (["--points", "10,20", "--preset", "turbo"], "error: unknown preset 'turbo'; choose one of paper, balanced, fast"),
    ([], "error: give the points with exactly one of --points 'x,y;x,y' or --points-file FILE"),
    (["--points", "10,20", "--dtype", "float16", "--autocast", "float16"],
     "error: --autocast float16 needs float32 weights: drop --dtype float16"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, pair, args, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["match", str(pair[0]), str(pair[1]), "-o", str(out), "--model", "tiny", *args])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [message]
    assert not out.exists()


def test_missing_and_unreadable_images(tmp_path, pair):
    (tmp_path / "text.jpg").write_text("not an image")
    for bad, message in [(tmp_path / "nope.png", f"error: image '{tmp_path / 'nope.png'}' does not exist"),
                         (tmp_path / "text.jpg", f"error: cannot read image '{tmp_path / 'text.jpg'}': ")]:
        result = runner.invoke(app, ["match", str(pair[0]), str(bad), "--points", "1,1", "-o", str(tmp_path / "o"),
                                     "--model", "tiny"])
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message)
        assert not (tmp_path / "o").exists()


def test_unwritable_out_fails_before_any_work(tmp_path, pair):
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["match", str(pair[0]), str(pair[1]), "--points", "1,1", "-o", str(tmp_path / "file"),
                                 *FAST])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: output folder '{tmp_path / 'file'}' is a file"]



def test_error_text_in_brackets_is_printed_as_is(capsys):
    from vidcorr_cli.common import fail

    assert fail("expected src_kps as a list of [x, y]").exit_code == 2
    assert capsys.readouterr().err == "error: expected src_kps as a list of [x, y]\n"


def test_full_size_model_on_cpu_prints_an_estimate_first(tmp_path, pair, monkeypatch):
    from vidcorr.method.model import LDM

    monkeypatch.setattr(LDM, "is_full_size", property(lambda self: True))
    result = runner.invoke(app, ["match", str(pair[0]), str(pair[1]), "--points", "10,20", "-o", str(tmp_path / "o"),
                                 *FAST])
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if "full-size model on a CPU" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: a full-size model on a CPU: about ")
    assert "one UNet forward takes" in warning[0]


def test_autocast_is_applied_and_recorded(tmp_path, pair):
    outs = {}
    for autocast in ("none", "bfloat16"):
        out = tmp_path / autocast
        result = runner.invoke(app, ["match", str(pair[0]), str(pair[1]), "--points", "10,20;40.5,30", "-o", str(out),
                                     "--autocast", autocast, *FAST])
        assert result.exit_code == 0, result.output
        outs[autocast] = json.loads((out / "matches.json").read_text())
    assert outs["none"]["autocast"] is None and outs["bfloat16"]["autocast"] == "bfloat16"
    # --autocast auto is off for the tiny model on a CPU whatever the preset.
    result = runner.invoke(app, ["match", str(pair[0]), str(pair[1]), "--points", "10,20;40.5,30", "-o",
                                 str(tmp_path / "auto"), *FAST])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "auto" / "matches.json").read_text())["matches"] == outs["none"]["matches"]


def test_precision_defaults_per_preset_and_device(monkeypatch):
    import torch

    from vidcorr_cli.common import Autocast, DType, precision

    # paper: float32 everywhere unless --autocast says otherwise (the seed ran float32).
    for device in ("cuda", "cpu", "mps"):
        assert precision(device, DType.auto, Autocast.auto, "paper") == (torch.float32, None)
    assert precision("cuda", DType.auto, Autocast.auto) == (torch.float32, None)  # the default preset is paper
    assert precision("cuda", DType.auto, Autocast.float16, "paper") == (torch.float32, torch.float16)
    # Presets that change the math: autocast on CUDA, bfloat16 where the GPU has it, else float16.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert precision("cuda", DType.auto, Autocast.auto, "fast") == (torch.float32, torch.bfloat16)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision("cuda", DType.auto, Autocast.auto, "balanced") == (torch.float32, torch.float16)
    # On a CPU, a small model stays float32 (the rule for full-size models: tests/test_autocast_policy.py).
    assert precision("cpu", DType.auto, Autocast.auto, "fast", full_size=False) == (torch.float32, None)
    assert precision("cuda", DType.float16, Autocast.auto, "fast") == (torch.float16, None)
    assert precision("cuda", DType.auto, Autocast.bfloat16) == (torch.float32, torch.bfloat16)
    assert precision("cuda", DType.auto, Autocast.none, "fast") == (torch.float32, None)
