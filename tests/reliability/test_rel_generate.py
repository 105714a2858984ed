"""Faults injected into the real generate job (Spark local mode, real survey/bank/physics, moto S3
on loopback behind the fault proxy). Every faulty run is compared with one clean reference run of
the same config: nothing lost, nothing duplicated, and, where the config is the same, the very
same shard bytes.

1. a Python worker killed in the middle of a partition (first attempt only) -> Spark retries;
2. S3 answering 503/500 and resetting connections for a while -> retried, the same rows;
3. S3 failing for good mid-run -> clear error, no _SUCCESS/manifest, only whole shards, --resume completes;
4. a truncated brick in a Spark run -> named failures, the rest unchanged;
7. 2 vs 7 partitions -> the same rows; the same partition count -> byte-identical shards;
8. fake AWS credentials in the environment and userinfo in the endpoint never reach logs/manifest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pyarrow as pa
import pytest
import yaml
from conftest import assert_no_nan_numbers, coadd_file, copy_survey
from s3_fault_proxy import Fault, FaultProxy

from darkhaloscope.config import SPLITS, Config, config_hash, config_to_dict, replace
from darkhaloscope.dataset import manifest as mf
from darkhaloscope.dataset.reader import read_split
from darkhaloscope.dataset.storage import StorageOptions, join
from darkhaloscope.dataset.writer import sha256_of
from darkhaloscope.errors import DarkHaloScopeError
from darkhaloscope.spark.job import run

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.filterwarnings("ignore:File may have been truncated")]
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Gen:
    cfg: Config
    tasks: str
    survey: str
    bank: str
    n_tasks: int
    ref: dict          # summary of the clean reference run
    digests: dict      # shard path -> sha256 of the reference run
    rows: pa.Table     # every row of the reference run, sorted by task_id
    base: Path


def digests(root: str, options: StorageOptions | None = None) -> dict:
    return {s["path"]: s["sha256"] for s in mf.read_manifest(root, options)["shards"]}


def all_rows(root: str, options: StorageOptions | None = None) -> pa.Table:
    return pa.concat_tables([read_split(root, sp, options=options) for sp in SPLITS]).sort_by("task_id")


def assert_complete(root: str, gen: Gen, options: StorageOptions | None = None) -> pa.Table:
    """_SUCCESS, the manifest matches the shards (row counts and checksums), one row per task."""
    assert mf.is_complete(root, options)
    m = mf.verify_manifest(root, options, checksums=True)
    rows = all_rows(root, options)
    ids = rows["task_id"].to_pylist()
    assert len(ids) == len(set(ids)) == gen.n_tasks == m["totals"]["rows"]
    assert set(ids) == set(gen.rows["task_id"].to_pylist())
    return rows


@pytest.fixture(scope="module")
def gen(world, spark, tmp_path_factory) -> Gen:
    base = tmp_path_factory.mktemp("rel_generate")
    # the bank cache goes under the test's folder; every run below uses this same config
    cfg = replace(world.cfg, **{"paths.cache_dir": str(base / "cache")})
    tasks, survey, bank = str(world.tasks_dir), str(world.survey), str(world.bank)
    ref = run(spark, cfg, tasks, survey, bank, str(base / "ref"))
    g = Gen(cfg, tasks, survey, bank, len(world.tasks), ref, digests(ref["dataset"]), all_rows(ref["dataset"]), base)
    assert ref["rows"] == g.n_tasks and ref["n_failed"] == 0 and 0 < ref["n_not_ok"] < g.n_tasks
    assert len(g.digests) == 2 * len(SPLITS)
    assert_no_nan_numbers(g.rows)
    return g


# -- 7: determinism --------------------------------------------------------------------------
def test_same_config_same_bytes_and_any_partitioning_same_rows(gen, spark, tmp_path):
    again = run(spark, gen.cfg, gen.tasks, gen.survey, gen.bank, str(tmp_path / "again"))
    assert digests(again["dataset"]) == gen.digests  # byte-identical shards
    assert Path(again["manifest"]).read_bytes() == Path(gen.ref["manifest"]).read_bytes()

    cfg7 = replace(gen.cfg, **{"generate.n_partitions": 7})
    seven = run(spark, cfg7, gen.tasks, gen.survey, gen.bank, str(tmp_path / "seven"))
    rows7 = assert_complete(seven["dataset"], gen)
    assert set(mf.list_shards(seven["dataset"])) != set(gen.digests)  # the rows were grouped differently
    # n_partitions is an execution-only field: the config hash, and so every row, is the same
    assert config_hash(cfg7) == config_hash(gen.cfg)
    assert set(rows7["config_hash"].to_pylist()) == {config_hash(cfg7)}
    assert rows7.equals(gen.rows)


# -- 4: a damaged brick in a Spark run --------------------------------------------------------
def test_truncated_brick_in_a_spark_run_names_the_file_and_the_rest_is_unchanged(gen, world, spark, tmp_path):
    root = copy_survey(world, tmp_path / "survey")
    victim = world.bricknames[0]
    bad = coadd_file(root, victim, "image", "g")
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    s = run(spark, gen.cfg, gen.tasks, str(root), gen.bank, str(tmp_path / "out"))
    assert s["n_failed"] == 0 and s["n_not_ok"] > gen.ref["n_not_ok"]
    rows = assert_complete(s["dataset"], gen)
    ref = {r["task_id"]: r for r in gen.rows.to_pylist()}
    survivors = 0
    for r in rows.to_pylist():
        if r["brickname"] == victim:
            assert r["cutout_ok"] is False and "truncated file" in r["cutout_reason"] and str(bad) in r["cutout_reason"]
        elif r["cutout_ok"]:
            survivors += 1
            assert r == ref[r["task_id"]]
    assert survivors > 0


# -- 2: S3 flaky for a while -------------------------------------------------------------------
def _upload(s3, bucket: str, local: Path, prefix: str) -> None:
    for p in sorted(Path(local).rglob("*")):
        if p.is_file() and "tractor" not in p.parts:
            s3.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(local)}")
    bricks = Path(local).parent / "survey-bricks.fits.gz"  # DR10 layout: one level above the region folder
    if Path(local).name == "south" and bricks.is_file():
        s3.upload_file(str(bricks), bucket, "/".join([*prefix.split("/")[:-1], bricks.name]))


def test_flaky_s3_is_retried_and_the_run_loses_nothing(gen, world, spark, s3_bucket):
    endpoint, bucket = s3_bucket
    s3 = boto3.client("s3", endpoint_url=endpoint)
    _upload(s3, bucket, world.tasks_dir, "in/tasks")
    _upload(s3, bucket, world.survey, "in/survey")
    s3.upload_file(str(world.bank), bucket, "in/bank.h5")
    direct = StorageOptions(endpoint=endpoint)
    with FaultProxy(endpoint) as proxy:
        faults = (
            Fault("reset", window=(0.0, 0.5)),                                 # everything, for half a second
            Fault("503", first=3, methods=("PUT", "POST")),                    # shard uploads
            Fault("reset", first=3, methods=("GET",), path_contains="/in/survey/coadd/"),  # brick reads
            Fault("503", first=2, path_contains="/in/bank.h5"),                # bank download
            Fault("500", first=2, methods=("GET", "HEAD"), path_contains="/in/tasks/"),    # task table
        )
        proxy.set_fault(*faults)
        s = run(spark, gen.cfg, f"s3://{bucket}/in/tasks", f"s3://{bucket}/in/survey", f"s3://{bucket}/in/bank.h5",
                f"s3://{bucket}/out", options=StorageOptions(endpoint=proxy.url))
        stats = proxy.stats()
    assert stats["per_fault"][1:] == [f.first for f in faults[1:]], stats  # every fault really happened
    root = s["dataset"]
    assert root == f"s3://{bucket}/out/{gen.cfg.generate.dataset_name}"
    rows = assert_complete(root, gen, direct).to_pylist()
    # the very same rows as the clean local run; only the survey root named in reasons differs
    for r in rows:
        for k in ("cutout_reason", "snr_reason"):
            if r[k]:
                r[k] = r[k].replace(f"s3://{bucket}/in/survey", gen.survey)
    assert rows == gen.rows.to_pylist()


# -- 3: S3 dies for good, then --resume ----------------------------------------------------------
def test_s3_dying_mid_run_fails_cleanly_and_resume_completes(gen, spark, s3_bucket):
    endpoint, bucket = s3_bucket
    out = f"s3://{bucket}/out"
    root = join(out, gen.cfg.generate.dataset_name)
    direct = StorageOptions(endpoint=endpoint)
    with FaultProxy(endpoint) as proxy:
        opts = StorageOptions(endpoint=proxy.url, retry_attempts=3)
        proxy.set_fault(Fault("503", from_request=3, methods=("PUT",)))  # two uploads get through, then S3 is gone
        with pytest.raises(DarkHaloScopeError) as info:
            run(spark, gen.cfg, gen.tasks, gen.survey, gen.bank, out, options=opts)
        message = str(info.value)
        assert "cannot upload shard" in message and f"{root}/split=" in message, message

        assert not mf.is_complete(root, direct) and mf.get_bytes(join(root, mf.MANIFEST_NAME), direct) is None
        present = mf.list_shards(root, direct)
        assert 1 <= len(present) < len(gen.digests), present
        for rel in present:  # what is there is whole and right; nothing half-written is visible
            assert sha256_of(join(root, rel), direct)[0] == gen.digests[rel]

        proxy.set_fault()
        resumed = run(spark, gen.cfg, gen.tasks, gen.survey, gen.bank, out, resume=True, options=opts)
    # a worker of the failed job may still finish its upload once S3 is back: deterministic bytes
    # make that harmless, and resume keeps it like any other whole shard
    assert resumed["shards_kept"] >= len(present) and resumed["shards_kept"] + resumed["shards_written"] == len(gen.digests)
    assert_complete(root, gen, direct)
    assert digests(root, direct) == gen.digests


# -- 1 and 8: a worker killed mid-partition, through the real CLI, with credentials around --------
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEDHS0TEST9876",
    "AWS_SECRET_ACCESS_KEY": "dhsFakeSecretKey/NeverLeak+0123456789abcdef",
    "AWS_SESSION_TOKEN": "FQoGZXIvYXdzDHSFAKESESSIONTOKENneverleak0123456789",
}
USERINFO_PASSWORD = "pwUserinfoNeverLeak42"


@pytest.fixture(scope="module")
def killed_run(gen):
    """``darkhaloscope generate --master local[2,2]`` in a child process whose partition 0 worker
    dies (os._exit) after writing its first shard, on the first attempt only."""
    base = gen.base / "killed"
    base.mkdir()
    cfg_path = base / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(config_to_dict(gen.cfg)))
    marker = base / "worker-killed"
    env = {**os.environ, **FAKE_ENV, "PYSPARK_PYTHON": sys.executable,
           "DARKHALOSCOPE_FAULT_KILL_PARTITION": f"0:{marker}"}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    cmd = [sys.executable, "-m", "darkhaloscope.cli", "generate", "--config", str(cfg_path),
           "--tasks", gen.tasks, "--bricks", gen.survey, "--bank", gen.bank, "--out", str(base / "out"),
           "--master", "local[2,2]",  # local mode retries a task only with maxFailures > 1
           "--s3-endpoint", f"http://dhs:{USERINFO_PASSWORD}@127.0.0.1:9",  # unused (local paths) but carried everywhere
           "--summary-json", str(base / "summary.json")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return proc, base, marker


def test_worker_killed_mid_partition_is_retried_and_nothing_is_duplicated(gen, killed_run):
    proc, base, marker = killed_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert marker.exists()  # the first attempt of partition 0 did die
    assert "Python worker exited unexpectedly (crashed)" in proc.stderr and "Lost task 0.0" in proc.stderr, proc.stderr[-4000:]
    root = str(base / "out" / gen.cfg.generate.dataset_name)
    assert_complete(root, gen)
    assert digests(root) == gen.digests  # the retried partition rewrote its shards, same bytes
    assert not list(Path(root).rglob(".*"))  # the dead writer's hidden temp files were cleaned up
    summary = json.loads((base / "summary.json").read_text())
    assert summary["rows"] == gen.n_tasks and summary["shards"] == len(gen.digests)


def test_credentials_never_reach_spark_logs_or_the_manifest(gen, killed_run):
    proc, base, _ = killed_run
    root = base / "out" / gen.cfg.generate.dataset_name
    texts = {"stdout": proc.stdout, "stderr": proc.stderr, "manifest": (root / mf.MANIFEST_NAME).read_text(),
             "summary": (base / "summary.json").read_text()}
    assert "exited unexpectedly" in proc.stderr  # the logs include a failure, with its stack
    for name, text in texts.items():
        for secret in [*FAKE_ENV.values(), USERINFO_PASSWORD]:
            assert secret not in text, f"{secret[:6]}... appears in {name}"
