"""Generate-job throughput and size on the synthetic survey, measured in this run.

Builds (once, under ``<out>/generate_inputs``) the synthetic survey (``cfg``'s, with at least
``SKY_BRICKS`` bricks so that a production partition's worth of tasks exists), task table and
procedural bank of ``cfg``; takes a fixed subset of the tasks (every brick, ``N_TASKS`` tasks); then runs the
same work three times: Spark local[2] cold, Spark local[2] warm (same session, workers reused),
and a 2-process ``multiprocessing`` pool of the same per-partition function. Also times each
stage of one stamp in a single process (cutout, inject, row finishing, shard write per codec).

Figures (flat, medians or totals of this run; nothing is asserted):
``end_to_end_core_ms_per_stamp`` (warm Spark wall x 2 cores / stamps), ``end_to_end_cpu_ms_per_stamp``
(warm Spark: CPU seconds of this process and all its descendants, JVM and Python workers
included, / stamps: the figure to trust on a shared machine, where wall x cores counts other
people's work), ``spark_over_multiprocessing`` (warm Spark wall / pool wall), ``bytes_per_stamp``
(shard bytes / rows, whole rows as configured), ``bytes_per_stamp_without_arc`` (the production
layout, no ``arc_npz``; also for controls and injections apart), per-stage CPU ms, and bytes and write CPU ms per row for each
codec and level in ``CODECS`` (every column) and for the configured layout (``..._configured``:
``generate.compression`` for the columns, ``generate.blob_compression`` for the pixel blobs; and
``..._blobs_none``: the same with the blobs uncompressed, also ``bytes_per_stamp_without_arc_blobs_none``).
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path

import pyarrow.parquet as pq

N_TASKS = 3000  # ~ one production partition (configs/dr10.yaml: ~2,900 stamps); 800 measured mostly per-run fixed costs
SKY_BRICKS = 78  # the bench's sky: the demo's bricks (~18 tasks each) in more rows, so N_TASKS tasks exist
REPEATS = 2
CORES = 2
CODECS = (("gzip", 1), ("gzip", 3), ("gzip", 6), ("gzip", 9), ("zstd", 1), ("zstd", 3), ("zstd", 9), ("none", None))


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process, its waited-for children, and every live
    descendant with the children it waited for (Linux /proc): Spark's JVM and Python workers."""
    import os

    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    tick = os.sysconf("SC_CLK_TCK")
    parent = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(pid)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))  # ppid; utime stime cutime cstime
    me, seen = os.getpid(), set()
    frontier = [me]
    while frontier:
        p = frontier.pop()
        for pid, (ppid, ticks) in parent.items():
            if ppid == p and pid not in seen:
                seen.add(pid)
                total += ticks / tick
                frontier.append(pid)
    return total


