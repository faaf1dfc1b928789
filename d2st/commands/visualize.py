"""``d2st visualize --run RUN --video VIDEO|SHARDS [--stage S] [--query t,y,x] --out PNG``.

Figure 5 of the paper: the top-100 shifted reference points of each aDSTA pathway, sized by the
attention they receive from all queries, and the top-50 points one query token attends to, over
the T frames of one clip. ``--config`` instead of ``--run`` draws a random-init model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _query(text: str) -> tuple[int, int, int]:
    try:
        t, y, x = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--query {text!r}: expected t,y,x (3 integers)") from None
    return t, y, x


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--run", type=Path, help="trained run directory (config.yaml, model.safetensors)"
    )
    src.add_argument("--config", type=Path, help="run config YAML: a random-init model instead")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of --config")
    p.add_argument(
        "--video", type=Path, default=None,
        help="video file, or shard folder (default: the run's data.test_shards)",
    )  # fmt: skip
    p.add_argument("--video-id", default=None, help="video_id of a clip in the shard folder")
    p.add_argument("--index", type=int, default=None, help="row of the clip in the shard folder")
    p.add_argument(
        "--resize", type=int, default=None,
        help="side a video file is resized to before the centre crop "
        "(default: that of the run's test shards, else the crop)",
    )  # fmt: skip
    p.add_argument(
        "--stage", default=None,
        help="adapter to show: layer1..layer4 (ResNet), block 0..L-1 (ViT) or 'all' "
        "(default: last ResNet stage / middle ViT block with an aDSTA)",
    )  # fmt: skip
    p.add_argument(
        "--query", type=_query, default=None,
        help="query token as t,y,x (frame, pixel row, pixel column of the cropped frame; "
        "default: the most moving cell of the middle frame)",
    )  # fmt: skip
    p.add_argument("--top", type=int, default=100, help="points per pathway by total attention")
    p.add_argument("--top-query", type=int, default=50, help="points per pathway for the query")
    p.add_argument("--points", type=Path, default=None, help="also write every point as CSV")
    p.add_argument("--out", type=Path, required=True, help="output PNG")


def main(args: argparse.Namespace) -> int:
    from d2st.visualize import visualize

    if args.overrides and args.config is None:
        raise SystemExit("d2st visualize: key=value overrides need --config")
    summary = visualize(
        args.out, args.video, run=args.run, config=args.config, overrides=args.overrides,
        stage=args.stage, query=args.query, k_all=args.top, k_query=args.top_query,
        video_id=args.video_id, index=args.index, resize=args.resize, points_csv=args.points,
    )  # fmt: skip
    print(json.dumps(summary, indent=1))
    return 0
