"""spark-submit entry point of the stage job (local mode and EMR alike):

    spark-submit jobs/stage.py --config configs/dr10.yaml --tasks s3://.../tasks \\
        --bricks s3://... (or the portal: https://portal.nersc.gov/cfs/cosmo/data/legacysurvey/dr10/south) \\
        --out s3://.../hosts [--resume]
"""

import argparse
import logging
import sys

from darkhaloscope.spark.worker_memory import set_worker_env

set_worker_env()  # before pyarrow loads (spark/worker_memory.py)
from darkhaloscope.spark import stage as commands  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="stage", description=commands.__doc__.splitlines()[0])
    commands.add_arguments(parser)
    sys.exit(commands.main(parser.parse_args()))