def _inputs(cfg, out: Path) -> dict:
    """Build survey, tasks and bank with the real commands unless already there for this config."""
    import yaml

    from darkhaloscope.cli import main as cli
    from darkhaloscope.config import config_hash, config_to_dict, replace
    from darkhaloscope.survey.build_survey import FILE_FORMAT

    syn = cfg.survey.synthetic
    cfg = replace(cfg, **{"survey.synthetic.n_bricks_dec": max(syn.n_bricks_dec, -(-SKY_BRICKS // syn.n_bricks_ra))})
    base = out / "generate_inputs"

    marker = base / f".built-{config_hash(cfg)}-files{FILE_FORMAT}"
    cfgfile = base / "config.yaml"
    if not marker.exists():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        cfgfile.write_text(yaml.safe_dump(config_to_dict(cfg)))
        for argv in (["build-survey", "--out", str(base / "survey")],
                     ["build-tasks", "--catalogs", str(base / "survey" / "south" / "sweep" / "10.1"), "--out", str(base / "tasks")],
                     ["build-bank", "--out", str(base / "bank.h5")]):
            assert cli([argv[0], "--config", str(cfgfile), *argv[1:]]) == 0, argv
        marker.touch()
    subset = base / f"tasks_{N_TASKS}"
    if not subset.exists():
        table = pq.read_table(base / "tasks").sort_by("task_id")
        step = max(1, table.num_rows // N_TASKS)
        subset.mkdir()
        pq.write_table(table.take(list(range(0, table.num_rows, step))[:N_TASKS]), subset / "part-00000.parquet")
    return {"tasks": str(subset), "survey": str(base / "survey" / "south"), "bank": str(base / "bank.h5")}


def _stages(cfg, inputs: dict, out: Path, n: int = 150) -> dict:
    """Single-process per-stamp CPU ms of each stage and shard bytes per codec."""
    from collections import Counter

    from darkhaloscope.dataset.storage import StorageOptions
    from darkhaloscope.dataset.writer import ShardWriter, WriterSettings
    from darkhaloscope.spark.partition import JobContext, PartitionResources, finish_row

    ctx = JobContext.create(cfg, str(out / "stages"), inputs["survey"], inputs["bank"], StorageOptions())
    res = PartitionResources(ctx)
    res.open_all()
    tasks = pq.read_table(inputs["tasks"]).sort_by("task_id").to_pylist()[:n]
    res.reader.expect_counts(Counter(t["brickname"] for t in tasks))  # as process_partition does
    # Warm the compiled kernels (numba loads them once per process, ~0.5 s) with a separate
    # reader, so the timed reader still pays each brick's first open like a partition does.
    from darkhaloscope.survey.brick_reader import BrickReader

    warm_reader = BrickReader(inputs["survey"])
    for task in [t for t in tasks if t["role"] == "injection"][:3]:
        res.inject(task, warm_reader.cutout(task["ra"], task["dec"], cfg.survey.stamp_size, cfg.survey.bands, brickname=task["brickname"]), res.bank, cfg)
    t_cut, t_inj, t_fin, rows = [], [], [], []
    clock = time.process_time  # CPU: the machine is shared
    for task in tasks:
        a = clock()
        cut = res.reader.cutout(task["ra"], task["dec"], cfg.survey.stamp_size, cfg.survey.bands, brickname=task["brickname"])
        b = clock()
        row = res.inject(task, cut, res.bank, cfg)
        c = clock()
        rows.append(finish_row(row, task, ctx))
        d = clock()
        t_cut.append(b - a)
        t_inj.append(c - b)
        t_fin.append(d - c)
    res.close()
    inj = [t for t, task in zip(t_inj, tasks, strict=True) if task["role"] == "injection"]
    figures = {  # means: a brick's first cutout (opening it) and injections vs controls matter
        "generate_cutout_ms_mean": 1e3 * statistics.fmean(t_cut),
        "generate_cutout_ms_median": 1e3 * statistics.median(t_cut),
        "generate_inject_ms_mean": 1e3 * statistics.fmean(t_inj),
        "generate_inject_ms_mean_injections": 1e3 * statistics.fmean(inj) if inj else 0.0,
        "generate_finish_row_ms_mean": 1e3 * statistics.fmean(t_fin),
    }
    # one codec for every column, then the configured layout (gzip; pixel blobs generate.blob_compression)
    layouts = [(f"{codec}{level or ''}", WriterSettings(codec, level, cfg.generate.row_group_rows)) for codec, level in CODECS]
    layouts.append(("configured", WriterSettings.from_config(cfg.generate)))
    # the configured columns with the pixel blobs stored uncompressed (RICE-coded already; zstd
    # takes the raw maskbits and addends' zeros): the bytes that codec saves against its CPU
    blobs_none = WriterSettings(cfg.generate.compression, cfg.generate.compression_level, cfg.generate.row_group_rows, "none")
    layouts.append(("blobs_none", blobs_none))
    for name, settings in layouts:
        path = out / "stages" / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        cpu = []
        for _ in range(3):  # median CPU of 3 writes (bytes are identical)
            t0 = clock()
            w = ShardWriter(str(path), settings)
            w.write_rows(rows)
            s = w.close()
            cpu.append(clock() - t0)
        figures[f"generate_write_ms_{name}"] = 1e3 * statistics.median(cpu) / len(rows)
        figures[f"bytes_per_stamp_{name}"] = s.bytes / len(rows)
        md = pq.ParquetFile(path).metadata
        stamp_bytes = sum(md.row_group(g).column(c).total_compressed_size for g in range(md.num_row_groups)
                          for c in range(md.num_columns) if md.row_group(g).column(c).path_in_schema == "stamp_npz")
        figures[f"stamp_npz_bytes_per_stamp_{name}"] = stamp_bytes / len(rows)
    # the production layout (configs/dr10.yaml: render.write_arc false): image, invvar, maskbits
    # and the metadata, with the configured codec; controls and injections apart
    path = out / "stages" / "no_arc.parquet"
    settings = WriterSettings.from_config(cfg.generate)
    for role in ("all", "control", "injection"):
        subset = [{**r, "arc_npz": None} for r, t in zip(rows, tasks, strict=True) if role == "all" or t["role"] == role]
        w = ShardWriter(str(path), settings)
        w.write_rows(subset)
        figures["bytes_per_stamp_without_arc" + ("" if role == "all" else f"_{role}s")] = w.close().bytes / len(subset)
        if role == "all":
            w = ShardWriter(str(path), blobs_none)
            w.write_rows(subset)
            figures["bytes_per_stamp_without_arc_blobs_none"] = w.close().bytes / len(subset)
    return figures


def run(cfg, out_dir) -> dict:
    from darkhaloscope.config import replace
    from darkhaloscope.spark.job import run as run_spark
    from darkhaloscope.spark.job import run_multiprocessing
    from darkhaloscope.spark.session import get_spark

    out = Path(out_dir)
    inputs = _inputs(cfg, out)
    # one partition per core-sized share of bricks; gzip level as configured
    cfg = replace(cfg, **{"generate.n_partitions": max(CORES, cfg.generate.n_partitions)})
    figures = _stages(cfg, inputs, out)
    spark = get_spark("darkhaloscope-bench-generate", f"local[{CORES}]")

    def timed(fn, label):
        t0, c0 = time.perf_counter(), tree_cpu_seconds()
        summary = fn(str(out / f"bench_{label}"))
        cpu[label].append(tree_cpu_seconds() - c0)
        return time.perf_counter() - t0, summary

    cpu = {"spark_cold": [], "spark_warm": [], "mp": []}

    def spark_run(path):
        return run_spark(spark, cfg, inputs["tasks"], inputs["survey"], inputs["bank"], path)

    def mp_run(path):
        return run_multiprocessing(cfg, inputs["tasks"], inputs["survey"], inputs["bank"], path, processes=CORES)

    cold, s = timed(spark_run, "spark_cold")
    # alternate warm Spark and pool runs (the machine is shared: medians of REPEATS each)
    warm, pool = [], []
    for _ in range(REPEATS):
        warm.append(timed(spark_run, "spark_warm")[0])
        t, m = timed(mp_run, "mp")
        pool.append(t)
        assert m["rows"] == s["rows"]
    walls = {"spark_cold": cold, "spark_warm": statistics.median(warm), "multiprocessing": statistics.median(pool)}
    rows, nbytes = s["rows"], s["bytes"]
    figures.update({
        "end_to_end_core_ms_per_stamp": 1e3 * walls["spark_warm"] * CORES / rows,
        "end_to_end_core_ms_per_stamp_spark_cold": 1e3 * walls["spark_cold"] * CORES / rows,
        "end_to_end_core_ms_per_stamp_multiprocessing": 1e3 * walls["multiprocessing"] * CORES / rows,
        "end_to_end_cpu_ms_per_stamp": 1e3 * statistics.median(cpu["spark_warm"]) / rows,
        "end_to_end_cpu_ms_per_stamp_spark_cold": 1e3 * cpu["spark_cold"][0] / rows,
        "end_to_end_cpu_ms_per_stamp_multiprocessing": 1e3 * statistics.median(cpu["mp"]) / rows,
        "spark_over_multiprocessing": walls["spark_warm"] / walls["multiprocessing"],
        "bytes_per_stamp": nbytes / rows,
        "generate_bench_stamps": rows,
    })
    for name in ("bench_spark_cold", "bench_spark_warm", "bench_mp", "stages"):
        shutil.rmtree(out / name, ignore_errors=True)
    return figures
