"""``darkhaloscope train --config configs/train.yaml --dataset <root> --out runs/<name> --device cuda|cpu [--resume]``."""

from __future__ import annotations

import argparse
import json
import logging

from ..config import load_config
from ..dataset.storage import StorageOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (train section: configs/train.yaml)")
    parser.add_argument("--dataset", required=True, help="stamp dataset root holding split=train|val|test (path or s3://)")
    parser.add_argument("--out", required=True, help="run folder (runs/<name>)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoints/last.pt")
    parser.add_argument("--epochs", type=int, help="override train.epochs (e.g. to extend a resumed run)")
    parser.add_argument("--num-workers", type=int, help="override train.num_workers")
    parser.add_argument("--s3-endpoint", help="S3 endpoint override (default: generate.s3_endpoint)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(args: argparse.Namespace) -> int:
    from .train import fit  # torch loads only when the verb runs

    overrides = {}
    if args.epochs is not None:
        overrides["train.epochs"] = args.epochs
    if args.num_workers is not None:
        overrides["train.num_workers"] = args.num_workers
    cfg = load_config(args.config, overrides)
    options = StorageOptions(endpoint=args.s3_endpoint if args.s3_endpoint is not None else cfg.generate.s3_endpoint,
                             region=cfg.generate.s3_region)
    summary = fit(cfg, args.dataset, args.out, device=args.device, resume=args.resume, options=options, progress=not args.no_progress)
    last = summary["history"][-1] if summary["history"] else {}
    logging.getLogger(__name__).info("run %s: %d epochs run, best epoch %s", args.out, summary["epochs_run"], summary["best_epoch"])
    print(json.dumps({"run_dir": summary["run_dir"], "best_epoch": summary["best_epoch"],
                      "last_epoch": last.get("epoch"), "val_auc": last.get("val_auc")}))
    return 0
