"""`vidcorr pick` without a browser: the frames and data the page embeds, its assets and CSP, the command
(file, browser opening, --serve, bad input), the points.json reader, and that none of it imports torch.
tests/test_pick_browser.py drives the page itself."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import json
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from equivariant import write_lossless_video
from PIL import Image
from typer.testing import CliRunner

from vidcorr.errors import InputError
from vidcorr.io.points import read_points_file
from vidcorr.io.render import point_colors
from vidcorr.web.pages import page_asset as asset
from vidcorr.web.pick import build_pick_page, sample_frames
from vidcorr_cli.app import app

ROOT = Path(__file__).resolve().parents[1]
DATA_BLOCK = re.compile(r'<script type="application/json" id="vidcorr-data">(.*?)</script>', re.S)
WIDTH, HEIGHT, NUM_FRAMES = 320, 240, 9
runner = CliRunner()


def frames() -> list[np.ndarray]:
    """Frame t: grey level 25 * t, a white square moving right and a colour bar at the bottom."""
    out = []
    for t in range(NUM_FRAMES):
        frame = np.full((HEIGHT, WIDTH, 3), 25 * t, np.uint8)
        cv2.rectangle(frame, (10 + 30 * t, 20), (60 + 30 * t, 70), (255, 255, 255), -1)
        frame[200:, :, 0] = 255
        out.append(frame)
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pick") / "clip.avi"
    write_lossless_video(path, frames())
    return path


def page_data(page: Path) -> dict:
    return json.loads(DATA_BLOCK.search(page.read_text(encoding="utf-8")).group(1))


def decode(uri: str) -> np.ndarray:
    prefix = "data:image/jpeg;base64,"
    assert uri.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):]))).convert("RGB"))


# ---------------------------------------------------------------------------------------------- the data


@pytest.mark.parametrize(("num_frames", "count", "expected"), [
    (9, 5, [0, 2, 4, 6, 8]), (10, 4, [0, 3, 6, 9]), (100, 3, [0, 50, 99]), (3, 10, [0, 1, 2]), (7, 1, [0]),
    (11, 2, [0, 10]),
])
def test_sample_frames_spreads_them_evenly_first_and_last_included(num_frames, count, expected):
    assert sample_frames(num_frames, count) == expected


def test_sample_frames_refuses_bad_counts():
    with pytest.raises(InputError, match="frame count 0 is invalid"):
        sample_frames(10, 0)
    with pytest.raises(InputError, match="no frames"):
        sample_frames(0, 5)


def test_the_page_embeds_the_sampled_frames_shrunk_and_the_video_size(clip, tmp_path):
    data = page_data(build_pick_page(clip, tmp_path / "p.html", frames=5, max_side=100))
    assert data["size"] == [WIDTH, HEIGHT] and data["num_frames"] == NUM_FRAMES and data["fps"] == 12.0
    assert data["video"] == str(clip) and data["file_name"] == "clip.avi"
    assert data["format"] == "vidcorr-points" and data["version"] == 1
    assert [f["frame"] for f in data["frames"]] == [0, 2, 4, 6, 8]
    source = frames()
    for entry in data["frames"]:
        picture = decode(entry["src"])
        assert picture.shape == (75, 100, 3)  # longer side 100, aspect kept
        expected = np.asarray(Image.fromarray(source[entry["frame"]]).resize((100, 75), Image.Resampling.BOX))
        assert np.abs(picture.astype(int) - expected).mean() < 4  # JPEG at quality 85
    # Never enlarged: a larger --max-side keeps the video's own size.
    big = page_data(build_pick_page(clip, tmp_path / "q.html", frames=1, max_side=2000))["frames"]
    assert [f["frame"] for f in big] == [0] and decode(big[0]["src"]).shape == (HEIGHT, WIDTH, 3)


def test_the_palette_is_renders_point_colours(clip, tmp_path):
    palette = page_data(build_pick_page(clip, tmp_path / "p.html", frames=1))["palette"]
    rgb = point_colors(len(palette))
    assert len(palette) == 1024
    assert palette == [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb.tolist()]


def test_the_page_is_the_package_assets_with_a_csp_of_their_hashes(clip, tmp_path):
    html = build_pick_page(clip, tmp_path / "p.html", frames=2).read_text(encoding="utf-8")
    script, style = asset("common.js") + "\n" + asset("pick.js"), asset("pick.css")  # the shared helpers first
    assert f"<script>{script}</script>" in html and f"<style>{style}</style>" in html

    def sha(text: str) -> str:
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1)
    assert f"script-src '{sha(script)}'" in csp and f"style-src '{sha(style)}'" in csp
    assert "default-src 'none'" in csp and "img-src data:" in csp
    # Package data: every asset is matched by a pyproject package-data pattern, so wheels ship them.
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "vidcorr.web.assets"]
    folder = ROOT / "vidcorr" / "web" / "assets"
    assets = sorted(p.name for p in folder.iterdir() if p.suffix != ".py" and p.name != "__pycache__")
    assert {"pick.html", "pick.js", "pick.css"} <= set(assets)
    assert [a for a in assets if not any(fnmatch.fnmatch(a, p) for p in patterns)] == []


def test_names_with_markup_stay_text_inside_the_data_block(clip, tmp_path):
    evil = "</script><script>window.__x=1</script><!--'x.avi"  # as the command would name the video
    html = build_pick_page(clip, tmp_path / "p.html", frames=2, video_arg=evil).read_text(encoding="utf-8")
    assert html.count("<script") == 2 and html.count("</script>") == 2  # the data block and the page's script
    data = page_data(tmp_path / "p.html")
    assert data["video"] == evil and data["file_name"] == "script><!--'x.avi"  # after the last /
    assert data["video_arg"] == "'</script><script>window.__x=1</script><!--'\"'\"'x.avi'"  # shell-quoted


# ------------------------------------------------------------------------------------------- the command


def test_pick_writes_the_page_next_to_where_it_runs_and_opens_it(clip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    result = runner.invoke(app, ["pick", str(clip), "--frames", "3"])
    assert result.exit_code == 0, result.output
    page = tmp_path / "clip_pick.html"
    assert result.output == "wrote clip_pick.html\n"
    assert opened == [page.resolve().as_uri()]
    assert [f["frame"] for f in page_data(page)["frames"]] == [0, 4, 8]
    monkeypatch.setattr("webbrowser.open", lambda url: False)
    result = runner.invoke(app, ["pick", str(clip), "-o", str(tmp_path / "other.html")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"no browser found here: open {(tmp_path / 'other.html').as_uri()} in one"
    assert len(page_data(tmp_path / "other.html")["frames"]) == NUM_FRAMES  # --frames 50 > 9 frames: all


def test_pick_serve_serves_the_page_until_ctrl_c(clip, tmp_path, monkeypatch):
    import http.server

    fetched = {}

    def serve_once(server, poll_interval=0.5):
        host, port = server.server_address[:2]
        thread = threading.Thread(target=server.handle_request)
        thread.start()
        with urllib.request.urlopen(f"http://{host}:{port}/p.html", timeout=10) as response:
            fetched["page"] = response.read()
        thread.join()
        fetched["host"] = host
        raise KeyboardInterrupt

    monkeypatch.setattr(http.server.ThreadingHTTPServer, "serve_forever", serve_once)
    result = runner.invoke(app, ["pick", str(clip), "-o", str(tmp_path / "p.html"), "--serve", "--port", "0",
                                 "--no-open", "--frames", "2"])
    assert result.exit_code == 0, result.output
    assert fetched["host"] == "127.0.0.1" and fetched["page"] == (tmp_path / "p.html").read_bytes()
    assert "serving" in result.output and result.output.strip().endswith("stopped")


@pytest.mark.parametrize(("args", "message"), [
    (lambda clip, tmp: [str(tmp / "nope.mp4")], lambda clip, tmp: f"error: video '{tmp / 'nope.mp4'}' does not exist"),
    (lambda clip, tmp: [str(clip), "--frames", "0"],
     lambda clip, tmp: "error: --frames 0 is invalid: it must be between 1 and 500"),
    (lambda clip, tmp: [str(clip), "--max-side", "8"],
     lambda clip, tmp: "error: --max-side 8 is invalid: it must be at least 16 pixels"),
    (lambda clip, tmp: [str(clip), "-o", str(tmp)],
     lambda clip, tmp: f"error: output '{tmp}' is a folder; give a file name such as pick.html"),
    (lambda clip, tmp: [str(clip), "-o", str(tmp / "missing" / "p.html")],
     lambda clip, tmp: f"error: output folder '{tmp / 'missing'}' does not exist"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(clip, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["pick", *args(clip, tmp_path), "--no-open"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [message(clip, tmp_path)]
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def test_pick_refuses_to_replace_a_file_without_overwrite(clip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    page = tmp_path / "mine.html"
    page.write_text("my own page")
    result = runner.invoke(app, ["pick", str(clip), "-o", str(page), "--no-open", "--frames", "2"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: output file '{page}' already exists; pass --overwrite to replace it"]
    assert page.read_text() == "my own page"
    # The default name too: nothing is replaced silently.
    (tmp_path / "clip_pick.html").write_text("old")
    result = runner.invoke(app, ["pick", str(clip), "--no-open", "--frames", "2"])
    assert result.exit_code == 2 and (tmp_path / "clip_pick.html").read_text() == "old"
    result = runner.invoke(app, ["pick", str(clip), "-o", str(page), "--no-open", "--frames", "2", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert [f["frame"] for f in page_data(page)["frames"]] == [0, 8]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_pick.html", "mine.html"]


def test_pick_never_writes_over_its_video(clip, tmp_path):
    video = tmp_path / "copy.avi"
    video.write_bytes(clip.read_bytes())
    result = runner.invoke(app, ["pick", str(video), "-o", str(video), "--no-open", "--frames", "2", "--overwrite"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: output '{video}' is the input video; give another file name such as pick.html"]
    assert video.read_bytes() == clip.read_bytes()


# ----------------------------------------------------------------------------------------- points.json


def test_points_file_reads_the_pickers_points_json(tmp_path):
    document = {"format": "vidcorr-points", "version": 1, "video": "clip.mp4", "size": [320, 240], "num_frames": 9,
                "points": [{"id": 0, "t": 0, "x": 12.5, "y": 30.25}, {"id": 1, "t": 4, "x": 300, "y": 0.5}]}
    path = tmp_path / "points.json"
    path.write_text(json.dumps(document))
    labels = read_points_file(path)
    assert labels.ids == ("0", "1") and labels.counts.tolist() == [1, 1]
    np.testing.assert_array_equal(labels.queries, [[0, 12.5, 30.25], [4, 300, 0.5]])
    path.write_text(json.dumps({**document, "version": 2}))
    with pytest.raises(InputError, match=r"is vidcorr-points version 2; this vidcorr reads version 1"):
        read_points_file(path)


def test_track_refuses_a_picked_point_outside_the_video(clip, tmp_path):
    path = tmp_path / "points.json"
    path.write_text(json.dumps({"format": "vidcorr-points", "version": 1,
                                "points": [{"t": 3, "x": 400.0, "y": 10.0}]}))
    result = runner.invoke(app, ["track", str(clip), "--points-file", str(path), "--model", "tiny", "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["error: point 0 (400, 10) is outside the frame (320x240 pixels)"]


# ------------------------------------------------------------------------------------------------- no torch

NO_TORCH = """
import importlib.util, pathlib, sys, traceback
root = pathlib.Path(sys.argv[1])


