"""Spark session factory: the same settings in tests (local[N]) and on EMR (cluster defaults).

Python workers run the driver's interpreter (``spark.pyspark.python``) unless the environment
already says otherwise (EMR sets ``PYSPARK_PYTHON`` to the packed venv).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .worker_memory import spark_executor_env


def get_spark(app_name: str = "darkhaloscope", master: str | None = None, conf: dict[str, Any] | None = None):
    """A SparkSession; ``master`` e.g. ``local[2]`` for tests, None to keep the cluster's."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
        # PySpark starts local workers with $PYSPARK_PYTHON (default: "python3" on PATH, which
        # is not the venv); the spark.pyspark.python conf is read only by spark-submit.
        python = os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (
            builder.config("spark.pyspark.python", python)
            .config("spark.pyspark.driver.python", sys.executable)
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.python.worker.reuse", "true")
        )
    for key, value in spark_executor_env():  # the Python workers keep freed memory (spark/worker_memory.py)
        builder = builder.config(key, value)
    for key, value in (conf or {}).items():
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
