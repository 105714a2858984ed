"""The generate job: task table + bricks + bank -> stamp dataset (DESIGN 1, 3.3, 6).

Flow (Spark)::

    driver: list task files, read their footers (row count, columns), clear _SUCCESS
    stage 1: each task file -> (partition_of(brickname), task)      [executors read the tasks]
    shuffle: partitionBy(n_partitions, identity)                     [a brick's tasks together]
    stage 2: process_partition -> shards written by the executors -> small summaries
    driver: check one row per task, delete stale shards, write _manifest.json, then _SUCCESS

From a host table staged with the same ``generate.n_partitions``, each host shard is one Spark
task (largest first) that reads its own file: no shuffle of the stamp blobs (pool_plan.py).

:func:`run_multiprocessing` runs the very same :func:`~.partition.process_partition` in a
``multiprocessing`` pool (the benchmark's reference and a Spark-free fallback).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import multiprocessing as mp
import multiprocessing.pool
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from ..config import SPLITS, Config
from ..dataset import manifest as mf
from ..dataset.host_schema import host_schema
from ..dataset.hosts import host_hash
from ..dataset.storage import StorageOptions, is_s3, join
from ..errors import DarkHaloScopeError, DatasetError, redact
from .partition import JobContext, TaskFn, process_partition
from .pool_plan import host_table_units, plan_units, run_unit
from .tasks_input import check_task_files, keyed_tasks, list_task_files, task_file_schema

log = logging.getLogger("darkhaloscope.generate")


def storage_options(cfg: Config, options: StorageOptions | None = None) -> StorageOptions:
    """Explicit options, else the config's ``generate.s3_endpoint`` / ``s3_region``."""
    return options or StorageOptions(endpoint=cfg.generate.s3_endpoint, region=cfg.generate.s3_region)


def _prepare(cfg: Config, tasks: str, bricks: str, bank: str, out: str, resume: bool, options: StorageOptions | None, task_fn: TaskFn | None,
             kind: str = "generate", hosts: str = ""):
    options = storage_options(cfg, options)
    dataset_url = join(out, cfg.stage.name if kind == "stage" else cfg.generate.dataset_name)
    files = list_task_files(hosts or tasks, options)
    n_tasks = check_task_files(files, options)
    schema = None
    if kind == "stage":
        schema = host_schema([task_file_schema(url, options) for url in files])
    if hosts:
        check_host_table(hosts, cfg, options)
    mf.clear_success(dataset_url, options)
    ctx = JobContext.create(cfg, dataset_url, str(bricks), str(bank), options, resume, task_fn, kind=kind, hosts=str(hosts or ""), schema=schema)
    inputs = {"hosts": str(hosts)} if hosts else {"tasks": str(tasks), "bricks": str(bricks)}
    if kind == "generate":
        inputs["bank"] = str(bank)
    return ctx, files, n_tasks, inputs


def check_host_table(hosts: str, cfg: Config, options: StorageOptions) -> None:
    """A host table is complete (``_SUCCESS``) and was cut with this config's stamp geometry
    (its manifest's ``host_hash``), else a DatasetError / ConfigError saying which."""
    from ..errors import ConfigError

    if not mf.is_complete(hosts, options):
        raise DatasetError(f"host table {redact(hosts)} has no _SUCCESS: stage it (darkhaloscope stage) or finish it with --resume", path=redact(hosts))
    got = mf.read_manifest(hosts, options).get("host_hash")
    if got != host_hash(cfg):
        raise ConfigError(f"host table {redact(hosts)} was staged with host_hash {got}, this config's is {host_hash(cfg)}: "
                          "survey.bands, survey.stamp_size and survey.pixel_scale must be the stage's", field="survey.stamp_size", path=redact(hosts))


