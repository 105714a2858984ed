"""A shard as the writer lays it out (zstd blobs in ~1 MiB pages, several pages per row group,
gzip elsewhere) read by Spark 3.5's own Parquet reader (parquet-mr), the independent reader
here: the same rows, blob for blob, as pyarrow reads and as were written."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from darkhaloscope.dataset.writer import WriterSettings, write_shard

pytestmark = pytest.mark.integration


def test_spark_reads_the_writers_pages(spark, tmp_path):
    rng = np.random.default_rng(5)
    rows = [{
        "task_id": i, "galaxy_id": f"g{i}", "brickname": "1500p100", "ra": 150.0, "dec": 2.0, "split": "train", "role": "injection",
        # ~300 KB blobs (half zeros: zstd has work to do): a batch of 8 rows overflows a page
        "stamp_npz": None if i == 5 else rng.bytes(150_000) + bytes(150_000), "arc_npz": rng.bytes(1000) if i % 2 else None,
        "cutout_ok": i != 5, "arc_snr": float(i), "seed": 1, "config_hash": "h", "code_version": "v",
    } for i in range(40)]
    url = str(tmp_path / "part-00000.parquet")
    write_shard(rows, url, WriterSettings("gzip", 1, 32, "zstd"))
    assert pq.ParquetFile(url).metadata.num_row_groups == 2  # 32 + 8 rows; the blobs of the first in ~4 pages

    got = {r["task_id"]: r for r in spark.read.parquet(url).select("task_id", "stamp_npz", "arc_npz", "arc_snr", "label").collect()}
    assert sorted(got) == list(range(40))
    for row in rows:
        seen = got[row["task_id"]]
        assert (bytes(seen["stamp_npz"]) if seen["stamp_npz"] is not None else None) == row["stamp_npz"]
        assert (bytes(seen["arc_npz"]) if seen["arc_npz"] is not None else None) == row["arc_npz"]
        assert seen["arc_snr"] == pytest.approx(row["arc_snr"]) and seen["label"] == 1
