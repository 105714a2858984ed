"""The generate job's mechanics with a stand-in row maker (no survey, bank or physics needed):
partitioning, one row per task, failures as rows, resume, determinism, S3 output, and the
Spark and multiprocessing runners giving the same bytes."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark import cloudpickle

from darkhaloscope.config import config_from_dict
from darkhaloscope.dataset import manifest as mf
from darkhaloscope.dataset.reader import read_split
from darkhaloscope.dataset.stamp import decode_stamp
from darkhaloscope.dataset.storage import StorageOptions
from darkhaloscope.errors import DatasetError
from darkhaloscope.ids import assign_roles, assign_splits, make_galaxy_id, make_task_ids, task_rng
from darkhaloscope.spark.job import run, run_multiprocessing
from darkhaloscope.spark.tasks_input import partition_of

pytestmark = pytest.mark.integration
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Spark workers cannot import tests/

N_TASKS, N_BRICKS = 240, 9


def standin_row(task, res):
    """A deterministic fake stamp from the task's own random stream; raises for every 37th task."""
    if task["task_id"] % 37 == 0:
        raise ValueError(f"stand-in failure for task {task['task_id']}")
    rng = task_rng(res.cfg.seed, task["task_id"], "standin")
    return {
        "image": rng.normal(0.0, 0.01, (3, 16, 16)).astype(np.float32),
        "invvar": np.full((3, 16, 16), 1e4, np.float32),
        "maskbits": np.zeros((16, 16), np.int32),
        "cutout_ok": True,
        "arc_snr": float(rng.uniform(0, 20)) if task["role"] == "injection" else None,
        "task_id": -1,  # a row maker cannot relabel its task: the job restores identity
    }


def write_tasks(folder: Path) -> pa.Table:
    objid = np.arange(N_TASKS)
    brickid = 500 + objid % N_BRICKS
    tid = make_task_ids(np.full(N_TASKS, 10000), brickid, objid)
    gid = [make_galaxy_id(10000, b, o) for b, o in zip(brickid, objid, strict=True)]
    table = pa.table({
        "task_id": tid, "galaxy_id": gid, "brickname": [f"1{b:03d}p100" for b in brickid],
        "ra": 150 + objid * 1e-3, "dec": np.full(N_TASKS, 10.0),
        "split": assign_splits(tid, {"train": 0.26, "val": 0.39, "test": 0.35}, "s"),
        "role": assign_roles(gid, 0.5, "r"), "psfsize_r": np.full(N_TASKS, 1.3),
    })
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.slice(0, 100), folder / "part-0.parquet")
    pq.write_table(table.slice(100), folder / "part-1.parquet")
    return table


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tasks") / "tasks"
    return folder, write_tasks(folder)


CFG = config_from_dict({"generate": {"n_partitions": 4, "row_group_rows": 16}, "render": {"write_arc": False}})


def shard_digests(root, options=None):
    return {s["path"]: s["sha256"] for s in mf.read_manifest(root, options)["shards"]}


