"""Which library should write vidcorr's H.264? PyAV (`av`) against imageio-ffmpeg, on the same frames.

    python -m benchmarks.h264_writers --json h264.json

Both wheels ship FFmpeg with libx264. Each writer encodes the same frames (vidcorr's sample scene)
with libx264, yuv420p, the same CRF and preset, into .mp4; odd sides are padded to even ones by
repeating the last column/row before encoding (libx264 cannot encode odd sides in yuv420p), so both
get identical pixels. The harness reports wall time, file size, the codec and pixel format read back
from the file with PyAV, and the mean absolute error of the decoded frames against the input.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

from vidcorr.io.sample import synthetic_frames

CRF = 20
PRESET = "veryfast"


def _pad_even(frames: np.ndarray) -> np.ndarray:
    h, w = frames.shape[1:3]
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def write_pyav(path: Path, frames: np.ndarray, fps: float) -> None:
    import av

    frames = _pad_even(frames)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(CRF), "preset": PRESET}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def write_imageio_ffmpeg(path: Path, frames: np.ndarray, fps: float) -> None:
    import imageio_ffmpeg

    frames = _pad_even(frames)
    size = (frames.shape[2], frames.shape[1])
    writer = imageio_ffmpeg.write_frames(
        str(path), size, fps=fps, codec="libx264", pix_fmt_out="yuv420p", macro_block_size=1,
        output_params=["-crf", str(CRF), "-preset", PRESET],
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def probe(path: Path, frames: np.ndarray) -> dict:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec, pix_fmt = stream.codec_context.name, stream.codec_context.pix_fmt
        size = (stream.codec_context.width, stream.codec_context.height)
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    h, w = frames.shape[1:3]
    err = float(np.abs(decoded[:, :h, :w].astype(np.int16) - frames).mean()) if len(decoded) == len(frames) else None
    return {"codec": codec, "pix_fmt": pix_fmt, "coded_size": size, "frames": len(decoded), "mean_abs_error": err}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    clips = {"640x360x300": synthetic_frames(300, (640, 360))[0], "333x201x60": synthetic_frames(60, (333, 201))[0]}
    writers = {"pyav": write_pyav, "imageio-ffmpeg": write_imageio_ffmpeg}
    rows = []
    with TemporaryDirectory() as tmp:
        for clip, frames in clips.items():
            for name, write in writers.items():
                times = []
                for r in range(args.repeats):
                    path = Path(tmp) / f"{name}-{clip}-{r}.mp4"
                    began = time.perf_counter()
                    write(path, frames, 30.0)
                    times.append(time.perf_counter() - began)
                row = {"clip": clip, "writer": name, "wall_s_median": float(np.median(times)),
                       "bytes": path.stat().st_size, **probe(path, frames)}
                rows.append(row)
                print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
