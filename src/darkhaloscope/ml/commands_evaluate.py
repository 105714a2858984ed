"""``darkhaloscope evaluate --run runs/<name> --split test``: metrics JSON + PNG of a run on a split.

Extensible: another stage adds its options in :func:`add_arguments` (an argument group) and its
work in :func:`main` after the split evaluation, using :func:`darkhaloscope.ml.predict.load_run`.
"""

from __future__ import annotations

import argparse
import json

from ..dataset.storage import StorageOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("split evaluation")
    g.add_argument("--run", required=True, help="run folder written by `darkhaloscope train`")
    g.add_argument("--split", default="test", help="dataset split to evaluate (default test); 'none' to skip")
    g.add_argument("--dataset", help="dataset root (default: the one the run was trained on, from run.json)")
    g.add_argument("--out", help="output folder (default <run>/eval)")
    g.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default)")
    g.add_argument("--checkpoint", default="best", choices=("best", "last"), help="which checkpoint to score with")
    g.add_argument("--bootstrap", type=int, help="bootstrap resamples (default train.eval_bootstrap)")
    g.add_argument("--max-rows", type=int, default=0, help="score at most this many rows (hash subset; 0 = all)")
    g.add_argument("--train-filters", action="store_true", help="apply the run's injection filters (default: score every row)")
    g.add_argument("--s3-endpoint", default="", help="S3 endpoint override")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    a = parser.add_argument_group("real-lens anchors (ml/evaluate_anchors.py)")
    a.add_argument("--anchors", help="anchors' host table from `darkhaloscope anchors cutouts` (OUT/anchor_stamps)")
    a.add_argument("--negatives", help="dataset root whose controls (of --negatives-split) are the real negatives")
    a.add_argument("--negatives-split", default="test", help="split of --negatives (default test)")
    a.add_argument("--max-negatives", type=int, default=0, help="score at most this many negatives (0 = all)")
    a.add_argument("--diag-rows", type=int, default=512, help="training rows sampled for the shortcut diagnostics")


def main(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_split
    from .role_metrics import format_role_metrics

    if args.split != "none":
        result = evaluate_split(args.run, args.dataset, args.split, args.out, device=args.device, checkpoint=args.checkpoint,
                                options=StorageOptions(endpoint=args.s3_endpoint), n_boot=args.bootstrap,
                                train_filters=args.train_filters, max_rows=args.max_rows, progress=not args.no_progress)
        m = result["metrics"]
        print(json.dumps({"split": args.split, "auc": m["auc"]["value"],
                          **{k: m[k]["tpr"] for k in m if k.startswith("tpr_at_fpr")}, "ring_test": result["roles"]["ring_test"]}))
        print(format_role_metrics(result["roles"]))
    if args.anchors:
        from .evaluate_anchors import evaluate_run_on_anchors

        res = evaluate_run_on_anchors(args.run, args.anchors, args.negatives, (args.out + "/anchors") if args.out else None,
                                      device=args.device, checkpoint=args.checkpoint, negatives_split=args.negatives_split,
                                      max_negatives=args.max_negatives, diag_dataset=args.dataset, diag_rows=args.diag_rows,
                                      options=StorageOptions(endpoint=args.s3_endpoint))
        print(json.dumps({"anchors": {s: {k: v for k, v in m.items() if k.startswith("recall_p") or k == "n"}
                                      for s, m in res["anchors"]["sets"].items()}}))
    return 0
