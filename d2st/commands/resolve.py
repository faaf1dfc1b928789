"""``d2st resolve --settings JSON --out FILE``: one run's settings -> its frozen spec (config.yaml).

The workflow's rule run_config runs it once per run. :func:`d2st.config.resolve` (the only
resolver) validates the settings, applies the official schedule, derives ``run.name`` and
``metric.aux_classes`` (from the train shards) and the spec is written as YAML; ``d2st train
--config FILE`` then only reads it. A run whose lr is chosen on the validation classes takes it
from the selection table (``--lr-table`` with ``--method``, the run's method key).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--settings",
        required=True,
        help="the run's settings as a JSON mapping (the sections of a run config)",
    )
    p.add_argument("--out", required=True, help="where the spec (YAML) goes")
    p.add_argument("--lr-table", help="lr selection table (rule select_lr); needs --method")
    p.add_argument("--method", help="method key whose chosen lr the run takes")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. train.episodes=100")


def main(args: argparse.Namespace) -> int:
    import json

    from d2st.config import resolve
    from d2st.data.shards import count_classes
    from d2st.errors import UserError
    from d2st.plan import chosen_lr, lr_overrides

    if bool(args.lr_table) != bool(args.method):
        raise UserError("--lr-table and --method go together")
    try:
        settings = json.loads(args.settings)
    except json.JSONDecodeError as e:
        raise UserError(f"--settings is not JSON: {e}") from None
    if not isinstance(settings, dict):
        raise UserError("--settings: a JSON mapping of config sections is expected")
    overrides = list(args.overrides)
    if args.method:
        lr = chosen_lr(args.lr_table, args.method)
        overrides += [f"{k}={v!r}" for k, v in lr_overrides(lr)]
        print(f"{args.lr_table}: {args.method} takes lr {lr:g}")
    spec = resolve(settings, overrides, train_classes=lambda s: count_classes(s.data.train_shards))
    spec.save(args.out)
    print(f"wrote {args.out}")
    return 0