def run(spark, cfg: Config, tasks: str, bricks: str, bank: str, out: str, resume: bool = False,
        options: StorageOptions | None = None, *, task_fn: TaskFn | None = None, kind: str = "generate", hosts: str = "") -> dict:
    """Run the generate (or stage) job on ``spark``; returns the run summary (see :func:`finalize`).

    ``tasks``/``bricks``/``bank``/``out`` are local paths or ``s3://`` URLs; the dataset goes to
    ``<out>/<generate.dataset_name>``. ``resume`` keeps shards whose footer row count and config
    hash match. ``task_fn`` replaces the row maker (tests, fault injection). ``hosts``: a host
    table to take the tasks and their stamps from (``tasks``/``bricks`` unused). ``kind="stage"``:
    write the host table ``<out>/<stage.name>`` instead (see :mod:`.stage`).
    """
    t0 = time.perf_counter()
    ctx, files, n_tasks, inputs = _prepare(cfg, tasks, bricks, bank, out, resume, options, task_fn, kind, hosts)
    n = cfg.generate.n_partitions
    opts = ctx.options
    check_roles = kind == "generate"
    sc = spark.sparkContext
    units = _host_units(ctx, files)
    if units:  # one Spark task per host shard, largest first: each reads its own file, no shuffle of stamp blobs
        n_tasks_spark = len(units)
        shards = sc.parallelize(units, n_tasks_spark).flatMap(lambda u: run_unit(u, ctx, check_roles))
    else:
        n_tasks_spark = n
        keyed = sc.parallelize(files, max(1, len(files))).flatMap(lambda url: keyed_tasks(url, n, opts, check_roles))
        shards = keyed.partitionBy(n, lambda k: k).mapPartitionsWithIndex(
            lambda i, it: process_partition(i, (t for _, t in it), ctx)
        )
    work = "cut + write" if kind == "stage" else "inject + write (stamps from the host table)" if hosts else "cut + inject + write"
    description = f"darkhaloscope {kind}: {work} {n_tasks} tasks in {n} partitions -> {redact(ctx.dataset_url)}"
    summaries = _collect_with_progress(sc, shards, n_tasks_spark, description)
    return finalize(ctx, summaries, n_tasks, inputs, time.perf_counter() - t0, runner="spark")


def _host_units(ctx: JobContext, files: list[str]):
    """The per-shard units of a generate from a host table staged with this partition count
    (pool_plan.host_table_units), else None."""
    if ctx.kind != "generate" or not ctx.hosts:
        return None
    return host_table_units(ctx.hosts, files, ctx.cfg.generate.n_partitions, ctx.options)


def _collect_with_progress(sc, rdd, n_partitions: int, description: str) -> list[dict]:
    """``rdd.collect()`` in a thread (job group + description set there) with a tqdm bar fed by
    Spark's status tracker; Spark failures come back as a :class:`DarkHaloScopeError`."""
    from tqdm import tqdm

    group = f"dhs-generate-{time.time_ns()}"
    result: dict[str, Any] = {}

    def target() -> None:
        sc.setJobGroup(group, description)
        sc.setJobDescription(description)
        try:
            result["rows"] = rdd.collect()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target, name="dhs-generate", daemon=True)
    thread.start()
    tracker = sc.statusTracker()
    with tqdm(total=n_partitions, desc="partitions", unit="part", disable=None) as bar:
        while thread.is_alive():
            thread.join(0.5)
            done = 0
            for job_id in tracker.getJobIdsForGroup(group):
                job = tracker.getJobInfo(job_id)
                for stage_id in job.stageIds if job else []:
                    stage = tracker.getStageInfo(stage_id)
                    if stage and stage.numTasks == n_partitions and stage.name and "collect" in stage.name:
                        done = max(done, stage.numCompletedTasks)
            bar.update(done - bar.n)
        bar.update(n_partitions - bar.n if "rows" in result else 0)
    if "error" in result:
        raise _spark_error(result["error"]) from None
    return result["rows"]


_PY_ERROR = re.compile(r"^(darkhaloscope\.errors\.\w+|\w+Error): (.+)$", re.MULTILINE)


def _spark_error(exc: BaseException) -> BaseException:
    """The Python error at the root of a failed Spark job, as a readable DarkHaloScopeError."""
    if isinstance(exc, DarkHaloScopeError):
        return exc
    text = redact(str(exc))
    matches = [m for m in _PY_ERROR.finditer(text) if "Py4J" not in m.group(1)]
    if not matches:
        return exc
    name, message = matches[-1].group(1), matches[-1].group(2)
    return DatasetError(f"generate job failed in an executor: {name.split('.')[-1]}: {message}", reason=name)


