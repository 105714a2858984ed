"""``darkhaloscope build-tasks``: select LRGs from sweep/Tractor catalogs and write the task table.

In-process by default; ``--spark local[2]`` (or a cluster master) runs the same code as the
Spark job of ``jobs/build_tasks.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/demo.yaml", help="YAML config (tasks section)")
    parser.add_argument("--catalogs", required=True, help="folder or s3:// prefix of sweep-*.fits / tractor-<brick>.fits files")
    parser.add_argument("--out", default=None, help="task table folder (default: paths.tasks)")
    parser.add_argument("--bricks-table", default=None,
                        help="survey-bricks table for psfsize/bx/by fallbacks (default: <catalogs>/../survey-bricks.fits.gz if present)")
    parser.add_argument("--spark", default=None, metavar="MASTER", help="run as a Spark job on this master (e.g. local[2])")


def default_bricks_table(catalogs: str) -> str | None:
    """``<catalogs>/../survey-bricks.fits.gz`` for a local catalogs folder, when it exists."""
    if catalogs.startswith("s3://"):
        return None
    p = Path(catalogs).resolve().parent / "survey-bricks.fits.gz"
    return str(p) if p.is_file() else None


def main(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..dataset.storage import StorageOptions
    from . import tasks

    cfg = load_config(args.config)
    out = args.out or cfg.paths.tasks
    options = StorageOptions(endpoint=cfg.generate.s3_endpoint, region=cfg.generate.s3_region)
    bricks = args.bricks_table or default_bricks_table(args.catalogs)
    t0 = time.perf_counter()
    if args.spark:
        from ..spark.session import get_spark

        spark = get_spark("darkhaloscope-build-tasks", master=args.spark)
        summary = tasks.run(spark, cfg, args.catalogs, out, bricks_table=bricks, options=options)
    else:
        summary = tasks.build_tasks(cfg, args.catalogs, out, bricks_table=bricks, options=options)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(summary))
    return 0
