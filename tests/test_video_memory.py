"""Streaming a long video keeps memory flat (issue 3): 2,000 frames of 640x360 are 1.3 GB decoded."""

import cv2
import numpy as np
import pytest

from vidcorr.io.video import decord_available, open_video

FRAMES, WIDTH, HEIGHT = 2000, 640, 360


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "long.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (WIDTH, HEIGHT))
    rng = np.random.default_rng(0)
    tiles = [rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(4)]
    for i in range(FRAMES):
        writer.write(tiles[i % 4])
    writer.release()
    return path


@pytest.mark.parametrize("backend", ["opencv", "decord"])
def test_streaming_2000_frames_keeps_memory_flat(long_video, backend):
    if backend == "decord" and not decord_available():
        pytest.skip("decord has no wheel for this platform")
    reader = open_video(long_video, backend=backend)
    assert reader.info.num_frames == FRAMES
    seen, after_100, peak = 0, None, 0.0
    for batch in reader.iter_frames(batch_size=16):
        seen += len(batch.indices)
        peak = max(peak, rss_mib())
        if after_100 is None and seen >= 100:
            after_100 = rss_mib()
    reader.close()
    assert seen == FRAMES
    # 1,318 MiB of frames went through; what stays resident must not grow with them.
    assert peak - after_100 < 150, (backend, after_100, peak)
