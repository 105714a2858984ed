"""spark-submit entry point: sweep/Tractor catalogs -> task table (Parquet).

    spark-submit jobs/build_tasks.py --config configs/dr10.yaml --catalogs s3://.../sweep --out s3://.../tasks
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--catalogs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bricks-table", default=None)
    ap.add_argument("--master", default=None, help="e.g. local[2]; omit on a cluster")
    args = ap.parse_args(argv)

    from darkhaloscope.config import load_config
    from darkhaloscope.dataset.storage import StorageOptions
    from darkhaloscope.spark.session import get_spark
    from darkhaloscope.survey.tasks import run

    cfg = load_config(args.config)
    spark = get_spark("darkhaloscope-build-tasks", master=args.master)
    options = StorageOptions(endpoint=cfg.generate.s3_endpoint, region=cfg.generate.s3_region)
    print(json.dumps(run(spark, cfg, args.catalogs, args.out, bricks_table=args.bricks_table, options=options)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