def test_spark_job_rows_partitions_failures_resume(spark, tasks, tmp_path):
    folder, table = tasks
    out = str(tmp_path / "out")
    summary = run(spark, CFG, str(folder), "unused", "unused", out, task_fn=standin_row)
    root = summary["dataset"]
    assert mf.is_complete(root)
    n_raise = sum(1 for t in table["task_id"].to_pylist() if t % 37 == 0)
    assert summary["rows"] == N_TASKS and summary["n_failed"] == n_raise > 0

    rows = {sp: read_split(root, sp, columns=["task_id", "galaxy_id", "brickname", "split", "cutout_ok", "cutout_reason", "stamp_npz", "config_hash"]) for sp in ("train", "val", "test")}
    got = [t for sp in rows for t in rows[sp]["task_id"].to_pylist()]
    assert Counter(got) == Counter(table["task_id"].to_pylist())  # every task exactly once
    by_task = dict(zip(table["task_id"].to_pylist(), table["split"].to_pylist(), strict=True))
    galaxies = {sp: set(rows[sp]["galaxy_id"].to_pylist()) for sp in rows}
    assert not (galaxies["train"] & galaxies["val"] or galaxies["train"] & galaxies["test"] or galaxies["val"] & galaxies["test"])
    for sp, t in rows.items():
        assert all(by_task[i] == sp for i in t["task_id"].to_pylist())
        failed = t.filter(pa.compute.invert(t["cutout_ok"]))
        assert all(tid % 37 == 0 for tid in failed["task_id"].to_pylist())
        assert all(r.startswith("exception: ValueError: stand-in failure") for r in failed["cutout_reason"].to_pylist())
        ok = t.filter(t["cutout_ok"])
        assert decode_stamp(ok["stamp_npz"][0].as_py())["image"].shape == (3, 16, 16)
    # a brick's tasks sit in exactly one partition, the one its hash names, sorted by task_id
    for rel in mf.list_shards(root):
        shard = pq.read_table(os.path.join(root, rel), columns=["task_id", "brickname"])
        part = int(rel.split("part-")[1][:5])
        assert {partition_of(b, 4) for b in shard["brickname"].to_pylist()} == {part}
        ids = shard["task_id"].to_pylist()
        assert ids == sorted(ids)
    m = mf.verify_manifest(root, checksums=True)
    assert m["totals"]["rows"] == N_TASKS and m["totals"]["n_failed"] == n_raise

    # rerun: byte-identical; delete one shard, --resume rebuilds only that one
    first = shard_digests(root)
    again = run(spark, CFG, str(folder), "unused", "unused", out, task_fn=standin_row)
    assert again["shards_written"] == len(first) and shard_digests(root) == first
    victim = sorted(first)[1]
    os.remove(os.path.join(root, victim))
    resumed = run(spark, CFG, str(folder), "unused", "unused", out, resume=True, task_fn=standin_row)
    assert resumed["shards_written"] == 1 and resumed["shards_kept"] == len(first) - 1
    assert shard_digests(root) == first and mf.is_complete(root)
    mf.verify_manifest(root, checksums=True)


def test_multiprocessing_runner_gives_the_same_bytes(spark, tasks, tmp_path):
    folder, _ = tasks
    a = run(spark, CFG, str(folder), "unused", "unused", str(tmp_path / "a"), task_fn=standin_row)
    b = run_multiprocessing(CFG, str(folder), "unused", "unused", str(tmp_path / "b"), processes=2, task_fn=standin_row)
    assert a["rows"] == b["rows"] == N_TASKS
    assert shard_digests(a["dataset"]) == shard_digests(b["dataset"])


def test_repartitioning_keeps_rows_and_removes_stale_shards(spark, tasks, tmp_path):
    folder, _ = tasks
    out = str(tmp_path / "out")
    a = run(spark, CFG, str(folder), "unused", "unused", out, task_fn=standin_row)
    rows_a = read_split(a["dataset"], "val", columns=["task_id", "stamp_npz"]).sort_by("task_id")
    cfg7 = config_from_dict({"generate": {"n_partitions": 7, "row_group_rows": 16}, "render": {"write_arc": False}})
    b = run(spark, cfg7, str(folder), "unused", "unused", out, task_fn=standin_row)
    assert all(int(rel.split("part-")[1][:5]) < 7 for rel in mf.list_shards(b["dataset"]))
    assert len(mf.list_shards(b["dataset"])) == b["shards"]
    rows_b = read_split(b["dataset"], "val", columns=["task_id", "stamp_npz"]).sort_by("task_id")
    assert rows_a.equals(rows_b)  # same rows whatever the partition count


def test_resource_failure_fails_the_job_without_success(spark, tasks, tmp_path):
    folder, _ = tasks
    with pytest.raises(DatasetError, match="source bank"):
        run(spark, CFG, str(folder), str(tmp_path / "no-survey"), str(tmp_path / "no-bank.h5"), str(tmp_path / "out"))
    assert not mf.is_complete(str(tmp_path / "out" / "demo"))


def test_output_on_s3_server(spark, tasks, s3_bucket, tmp_path):
    folder, table = tasks
    endpoint, bucket = s3_bucket
    opts = StorageOptions(endpoint=endpoint)
    local = run(spark, CFG, str(folder), "unused", "unused", str(tmp_path / "local"), task_fn=standin_row)
    remote = run(spark, CFG, str(folder), "unused", "unused", f"s3://{bucket}/datasets", options=opts, task_fn=standin_row)
    root = remote["dataset"]
    assert root == f"s3://{bucket}/datasets/demo" and mf.is_complete(root, opts)
    assert shard_digests(root, opts) == shard_digests(local["dataset"])  # same bytes on S3
    mf.verify_manifest(root, opts, checksums=True)
    n = sum(read_split(root, sp, columns=["task_id"], options=opts).num_rows for sp in ("train", "val", "test"))
    assert n == table.num_rows
