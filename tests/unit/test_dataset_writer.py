"""Shard writer: rows -> Parquet, row groups, checksums, determinism, atomic publish, S3."""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from darkhaloscope.dataset.schema import STAMP_SCHEMA
from darkhaloscope.dataset.stamp import decode_stamp, encode_stamp
from darkhaloscope.dataset.storage import StorageOptions
from darkhaloscope.dataset.writer import (
    ShardWriter,
    WriterSettings,
    read_footer,
    sha256_of,
    write_shard,
)
from darkhaloscope.errors import DatasetError


def make_rows(n, seed=0, size=16):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        image = rng.normal(0, 0.01, (3, size, size)).astype(np.float32)
        invvar = np.full((3, size, size), 1e4, np.float32)
        rows.append({
            "task_id": 1000 + i, "galaxy_id": f"10000_1_{i}", "brickname": "1500p100", "ra": 150.0 + i * 1e-3,
            "dec": 10.0, "split": "train", "role": "injection" if i % 2 else "control",
            "stamp_npz": encode_stamp(image, invvar, np.zeros((size, size), np.int32)),
            "cutout_ok": True, "arc_snr": float(i) if i % 2 else None,
            "seed": 1, "config_hash": "abc", "code_version": "0.1.0",
        })
    return rows


def test_write_read_back_row_groups_and_checksum(tmp_path):
    rows = make_rows(23)
    url = str(tmp_path / "split=train" / "part-00000.parquet")
    summary = write_shard(rows, url, WriterSettings("gzip", 6, row_group_rows=10))
    assert summary.rows == 23
    assert summary.bytes == os.path.getsize(url)
    assert summary.sha256 == hashlib.sha256(open(url, "rb").read()).hexdigest()
    assert sha256_of(url) == (summary.sha256, summary.bytes)
    pf = pq.ParquetFile(url)
    assert pf.metadata.num_row_groups == math.ceil(23 / 10)
    assert [pf.metadata.row_group(i).num_rows for i in range(3)] == [10, 10, 3]
    assert pf.metadata.row_group(0).column(0).compression == "GZIP"
    table = pq.read_table(url)
    assert table.schema.equals(STAMP_SCHEMA, check_metadata=False)
    assert table["task_id"].to_pylist() == [r["task_id"] for r in rows]
    assert table["arc_snr"].to_pylist() == [r["arc_snr"] for r in rows]
    first = decode_stamp(table["stamp_npz"][5].as_py())
    np.testing.assert_array_equal(first["image"], decode_stamp(rows[5]["stamp_npz"])["image"])
    assert [p for p in os.listdir(tmp_path / "split=train")] == ["part-00000.parquet"]  # no temp left


def test_pixel_blobs_take_their_own_codec_and_every_other_column_the_shards(tmp_path):
    """generate.blob_compression: stamp_npz/arc_npz zstd, the rest gzip; read back unchanged."""
    rows = make_rows(9, seed=2)
    url = str(tmp_path / "b.parquet")
    write_shard(rows, url, WriterSettings("gzip", 1, 4, "zstd"))
    meta = pq.ParquetFile(url).metadata
    codecs = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).compression for i in range(meta.num_columns)}
    assert codecs.pop("stamp_npz") == "ZSTD" and codecs.pop("arc_npz") == "ZSTD"
    assert set(codecs.values()) == {"GZIP"}
    assert pq.read_table(url)["stamp_npz"].to_pylist() == [r["stamp_npz"] for r in rows]
    write_shard(rows, str(tmp_path / "s.parquet"), WriterSettings("gzip", 1, 4, "same"))
    meta = pq.ParquetFile(str(tmp_path / "s.parquet")).metadata
    assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"GZIP"}


