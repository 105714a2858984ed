"""The stage job (positions + bricks -> host table) and generate from hosts, real parts only:
a synthetic DR10-format survey read from disk and through a loopback HTTP mirror with Range
support (clean, and with 429/503/resets), Spark local[2] and the process pool.

Checks: one host row per position with every position column passed through; host stamps are
the brick reader's cutouts bit for bit; generate --hosts writes the same shard bytes as generate
--bricks; http and local stages write the same bytes; --resume keeps the finished shards; a
position off the footprint is a row with cutout_ok = false and a reason."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from darkhaloscope.config import config_from_dict, replace
from darkhaloscope.dataset import manifest as mf
from darkhaloscope.dataset.hosts import cutout_from_host_row, read_host_rows
from darkhaloscope.dataset.reader import read_split
from darkhaloscope.errors import ConfigError
from darkhaloscope.spark import stage
from darkhaloscope.spark.job import run as generate
from darkhaloscope.spark.job import run_multiprocessing
from darkhaloscope.survey.brick_reader import BrickReader

sys.path.insert(0, str(Path(__file__).parent))
from http_mirror import HttpMirror  # noqa: E402

pytestmark = pytest.mark.integration

CONFIG = {
    "seed": 11,
    "survey": {"synthetic": {"n_bricks_ra": 2, "n_bricks_dec": 1, "brick_size_pix": 300, "ra_start": 150.01, "dec_center": 10.05,
                             "lrg_per_brick": 40, "galaxies_per_brick": 10, "stars_per_brick": 4, "tile_size": 64}},
    "bank": {"stamp_size": 64, "procedural": {"n_sources": 16}},
    "render": {"supersampling": 2},
    "generate": {"n_partitions": 3, "row_group_rows": 16},
    "stage": {"http_backoff_s": 0.001, "http_max_connections": 2},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from darkhaloscope.sources.commands import build_bank
    from darkhaloscope.survey.build_survey import build_survey
    from darkhaloscope.survey.tasks import build_tasks

    cfg = config_from_dict(CONFIG)
    base = tmp_path_factory.mktemp("stage_world")
    root = build_survey(cfg, base / "survey")["root"]  # the region folder (DR10 layout: survey/south)
    build_tasks(cfg, str(Path(root) / "tractor"), str(base / "tasks"), bricks_table=str(base / "survey" / "survey-bricks.fits.gz"))
    build_bank(cfg, base / "bank.h5")
    # a column another branch might add to the task table: it must flow through untouched
    tasks = pq.read_table(str(base / "tasks"))
    assert tasks.num_rows > 20
    return {"cfg": cfg, "base": base, "survey": str(root), "tasks": str(base / "tasks"), "bank": str(base / "bank.h5"), "table": tasks}


@pytest.fixture(scope="module")
def staged(spark, world):
    out = str(world["base"] / "hosts_local")
    summary = stage.run(spark, world["cfg"], world["tasks"], world["survey"], out)
    return summary


def digests(root):
    return {s["path"]: s["sha256"] for s in mf.read_manifest(root)["shards"]}


def same_rows_but_root(a: str, b: str, root_a: str, root_b: str) -> None:
    """Two host tables hold the same rows; reasons name their own survey root (the file)."""
    ta, tb = (read_host_rows(x).sort_by("task_id").to_pylist() for x in (a, b))
    assert len(ta) == len(tb) > 0
    for x, y in zip(ta, tb, strict=True):
        if x["cutout_reason"]:
            x["cutout_reason"] = x["cutout_reason"].replace(root_a, "<root>")
            y["cutout_reason"] = y["cutout_reason"].replace(root_b, "<root>")
        assert x == y


def test_stage_writes_one_host_row_per_position_with_task_columns(staged, world):
    root, tasks = staged["dataset"], world["table"]
    assert mf.is_complete(root) and staged["rows"] == tasks.num_rows
    manifest = mf.read_manifest(root)
    assert manifest["kind"] == "hosts" and manifest["dataset_name"] == "hosts" and len(manifest["host_hash"]) == 16
    hosts = read_host_rows(root).sort_by("task_id")
    tasks = tasks.sort_by("task_id")
    for name in tasks.column_names:  # every position column passes through, values and type
        assert hosts[name].type == tasks[name].type, name
        assert hosts[name].to_pylist() == tasks[name].to_pylist(), name
    assert staged["survey_bytes"] > 0 and staged["n_not_ok"] < tasks.num_rows
    reader = BrickReader(world["survey"])
    cfg = world["cfg"]
    for row in hosts.slice(0, 6).to_pylist():
        want = reader.cutout(row["ra"], row["dec"], cfg.survey.stamp_size, cfg.survey.bands, brickname=row["brickname"])
        got = cutout_from_host_row(row, cfg)
        assert got.ok == want.ok and got.reason == want.reason
        for k in ("image", "invvar", "maskbits"):
            assert getattr(got, k).tobytes() == getattr(want, k).tobytes(), k


def test_generate_from_hosts_equals_generate_from_bricks(spark, staged, world, tmp_path):
    cfg = world["cfg"]
    a = generate(spark, cfg, world["tasks"], world["survey"], world["bank"], str(tmp_path / "a"))
    # a recipe change would not need a new stage; the same recipe must give the same bytes
    b = generate(spark, cfg, "unused", "unused", world["bank"], str(tmp_path / "b"), hosts=staged["dataset"])
    assert a["rows"] == b["rows"] == world["table"].num_rows and b["survey_bytes"] == 0
    assert digests(a["dataset"]) == digests(b["dataset"])  # every shard byte for byte
    for split in ("train", "val", "test"):
        assert read_split(a["dataset"], split).equals(read_split(b["dataset"], split))
    # the process pool from hosts: one unit per partition and split, each worker reading its own
    # host file (same partition count as the stage) -> the same shards
    c = run_multiprocessing(cfg, "", "", world["bank"], str(tmp_path / "c"), processes=2, hosts=staged["dataset"])
    assert digests(c["dataset"]) == digests(a["dataset"])
    # another partition count: every host file mixes partitions, so the parent reads and ships
    # their rows; the rows are the same, only the sharding differs
    d = run_multiprocessing(replace(cfg, **{"generate.n_partitions": 2}), "", "", world["bank"], str(tmp_path / "d"), processes=2, hosts=staged["dataset"])
    for split in ("train", "val", "test"):
        assert read_split(d["dataset"], split).sort_by("task_id").equals(read_split(a["dataset"], split).sort_by("task_id"))
    with pytest.raises(ConfigError, match="host_hash"):
        generate(spark, replace(cfg, **{"survey.stamp_size": 48}), "", "", world["bank"], str(tmp_path / "c"), hosts=staged["dataset"])


def test_two_recipes_on_one_open_pool(staged, world, tmp_path):
    """run_multiprocessing(pool=...): jobs run on the caller's fork pool, which stays open; the
    rows are those of a job on its own pool, and a second recipe on the same warm workers gets its own rows."""
    import multiprocessing as mp

    cfg = world["cfg"]
    own = run_multiprocessing(cfg, "", "", world["bank"], str(tmp_path / "own"), processes=2, hosts=staged["dataset"])
    other = replace(cfg, **{"seed": cfg.seed + 1})
    with mp.get_context("fork").Pool(2) as pool:
        first = run_multiprocessing(cfg, "", "", world["bank"], str(tmp_path / "first"), hosts=staged["dataset"], pool=pool)
        second = run_multiprocessing(other, "", "", world["bank"], str(tmp_path / "second"), hosts=staged["dataset"], pool=pool)
        assert pool.apply(sum, ([1, 2],)) == 3  # still open
    assert digests(first["dataset"]) == digests(own["dataset"])
    assert second["rows"] == own["rows"] and digests(second["dataset"]) != digests(own["dataset"])
    alone = run_multiprocessing(other, "", "", world["bank"], str(tmp_path / "alone"), processes=1, hosts=staged["dataset"])
    assert digests(second["dataset"]) == digests(alone["dataset"])


def test_stage_over_http_mirror_equals_local_and_fetches_tiles(spark, staged, world, tmp_path):
    # the mirror serves the release folder (survey-bricks.fits.gz above south/, as on the portal)
    with HttpMirror(Path(world["survey"]).parent) as mirror:
        region_url = f"{mirror.url}/{Path(world['survey']).name}"
        summary = stage.run(spark, world["cfg"], world["tasks"], region_url, str(tmp_path / "h"))
        assert mirror.log  # the job really read over HTTP, by ranges
    same_rows_but_root(summary["dataset"], staged["dataset"], region_url, world["survey"])
    assert summary["survey_bytes"] > 0
    # one stamp reads only the tiles it needs: far less than its brick's coadd files
    one = world["table"].slice(0, 1)
    pq.write_table(one, tmp_path / "one.parquet")
    coadd = Path(world["survey"]) / "coadd"
    brick = one["brickname"][0].as_py()
    brick_bytes = sum(p.stat().st_size for p in (coadd / brick[:3] / brick).glob("*.fits.fz"))
    with HttpMirror(Path(world["survey"]).parent) as mirror:
        s1 = stage.run_multiprocessing(world["cfg"], str(tmp_path / "one.parquet"), f"{mirror.url}/{Path(world['survey']).name}", str(tmp_path / "h1"), processes=1)
    assert 0 < s1["survey_bytes"] < 0.5 * brick_bytes, (s1["survey_bytes"], brick_bytes)


def test_stage_over_faulty_http_retries_to_the_same_bytes(staged, world, tmp_path):
    faults = ["ok", "429", "ok", "503", "ok", "reset", "ok", "502"]
    with HttpMirror(Path(world["survey"]).parent, faults) as mirror:
        url = f"{mirror.url}/{Path(world['survey']).name}"
        summary = stage.run_multiprocessing(world["cfg"], world["tasks"], url, str(tmp_path / "f"), processes=2)
        outcomes = {f for *_, f in mirror.log}
    assert {"429", "503", "reset", "502"} <= outcomes
    assert summary["n_failed"] == 0
    same_rows_but_root(summary["dataset"], staged["dataset"], url, world["survey"])


def test_resume_on_a_half_written_host_table(spark, staged, world, tmp_path):
    import shutil

    root = tmp_path / "r" / "hosts"
    shutil.copytree(staged["dataset"], root)
    shards = sorted(mf.list_shards(str(root)))
    os.remove(root / shards[0])  # killed half-way: one shard missing, no _SUCCESS
    mf.clear_success(str(root))
    summary = stage.run(spark, world["cfg"], world["tasks"], world["survey"], str(tmp_path / "r"), resume=True)
    assert summary["shards_written"] == 1 and summary["shards_kept"] == len(shards) - 1
    assert digests(str(root)) == digests(staged["dataset"])


def test_positions_off_the_footprint_and_any_role(world, tmp_path):
    t = world["table"].slice(0, 3).to_pylist()
    for r in t:
        r["role"] = "impostor"
    off = dict(t[0], task_id=1, galaxy_id="off", brickname="0100m300", ra=10.0, dec=-30.0)
    rows = [*t, off]
    table = pa.Table.from_pylist(rows, schema=world["table"].schema)
    table = table.set_column(table.schema.get_field_index("z_spec"), "z_spec", pa.array([0.3, 0.4, None, 0.5], pa.float32()))
    pq.write_table(table, tmp_path / "pos.parquet")
    summary = stage.run_multiprocessing(world["cfg"], str(tmp_path / "pos.parquet"), world["survey"], str(tmp_path / "o"), processes=1)
    hosts = {r["task_id"]: r for r in read_host_rows(summary["dataset"]).to_pylist()}
    assert len(hosts) == 4 and summary["n_not_ok"] >= 1
    bad = hosts[1]
    assert bad["cutout_ok"] is False and bad["stamp_npz"] is None and "0100m300" in bad["cutout_reason"]
    assert bad["z_spec"] == pytest.approx(0.5) and bad["role"] == "impostor"
    assert {r["role"] for r in hosts.values()} == {"impostor"}
    good = [r for r in hosts.values() if r["cutout_ok"]]
    assert good and all(np.isfinite(cutout_from_host_row(r, world["cfg"]).image).all() for r in good)


def test_stage_and_generate_from_hosts_on_s3(spark, staged, world, s3_bucket, tmp_path):
    """The host table on the S3 server on loopback: same shard bytes as on disk, and generate
    --hosts reads it from S3 into the same rows as from the local host table."""
    from darkhaloscope.dataset.storage import StorageOptions

    endpoint, bucket = s3_bucket
    options = StorageOptions(endpoint=endpoint)
    s3 = stage.run(spark, world["cfg"], world["tasks"], world["survey"], f"s3://{bucket}/hosts", options=options)
    assert s3["dataset"] == f"s3://{bucket}/hosts/hosts" and mf.is_complete(s3["dataset"], options)
    assert {s["path"]: s["sha256"] for s in mf.read_manifest(s3["dataset"], options)["shards"]} == digests(staged["dataset"])
    a = generate(spark, world["cfg"], "", "", world["bank"], str(tmp_path / "a"), hosts=staged["dataset"])
    b = generate(spark, world["cfg"], "", "", world["bank"], f"s3://{bucket}/rows", options=options, hosts=s3["dataset"])
    assert {s["path"]: s["sha256"] for s in mf.read_manifest(b["dataset"], options)["shards"]} == digests(a["dataset"])