class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"torch is blocked here (importing {name})")


sys.meta_path.insert(0, BlockTorch())
if sys.argv[2] == "bypass-package-init":
    # vidcorr/__init__.py imports the model (torch) today: load the package without running it, to see what
    # the modules under test import themselves.
    spec = importlib.util.spec_from_file_location("vidcorr", root / "vidcorr" / "__init__.py",
                                                  submodule_search_locations=[str(root / "vidcorr")])
    sys.modules["vidcorr"] = importlib.util.module_from_spec(spec)  # never executed
try:
    import vidcorr_cli.export, cli.pick
except ImportError:
    stack = traceback.format_exc()
    print("package-init-needs-torch" if "vidcorr/__init__.py" in stack else stack)
    sys.exit(0)
import numpy as np
from vidcorr.io.export import export_tracks
from vidcorr.io.tracks import Tracks
from vidcorr.web.pick import build_pick_page
out = pathlib.Path(sys.argv[3])
tracks = Tracks(points=np.ones((2, 1, 2)), visible=np.ones((2, 1)), confidence=np.ones((2, 1)),
                queries=[[0, 1, 1]], frame_indices=[0, 1], fps=10, size=(8, 8))
for fmt, name in (("dlc", "t.csv"), ("tapvid", "t.npz"), ("cotracker", "c.npz")):
    export_tracks(tracks, fmt, out / name)
build_pick_page(sys.argv[4], out / "p.html", frames=2)
print("ran without torch", "torch" in sys.modules)
"""


def _without_torch(mode: str, clip: Path, tmp_path: Path) -> str:
    """Run the commands' modules with torch's import blocked; what they print."""
    result = subprocess.run([sys.executable, "-c", NO_TORCH, str(ROOT), mode, str(tmp_path), str(clip)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_pick_and_export_import_no_torch_themselves(clip, tmp_path):
    assert _without_torch("bypass-package-init", clip, tmp_path) == "ran without torch False"
    assert (tmp_path / "p.html").is_file() and (tmp_path / "t.csv").is_file()


def test_pick_and_export_import_no_torch(clip, tmp_path):
    assert _without_torch("plain", clip, tmp_path) == "ran without torch False"
