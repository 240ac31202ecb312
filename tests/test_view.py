"""The viewer's data and page without a browser: what match and track write for it, what the page embeds,
and `vidcorr view` (file, browser opening, --serve). tests/test_view_browser.py drives the page itself."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import urllib.request
from pathlib import Path
from urllib.parse import unquote

import cv2
import numpy as np
import pytest
from conftest import random_image
from equivariant import write_lossless_video
from PIL import Image
from synthetic_view import EVIL_CATEGORY, EVIL_IMAGE, EVIL_PAIR_ID, write_eval_run, write_track_run
from typer.testing import CliRunner

import vidcorr
from vidcorr.errors import DataError, InputError
from vidcorr.io.reader import MemoryReader
from vidcorr.io.tracks import Tracks
from vidcorr.pipelines.track import add_reference_maps
from vidcorr.web.pages import embed_json, page_asset
from vidcorr.web.view import build_site, find_indexes
from vidcorr.web.visuals import HEAT_SIDE, KeyFrameMaps, choose_key_frames, colour_heat
from vidcorr_cli.app import app

runner = CliRunner()
TINY = ["--model", "tiny", "--preset", "fast", "--steps", "1", "--image-size", "64", "--device", "cpu"]
DATA_BLOCK = re.compile(r'<script type="application/json" id="vidcorr-data">(.*?)</script>', re.S)


def page_data(page: Path) -> dict:
    return json.loads(DATA_BLOCK.search(page.read_text(encoding="utf-8")).group(1))


def local_file(folder: Path, url: str) -> Path:
    return folder / unquote(url)


def jet(level: int) -> np.ndarray:
    """OpenCV's JET colour of `level` (0..255), RGB."""
    return cv2.cvtColor(cv2.applyColorMap(np.array([[level]], np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)[0, 0]


# ------------------------------------------------------------------------------------------------ embedding


def test_embedded_json_cannot_end_its_script_block():
    data = {"name": "</script><script>alert(1)</script><!-- & \u2028\u2029 \u00e9", "n": [1.5, None, True]}
    text = embed_json(data)
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(text) == data


def test_the_script_builds_no_html_from_strings():
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in page_asset("view.js")


def test_page_of_an_eval_run(tmp_path):
    out = write_eval_run(tmp_path)
    page = build_site(out)
    assert page == out / "index.html"
    html = page.read_text(encoding="utf-8")
    # Exactly the page's two script elements, and a policy that allows only the page's own script.
    assert html.count("</script>") == 2 and html.count("<script") == 2
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html
    assert set(re.findall(r"\w+://[^\s\"']*", html)) == {"http://www.w3.org/2000/svg"}  # a name, not fetched

    data = page_data(page)
    index = json.loads((out / "vis" / "index.json").read_text())
    assert data["title"] == "out"
    assert [p["id"] for p in data["pairs"]] == [p["pair_id"] for p in index["pairs"]]
    evil = next(p for p in data["pairs"] if p["category"] == EVIL_CATEGORY)
    assert evil["id"] == EVIL_PAIR_ID and evil["src_name"] == f"{EVIL_IMAGE}.jpg"
    for pair, entry in zip(data["pairs"], index["pairs"], strict=True):
        picture = local_file(out, pair["image"])
        assert picture == out / "vis" / entry["image"]
        assert Image.open(picture).size == (pair["width"], pair["height"]) == (160 + 150, 130)
        assert pair["src_width"] == 160  # where the target starts in the picture
        assert pair["pck"] == pytest.approx(entry["pck"]) and pair["alpha"] == 0.1
        for point, kp in zip(pair["points"], entry["points"], strict=True):
            assert (point["src"], point["pred"], point["truth"]) == (kp["src_xy"], kp["pred_xy"], kp["true_xy"])
            assert point["correct"] is kp["correct"]
            assert point["verdicts"]["seed"] == kp["correct_by_protocol"]["seed"]
            assert local_file(out, point["maps"]["src"]) == out / "vis" / kp["maps"]["src"]
            assert point["maps"]["tiles"] == ["layer 5", "layer 8", "mean"]
    assert [p["correct"] for p in data["pairs"][0]["points"]] == [True, False, True]
    # Built from the vis folder itself, the URLs are relative to it instead.
    assert page_data(build_site(out / "vis"))["pairs"][0]["image"] == index["pairs"][0]["image"]


def test_urls_are_percent_encoded(tmp_path):
    vis = tmp_path / "vis"
    (vis / "a#b?c%d").mkdir(parents=True)
    Image.new("RGB", (20, 10)).save(vis / "a#b?c%d" / "pair.png")
    entry = {"pair_id": "p", "category": None, "src_image": "/nowhere/s.jpg", "trg_image": "t.jpg",
             "image": "a#b?c%d/pair.png", "pck": None, "points": [{"src_xy": [1, 2], "pred_xy": [3.0, float("nan")]}]}
    (vis / "index.json").write_text(json.dumps({"version": 1, "pairs": [entry]}))
    pair = page_data(build_site(tmp_path))["pairs"][0]
    assert pair["image"] == "vis/a%23b%3Fc%25d/pair.png"
    assert pair["src_width"] is None  # no maps and no source image: the page shows the picture without lines
    assert pair["points"][0]["pred"] is None and pair["points"][0]["maps"] is None


def test_nothing_to_view_and_malformed_indexes(tmp_path):
    with pytest.raises(InputError, match="nothing to view in .*: expected vis/index.json"):
        find_indexes(tmp_path)
    with pytest.raises(InputError, match="is not a folder"):
        find_indexes(tmp_path / "nope")
    (tmp_path / "vis").mkdir()
    (tmp_path / "vis" / "index.json").write_text("{broken")
    with pytest.raises(DataError, match=r"vis/index.json: not a readable JSON file"):
        build_site(tmp_path)
    (tmp_path / "vis" / "index.json").write_text(json.dumps({"version": 1, "pairs": [{"points": []}]}))
    with pytest.raises(DataError, match=r"vis/index.json: pair 0 has no 'pair_id' or 'points'"):
        build_site(tmp_path)
    assert not (tmp_path / "index.html").exists()


# --------------------------------------------------------------------------------------------- track data


def test_choose_key_frames():
    assert choose_key_frames(range(10), 4) == [0, 3, 6, 9]
    assert choose_key_frames(range(0, 100, 10), 3, always=[25, 70]) == [0, 40, 70, 90]  # 25 is not tracked
    assert choose_key_frames(range(3), 8) == [0, 1, 2]
    assert choose_key_frames(range(5), 0, always=[2]) == [2]
    with pytest.raises(InputError, match="key frame count -1 is invalid"):
        choose_key_frames(range(5), -1)


def test_colour_heat_is_min_max_jet():
    heat = np.zeros((8, 8), np.float32)
    heat[2, 5] = 3.0
    rgb = colour_heat(heat, side=8)
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert rgb[2, 5].tolist() == jet(255).tolist() and rgb[0, 0].tolist() == jet(0).tolist()
    assert (colour_heat(np.full((4, 4), 7.0), side=16) == jet(0)).all()  # constant: all "cold"
    assert colour_heat(np.random.default_rng(0).random((512, 512)), HEAT_SIDE).shape == (HEAT_SIDE, HEAT_SIDE, 3)


def test_track_key_frames_index(tmp_path):
    out, tracks, key_frames = write_track_run(tmp_path)
    index = json.loads((out / "keyframes" / "index.json").read_text())
    assert index["kind"] == "tracks" and index["size"] == [128, 96] and index["trail"] == 3
    assert [f["frame"] for f in index["frames"]] == key_frames == [f["row"] for f in index["frames"]]
    assert [r["frame"] for r in index["references"]] == [2]
    np.testing.assert_allclose(np.array(index["rows"]["points"], np.float64), tracks.points, atol=0.005)
    assert index["rows"]["visible"][6][2] is False
    assert [p["color"] for p in index["points"]] == ["#ff0d0d", "#0d53ff", "#9aff0d"]  # render.point_colors
    frame = index["frames"][2]
    assert np.asarray(Image.open(out / "keyframes" / frame["image"])).shape == (96, 128, 3)
    heat = np.asarray(Image.open(out / "keyframes" / frame["heat"][1]))
    assert heat.shape == (HEAT_SIDE, HEAT_SIDE, 3)
    # Point 1's map on frame 4 peaks in cell (5, 9) of 16 (write_track_run): pixels 8x that at 128.
    peak_cells = {(r // 8, c // 8) for r, c in np.argwhere((heat == jet(255)).all(axis=-1)).tolist()}
    assert peak_cells == {(5, 9)}

    data = page_data(build_site(out))["tracks"]
    assert data["frames"][2]["heat"][1] == "keyframes/frame000004_point001.png"
    assert data["video"] == "clip.mp4" and len(data["rows"]["points"]) == len(tracks.points)


def test_reference_maps_repeat_the_fit_time_locate(tiny, small_cfg):
    frames = [random_image(48, 64, seed=t) for t in range(3)]
    reader = MemoryReader(frames)
    queries = np.array([[1, 20.5, 20.5], [1, 40.5, 30.5], [0, 10.5, 10.5]])
    embeddings = vidcorr.fit_queries(tiny, reader, queries, small_cfg)
    maps = KeyFrameMaps([0, 1])
    located = add_reference_maps(maps, tiny, reader, embeddings, small_cfg)
    confidence = np.zeros(3)
    confidence[[0, 1]], confidence[2] = located[1].confidence, located[0].confidence[0]
    # The same draws as fit_queries' reference locate: the same attention at the same pixels.
    np.testing.assert_allclose(confidence, embeddings.extra["ref_attention"], rtol=1e-6)
    assert sorted(maps.heat) == [0, 1] and sorted(maps.heat[1]) == [0, 1] and sorted(maps.heat[0]) == [2]
    expected = colour_heat(located[1].maps[1].mean(dim=0).numpy(), HEAT_SIDE)
    np.testing.assert_array_equal(maps.heat[1][1], expected)


# ------------------------------------------------------------------------------------------------ commands


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    base = random_image(48, 64, seed=4)
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    write_lossless_video(path, [np.roll(base, 3 * k, axis=1) for k in range(6)], fps=12.0)
    return path


def test_track_writes_key_frames_with_the_tracking_maps(clip, tmp_path, tiny):
    out = tmp_path / "out"
    result = runner.invoke(app, ["track", str(clip), "--points", "10,10;40.5,30.5", "--ref-frame", "2",
                                 "--keyframes", "2", "--no-video", "-o", str(out), *TINY])
    assert result.exit_code == 0, result.output
    assert f"vidcorr view {out}" in result.output
    index = json.loads((out / "keyframes" / "index.json").read_text())
    assert [f["frame"] for f in index["frames"]] == [0, 2, 5]  # the first and the last, plus the query frame
    assert [r["frame"] for r in index["references"]] == [2]
    assert all(name is not None for f in index["frames"] for name in f["heat"])
    tracks = Tracks.load_npz(out / "tracks.npz")
    np.testing.assert_allclose(np.array(index["rows"]["points"], np.float64), tracks.points, atol=0.005)

    # The heat maps are the maps the library's tracking computes on those frames.
    cfg = vidcorr.Config.preset("fast", num_steps=1, image_size=64)
    seen = {}
    vidcorr.track(tiny, clip, np.array([[2, 10, 10], [2, 40.5, 30.5]]), cfg, return_maps=True,
                  on_frame=lambda f, active, loc: seen.setdefault(f, (active, loc.maps)))
    active, maps = seen[5]
    for j, point in enumerate(active.tolist()):
        written = np.asarray(Image.open(out / "keyframes" / index["frames"][2]["heat"][point]))
        np.testing.assert_array_equal(written, colour_heat(maps[j].mean(dim=0).numpy(), HEAT_SIDE))

    result = runner.invoke(app, ["track", str(clip), "--points", "10,10", "--keyframes", "0", "--end", "2",
                                 "--no-video", "-o", str(tmp_path / "none"), *TINY])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "none" / "keyframes").exists()


def test_match_visualize_writes_the_eval_format(tmp_path):
    Image.fromarray(random_image(48, 80, seed=1)).save(tmp_path / "src.png")
    Image.fromarray(random_image(72, 56, seed=2)).save(tmp_path / "trg.jpg")
    out = tmp_path / "out"
    result = runner.invoke(app, ["match", str(tmp_path / "src.png"), str(tmp_path / "trg.jpg"),
                                 "--points", "10,20; 40.5,30", "-o", str(out), "--visualize", *TINY])
    assert result.exit_code == 0, result.output
    matches = json.loads((out / "matches.json").read_text())["matches"]
    index = json.loads((out / "vis" / "index.json").read_text())
    eval_index = json.loads((write_eval_run(tmp_path / "eval") / "vis" / "index.json").read_text())
    (entry,) = index["pairs"]
    assert set(entry) == set(eval_index["pairs"][0]) and index["version"] == eval_index["version"]
    assert set(entry["points"][0]) == set(eval_index["pairs"][0]["points"][0])
    assert entry["pair_id"] == "src.png -> trg.jpg" and entry["pck"] is None and entry["category"] is None
    assert [p["src_xy"] for p in entry["points"]] == [m["source"] for m in matches]
    assert [p["pred_xy"] for p in entry["points"]] == [m["target"] for m in matches]
    assert [p["confidence"] for p in entry["points"]] == [m["confidence"] for m in matches]
    assert all(p["correct"] is None and p["true_xy"] is None for p in entry["points"])
    vis = out / "vis"
    assert np.asarray(Image.open(vis / entry["image"])).shape == (72, 80 + 56, 3)
    layers = vidcorr.Config.preset("fast").layers
    assert entry["points"][1]["maps"]["tiles"] == [f"layer {n}" for n in layers] + ["mean"]
    tiles = len(layers) + 1
    assert np.asarray(Image.open(vis / entry["points"][1]["maps"]["src"])).shape[1] == tiles * 80
    assert np.asarray(Image.open(vis / entry["points"][1]["maps"]["trg"])).shape[1] == tiles * 56

    result = runner.invoke(app, ["view", str(out), "--no-open"])
    assert result.exit_code == 0, result.output
    pair = page_data(out / "index.html")["pairs"][0]
    assert pair["src_width"] == 80 and [p["correct"] for p in pair["points"]] == [None, None]


def test_view_opens_the_page_in_the_browser(tmp_path, monkeypatch):
    out, _, _ = write_track_run(tmp_path)
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    result = runner.invoke(app, ["view", str(out)])
    assert result.exit_code == 0, result.output
    assert opened == [(out / "index.html").resolve().as_uri()]
    assert result.output == f"wrote {out / 'index.html'}\n" and (out / "index.html").is_file()
    monkeypatch.setattr("webbrowser.open", lambda url: False)  # a machine without a browser
    result = runner.invoke(app, ["view", str(out)])
    assert result.output.splitlines()[-1] == f"no browser found here: open {opened[0]} in one"
    result = runner.invoke(app, ["view", str(tmp_path / "nope"), "--no-open"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: '{tmp_path / 'nope'}' is not a folder"]
    assert len(opened) == 1


def test_view_serve_serves_the_folder_until_ctrl_c(tmp_path, monkeypatch):
    import http.server

    out, _, _ = write_track_run(tmp_path)
    fetched = {}

    def serve_once(server, poll_interval=0.5):
        host, port = server.server_address[:2]
        thread = threading.Thread(target=server.handle_request)
        thread.start()
        with urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=10) as response:
            fetched["page"] = response.read()
        thread.join()
        fetched["host"] = host
        raise KeyboardInterrupt

    monkeypatch.setattr(http.server.ThreadingHTTPServer, "serve_forever", serve_once)
    result = runner.invoke(app, ["view", str(out), "--serve", "--port", "0", "--no-open"])
    assert result.exit_code == 0, result.output
    assert fetched["host"] == "127.0.0.1" and fetched["page"] == (out / "index.html").read_bytes()
    assert "serving" in result.output and result.output.strip().endswith("stopped")


def test_view_serve_on_a_busy_port_is_one_line(tmp_path):
    import http.server

    out, _, _ = write_track_run(tmp_path)
    with http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler) as busy:
        port = busy.server_address[1]
        result = runner.invoke(app, ["view", str(out), "--serve", "--port", str(port), "--no-open"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot serve on 127.0.0.1:{port}: ")
