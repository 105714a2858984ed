"""spark-submit entry point of the generate job (local mode and EMR alike):

    spark-submit jobs/generate.py --config configs/dr10.yaml --tasks s3://... --bricks s3://... \\
        --bank s3://.../bank.h5 --out s3://.../dataset [--resume]
"""

import argparse
import logging
import sys

from darkhaloscope.spark.worker_memory import set_worker_env

set_worker_env()  # before pyarrow loads (spark/worker_memory.py)
from darkhaloscope.spark import commands  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="generate", description=commands.__doc__.splitlines()[0])
    commands.add_arguments(parser)
    sys.exit(commands.main(parser.parse_args()))
