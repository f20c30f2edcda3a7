"""Re-encode the shipped example clip `workflows/motionsight_example.mp4` (H.264, < 1 MB).

Source: `../shared/videos/desert_train.mp4`, the Pexels clip "pexels_landscape_landscape_7895832"
as published in the MotionVid-QA samples (MotionSight project, Apache-2.0). Needs PyAV (ComfyUI
brings it): `python scripts/make_example_clip.py [SOURCE] [--crf 23]`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=ROOT.parent / "shared/videos/desert_train.mp4")
    parser.add_argument("--out", default=ROOT / "workflows/motionsight_example.mp4")
    parser.add_argument("--crf", type=int, default=23)
    args = parser.parse_args()
    with av.open(str(args.source)) as src, av.open(str(args.out), "w") as dst:
        stream_in = src.streams.video[0]
        out = dst.add_stream("libx264", rate=stream_in.average_rate)
        out.width, out.height = stream_in.codec_context.width, stream_in.codec_context.height
        out.pix_fmt = "yuv420p"  # what browsers play
        out.options = {"crf": str(args.crf), "preset": "slow", "movflags": "+faststart"}
        for frame in src.decode(stream_in):
            for packet in out.encode(frame.reformat(format="yuv420p")):
                dst.mux(packet)
        for packet in out.encode():
            dst.mux(packet)
    size = Path(args.out).stat().st_size
    print(f"{args.out}: {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
