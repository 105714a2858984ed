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
                        help="survey-bricks table for psfsize/bx/by fallbacks (default: the nearest survey-bricks.fits.gz above <catalogs>, if any)")
    parser.add_argument("--photo-z", default="auto",
                        help="folder of the sweeps' photo-z files (DR10: sweep/10.1-photo-z); default: <catalogs>-photo-z when it exists; 'none' to skip")
    parser.add_argument("--spark", default=None, metavar="MASTER", help="run as a Spark job on this master (e.g. local[2])")


def default_bricks_table(catalogs: str) -> str | None:
    """The nearest ``survey-bricks.fits.gz`` in the 4 folders above a local catalogs folder
    (DR10: ``dr10/south/sweep/10.1`` -> ``dr10/survey-bricks.fits.gz``), when one exists."""
    if "://" in catalogs:
        return None
    for parent in list(Path(catalogs).resolve().parents)[:4]:
        p = parent / "survey-bricks.fits.gz"
        if p.is_file():
            return str(p)
    return None


def main(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..dataset.storage import StorageOptions
    from . import tasks

    cfg = load_config(args.config)
    out = args.out or cfg.paths.tasks
    options = StorageOptions(endpoint=cfg.generate.s3_endpoint, region=cfg.generate.s3_region)
    bricks = args.bricks_table or default_bricks_table(args.catalogs)
    photoz = None if str(args.photo_z).lower() == "none" else args.photo_z
    t0 = time.perf_counter()
    if args.spark:
        from ..spark.session import get_spark

        spark = get_spark("darkhaloscope-build-tasks", master=args.spark)
        summary = tasks.run(spark, cfg, args.catalogs, out, bricks_table=bricks, options=options, photoz=photoz)
    else:
        summary = tasks.build_tasks(cfg, args.catalogs, out, bricks_table=bricks, options=options, photoz=photoz)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(summary))
    return 0
