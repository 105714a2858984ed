"""Readers: read_split / iter_batches over a written dataset, local and on the S3 server."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
from test_dataset_writer import make_rows

from darkhaloscope.dataset.manifest import shard_relpath
from darkhaloscope.dataset.reader import iter_batches, read_split
from darkhaloscope.dataset.stamp import decode_stamp
from darkhaloscope.dataset.storage import StorageOptions, join
from darkhaloscope.dataset.writer import write_shard


def _write(root, options=None):
    expected = {}
    for split, part, n in (("train", 0, 5), ("train", 3, 4), ("val", 1, 6)):
        rows = make_rows(n, seed=part)
        for r in rows:
            r["split"] = split
            r["task_id"] += 100 * part
        write_shard(rows, join(root, shard_relpath(split, part)), options=options)
        expected.setdefault(split, []).extend(rows)
    return expected


def _check(root, expected, options=None):
    train = read_split(root, "train", columns=["task_id", "arc_snr", "stamp_npz"], options=options)
    assert train.column_names == ["task_id", "arc_snr", "stamp_npz"]
    assert sorted(train["task_id"].to_pylist()) == sorted(r["task_id"] for r in expected["train"])
    by_id = {r["task_id"]: r for r in expected["train"]}
    tid = train["task_id"][0].as_py()
    np.testing.assert_array_equal(decode_stamp(train["stamp_npz"][0].as_py())["image"], decode_stamp(by_id[tid]["stamp_npz"])["image"])
    inj = read_split(root, "val", columns=["task_id", "role"], filter=pc.field("role") == "injection", options=options)
    assert sorted(inj["task_id"].to_pylist()) == sorted(r["task_id"] for r in expected["val"] if r["role"] == "injection")
    assert read_split(root, "val", columns=["task_id"], options=options).num_rows == len(expected["val"])
    n = sum(b.num_rows for b in iter_batches(root, None, columns=["task_id"], batch_size=4, options=options))
    assert n == sum(len(v) for v in expected.values())


def test_read_split_local(tmp_path):
    root = str(tmp_path / "demo")
    expected = _write(root)
    (tmp_path / "demo" / "_manifest.json").write_text("{}")  # ignored by the reader
    (tmp_path / "demo" / "split=train" / ".part-00005.parquet.x.tmp").write_bytes(b"partial")
    _check(root, expected)


def test_read_split_s3(s3_bucket):
    endpoint, bucket = s3_bucket
    opts = StorageOptions(endpoint=endpoint)
    root = f"s3://{bucket}/datasets/demo"
    _check(root, _write(root, opts), opts)