def run_multiprocessing(cfg: Config, tasks: str, bricks: str, bank: str, out: str, resume: bool = False,
                        options: StorageOptions | None = None, processes: int | None = None, *,
                        task_fn: TaskFn | None = None, kind: str = "generate", hosts: str = "",
                        pool: mp.pool.Pool | None = None) -> dict:
    """The same job without Spark: the parent plans the work units (partitions, or from a host
    table partitions' splits; :mod:`.pool_plan`), a process pool runs
    :func:`~.partition.process_partition` on each, the parent finalises.

    ``pool``: a pool to run on, left open: a fork-context pool of an earlier job (e.g. several
    recipes over one host table; its workers have loaded the kernels and the bank and touched
    their memory once, as a reused Spark Python worker has), or a ``ThreadPool(1)`` to run every
    unit in this process. Else a pool of ``processes`` is forked here."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    ctx, files, n_tasks, inputs = _prepare(cfg, tasks, bricks, bank, out, resume, options, task_fn, kind, hosts)
    check_roles = kind == "generate"
    # a host table's files go to the workers unread; from a host table a partition's splits are
    # separate units (no brick shared between them); largest units first (spark/pool_plan.py)
    units = _host_units(ctx, files) or plan_units(files, cfg.generate.n_partitions, ctx.options, check_roles, by_split=bool(hosts))
    summaries: list[dict] = []
    jobs = [(u, ctx, check_roles) for u in units]
    with contextlib.nullcontext(pool) if pool is not None else mp.get_context("fork").Pool(processes or mp.cpu_count()) as workers:
        for part in tqdm(workers.imap_unordered(_run_unit_star, jobs), total=len(jobs), desc=f"{kind} units", unit="unit", disable=None):
            summaries.extend(part)
    return finalize(ctx, summaries, n_tasks, inputs, time.perf_counter() - t0, runner="multiprocessing")


def _run_unit_star(args) -> list[dict]:
    return run_unit(*args)


def _remove_orphan_temp_files(root: str) -> None:
    """Delete the hidden ``.part-*.tmp`` files that killed local writers leave behind (readers
    ignore them; S3 uploads need no temp file in the dataset). No writer of this run is active."""
    if is_s3(root):
        return
    for tmp in sorted(glob.glob(os.path.join(glob.escape(root), "split=*", ".part-*.tmp"))):
        log.warning("generate: removing %s (left by a killed writer)", os.path.relpath(tmp, root))
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass


def finalize(ctx: JobContext, summaries: list[Mapping], n_tasks: int, inputs: Mapping[str, str], seconds: float, runner: str) -> dict:
    """Driver's last step: one row per task or fail; delete shards this run did not make; write
    ``_manifest.json`` and then ``_SUCCESS``. Returns the run summary."""
    cfg, options, root = ctx.cfg, ctx.options, ctx.dataset_url
    rows = sum(int(s["rows"]) for s in summaries)
    if rows != n_tasks:
        raise DatasetError(f"generate made {rows} rows for {n_tasks} tasks; the dataset is incomplete (no _SUCCESS)", path=redact(root))
    n_failed = sum(int(s["n_failed"]) for s in summaries)
    if n_tasks and n_failed / n_tasks > cfg.generate.max_task_failures_fraction:
        raise DatasetError(
            f"{n_failed} of {n_tasks} tasks raised (> generate.max_task_failures_fraction = {cfg.generate.max_task_failures_fraction}); no _SUCCESS",
            path=redact(root), field="generate.max_task_failures_fraction")
    made = {mf.shard_relpath(s["split"], s["partition"]) for s in summaries}
    stale = [rel for rel in mf.list_shards(root, options) if rel not in made]
    for rel in stale:
        log.warning("generate: removing stale shard %s (not part of this run)", rel)
        mf.delete(join(root, rel), options)
    _remove_orphan_temp_files(root)
    written = [s for s in summaries if not s.get("skipped")]
    extra = {"kind": "hosts", "dataset_name": cfg.stage.name, "host_hash": ctx.config_hash} if ctx.kind == "stage" else {}
    manifest = mf.build_manifest(cfg, summaries, inputs, extra)
    manifest_url = mf.write_manifest(root, manifest, options)
    mf.write_success(root, options)
    for s in sorted(summaries, key=lambda s: (s["split"], s["partition"])):
        log.info("generate: %s %-28s %6d rows %8.1f KB %s", "kept " if s.get("skipped") else "wrote",
                 mf.shard_relpath(s["split"], s["partition"]), s["rows"], s["bytes"] / 1024,
                 f"{s['rows'] / s['seconds']:.1f} rows/s" if s.get("seconds") else "")
    total_bytes = sum(int(s["bytes"]) for s in summaries)
    made_rows = sum(int(s["rows"]) for s in written)
    survey_bytes = sum(int(s.get("survey_bytes", 0)) for s in written)
    return {
        "dataset": root,
        "manifest": manifest_url,
        "runner": runner,
        "rows": rows,
        "rows_per_split": {sp: sum(int(s["rows"]) for s in summaries if s["split"] == sp) for sp in SPLITS},
        "n_failed": n_failed,
        "n_not_ok": sum(int(s["n_not_ok"]) for s in summaries),
        "shards": len(summaries),
        "shards_written": len(written),
        "shards_kept": len(summaries) - len(written),
        "stale_removed": len(stale),
        "bytes": total_bytes,
        "bytes_per_row": total_bytes / rows if rows else 0.0,
        "rows_made": made_rows,
        # brick bytes read (local, S3 or HTTP bodies) by the partitions this run made
        "survey_bytes": survey_bytes,
        "survey_bytes_per_stamp": survey_bytes / made_rows if made_rows else 0.0,
        "seconds": seconds,
        "config_hash": ctx.config_hash,
    }
