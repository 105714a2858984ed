"""Manifest and _SUCCESS: totals, canonical bytes, verification against the shards."""

from __future__ import annotations

import json

import pytest
from test_dataset_writer import make_rows

from darkhaloscope.config import config_from_dict, config_hash
from darkhaloscope.dataset import manifest as mf
from darkhaloscope.dataset.writer import write_shard
from darkhaloscope.errors import DatasetError


def _dataset(root, parts=((("train", 0), 4), (("val", 0), 3), (("train", 1), 5))):
    summaries = []
    for (split, part), n in parts:
        s = write_shard(make_rows(n, seed=part), str(root / mf.shard_relpath(split, part)))
        summaries.append({"split": split, "partition": part, "rows": s.rows, "bytes": s.bytes, "sha256": s.sha256, "n_failed": 1})
    return summaries


def test_build_write_read_verify(tmp_path):
    cfg = config_from_dict({"seed": 7})
    summaries = _dataset(tmp_path)
    m = mf.build_manifest(cfg, summaries, {"bank": "s3://k:secret_key=abc@b/bank.h5"})
    assert m["totals"]["rows"] == 12 and m["totals"]["rows_per_split"] == {"train": 9, "val": 3, "test": 0}
    assert m["totals"]["n_failed"] == 3 and m["totals"]["shards"] == 3
    assert m["config_hash"] == config_hash(cfg) and m["seed"] == 7 and m["config"]["seed"] == 7
    assert "abc" not in json.dumps(m["inputs"])  # credentials redacted
    assert [s["path"] for s in m["shards"]] == ["split=train/part-00000.parquet", "split=train/part-00001.parquet", "split=val/part-00000.parquet"]
    assert mf.dumps(m) == mf.dumps(mf.build_manifest(cfg, list(reversed(summaries)), {"bank": "s3://k:secret_key=abc@b/bank.h5"}))
    mf.write_manifest(str(tmp_path), m)
    assert not mf.is_complete(str(tmp_path))
    mf.write_success(str(tmp_path))
    assert mf.is_complete(str(tmp_path))
    assert mf.read_manifest(str(tmp_path)) == m
    assert mf.verify_manifest(str(tmp_path), checksums=True)["totals"]["rows"] == 12
    mf.clear_success(str(tmp_path))
    assert not mf.is_complete(str(tmp_path))


def test_verify_names_the_disagreement(tmp_path):
    cfg = config_from_dict({})
    summaries = _dataset(tmp_path)
    mf.write_manifest(str(tmp_path), mf.build_manifest(cfg, summaries))
    write_shard(make_rows(2), str(tmp_path / mf.shard_relpath("test", 9)))
    with pytest.raises(DatasetError, match="part-00009"):
        mf.verify_manifest(str(tmp_path))
    (tmp_path / mf.shard_relpath("test", 9)).unlink()
    write_shard(make_rows(6), str(tmp_path / mf.shard_relpath("val", 0)))  # wrong row count
    with pytest.raises(DatasetError, match="6 rows, the manifest says 3"):
        mf.verify_manifest(str(tmp_path))
    (tmp_path / mf.shard_relpath("val", 0)).unlink()
    with pytest.raises(DatasetError, match="missing"):
        mf.verify_manifest(str(tmp_path))


def test_duplicate_shard_summaries_are_refused():
    s = {"split": "train", "partition": 0, "rows": 1, "bytes": 1, "sha256": "x"}
    with pytest.raises(DatasetError, match="two summaries"):
        mf.build_manifest(config_from_dict({}), [s, dict(s)])


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(DatasetError, match="manifest not found"):
        mf.read_manifest(str(tmp_path))