def test_pixel_blobs_take_their_own_level(tmp_path):
    """generate.blob_compression_level: zstd's fast level -1 for the blobs, gzip 1 for the rest;
    read back unchanged, and the level reaches pyarrow (a different level, different bytes)."""
    rows = make_rows(9, seed=4)
    kwargs = WriterSettings("gzip", 1, 4, "zstd", -1).parquet_kwargs(STAMP_SCHEMA.names)
    assert kwargs["compression_level"]["stamp_npz"] == -1 and kwargs["compression_level"]["arc_npz"] == -1
    assert {v for k, v in kwargs["compression_level"].items() if k not in ("stamp_npz", "arc_npz")} == {1}
    assert WriterSettings("gzip", 1, 4, "zstd").parquet_kwargs(STAMP_SCHEMA.names)["compression_level"]["stamp_npz"] == 1  # None: compression_level
    for row in rows:
        row["stamp_npz"] = np.random.default_rng(row["task_id"]).integers(0, 4, 60_000, np.uint8).tobytes()  # compressible, not trivially
    fast = write_shard(rows, str(tmp_path / "fast.parquet"), WriterSettings("gzip", 1, 4, "zstd", -1))
    slow = write_shard(rows, str(tmp_path / "slow.parquet"), WriterSettings("gzip", 1, 4, "zstd", 19))
    assert fast.sha256 != slow.sha256
    for name in ("fast", "slow"):
        assert pq.read_table(str(tmp_path / f"{name}.parquet"))["stamp_npz"].to_pylist() == [r["stamp_npz"] for r in rows]


def test_blob_column_is_cut_into_pages(tmp_path):
    """A row group's blob column goes out in ~1 MiB pages, not one page per row group (pyarrow's
    default batch of 1024 rows): each zstd page is one zstd frame, so count the frames' magic."""
    rng = np.random.default_rng(6)
    rows = make_rows(24)
    for row in rows:
        row["stamp_npz"] = rng.bytes(100_000) + bytes(200_000)
    url = str(tmp_path / "p.parquet")
    write_shard(rows, url, WriterSettings("gzip", 1, 24, "zstd"))
    col = next(c for c in (pq.ParquetFile(url).metadata.row_group(0).column(i) for i in range(len(STAMP_SCHEMA))) if c.path_in_schema == "stamp_npz")
    with open(url, "rb") as f:
        f.seek(col.data_page_offset)
        chunk = f.read(col.total_compressed_size)
    frames = chunk.count(b"\x28\xb5\x2f\xfd")  # zstd frame magic, little-endian 0xFD2FB528
    assert 3 <= frames <= 24  # 24 rows x 300 KB in batches of 8: ~3 pages (one if unbatched)
    assert pq.read_table(url)["stamp_npz"].to_pylist() == [r["stamp_npz"] for r in rows]


def test_same_rows_give_identical_bytes_and_footer_metadata(tmp_path):
    rows = make_rows(12, seed=3)
    a = write_shard(rows, str(tmp_path / "a.parquet"), WriterSettings("zstd", 3, 5), metadata={"darkhaloscope.config_hash": "abc"})
    b = write_shard(rows, str(tmp_path / "b.parquet"), WriterSettings("zstd", 3, 5), metadata={"darkhaloscope.config_hash": "abc"})
    assert a.sha256 == b.sha256 and a.bytes == b.bytes
    meta = read_footer(str(tmp_path / "a.parquet"))
    assert meta.metadata[b"darkhaloscope.config_hash"] == b"abc"
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_close_metadata_and_streaming_equals_table_write(tmp_path):
    rows = make_rows(7)
    w = ShardWriter(str(tmp_path / "s.parquet"), WriterSettings(row_group_rows=4))
    w.write_rows(rows)
    s = w.close({"darkhaloscope.n_failed": 2})
    assert read_footer(str(tmp_path / "s.parquet")).metadata[b"darkhaloscope.n_failed"] == b"2"
    assert s.rows == 7


def test_abort_keeps_previous_shard_intact(tmp_path):
    url = str(tmp_path / "part-00000.parquet")
    first = write_shard(make_rows(3), url)
    with pytest.raises(RuntimeError):
        with ShardWriter(url) as w:
            w.write_rows(make_rows(5, seed=9))
            raise RuntimeError("executor died mid-shard")
    assert sha256_of(url)[0] == first.sha256
    assert os.listdir(tmp_path) == ["part-00000.parquet"]


def test_missing_and_corrupt_shards_are_named(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_footer(str(tmp_path / "nope.parquet"))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 truncated")
    with pytest.raises(DatasetError, match="bad.parquet"):
        read_footer(str(bad))


def test_write_to_s3_server(s3_bucket):
    endpoint, bucket = s3_bucket
    opts = StorageOptions(endpoint=endpoint)
    url = f"s3://{bucket}/ds/split=val/part-00003.parquet"
    rows = make_rows(9)
    summary = write_shard(rows, url, WriterSettings(row_group_rows=4), opts)
    assert summary.rows == 9
    assert sha256_of(url, opts) == (summary.sha256, summary.bytes)
    import boto3

    body = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").get_object(Bucket=bucket, Key="ds/split=val/part-00003.parquet")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == summary.sha256
