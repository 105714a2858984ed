"""Stage (survey -> host table) and generate from hosts (host table -> rows), measured in this run.

Uses the inputs of ``bench_generate`` (synthetic survey, its ``N_TASKS`` task subset, procedural
bank; built once under ``<out>/generate_inputs``). Runs, in a ``CORES``-process pool of the jobs'
own per-partition function (the Spark runner adds the same fixed JVM overhead to both):

- ``stage`` from local bricks: ``stage_ms_per_stamp`` (CPU ms of the process tree per stamp),
  ``stage_core_ms_per_stamp`` (wall x cores / stamps), ``host_table_bytes_per_stamp`` (shard
  bytes / rows: the target is <= 24 KB), ``host_table_bytes_per_quantised_stamp`` (the same
  for the stamps inside one brick file, not stitched), ``stage_survey_bytes_per_stamp`` (brick bytes read);
- ``generate --hosts`` on that host table: ``generate_from_hosts_core_ms_per_stamp`` (wall x
  cores / stamps) and ``generate_from_hosts_cpu_ms_per_stamp``; target: at most the seeds'
  render alone per stamp (``seed_reference_ms_per_stamp`` of ``bench_physics``, same run);
  and in one process, stage by stage, ``generate_from_hosts_{read,cutout_inject,encode,write,row}_ms_per_stamp``
  (also ``..._without_arc``: the production layout, ``render.write_arc`` false);
  ``worker_cold_import_open_s`` and ``worker_cold_first_rows_s``: CPU seconds a fresh Python
  process spends on imports + opening the bank, and on the first row of each role (compiled
  kernels loaded from numba's cache, the astropy cosmology table): once per Spark Python worker
  (reused across partitions), so it amortises in production; the timed pool forks from this
  warm process and pays only what the bench has not loaded yet (the host-stamp decoder);
- ``stage`` over a loopback HTTP mirror of the bricks with Range support (``HTTP_TASKS`` tasks):
  ``stage_http_bytes_per_stamp`` (HTTP body bytes per stamp) and ``stage_http_requests_per_stamp``.

The machine is shared: CPU figures are this run's process tree only; wall figures include other
people's load (``uptime`` is recorded as ``stage_bench_load_1min``). Nothing is asserted.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
CORES = 2
HTTP_TASKS = 300


def _sibling(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _per_stamp(cfg, hosts: str, bank: str, out: Path) -> dict:
    """Single-process CPU ms per stamp of generate from hosts, stage by stage: read the host
    rows, rebuild the cutout + inject (``make_row``), encode (``finish_row``), write the shard."""
    from darkhaloscope.dataset.storage import StorageOptions
    from darkhaloscope.dataset.writer import ShardWriter, WriterSettings
    from darkhaloscope.spark.partition import JobContext, PartitionResources, finish_row, make_row
    from darkhaloscope.spark.tasks_input import list_task_files, read_task_file

    clock = time.process_time  # CPU: the machine is shared
    t0 = clock()
    rows = [r for url in list_task_files(hosts) for r in read_task_file(url)]
    t_read = clock() - t0
    ctx = JobContext.create(cfg, str(out / "per_stamp"), "", bank, StorageOptions(), hosts=hosts)
    res = PartitionResources(ctx)
    res.open_all()
    for r in rows[:20]:  # compiled kernels, bank
        make_row(r, res)
    t_make = t_fin = 0.0
    done = []
    for r in rows:
        a = clock()
        row = make_row(r, res)
        b = clock()
        done.append(finish_row(row, r, ctx))
        t_make, t_fin = t_make + b - a, t_fin + clock() - b
    a = clock()
    w = ShardWriter(str(out / "per_stamp.parquet"), WriterSettings.from_config(cfg.generate))
    w.write_rows(done)
    w.close()
    t_write = clock() - a
    n = len(rows)
    return {
        "generate_from_hosts_read_ms_per_stamp": 1e3 * t_read / n,
        "generate_from_hosts_cutout_inject_ms_per_stamp": 1e3 * t_make / n,
        "generate_from_hosts_encode_ms_per_stamp": 1e3 * t_fin / n,
        "generate_from_hosts_write_ms_per_stamp": 1e3 * t_write / n,
        "generate_from_hosts_row_ms_per_stamp": 1e3 * (t_read + t_make + t_fin + t_write) / n,
    }


def _quantised_bytes_per_stamp(cfg, hosts: str, path: Path) -> float:
    """Shard bytes per row of the host table's quantised stamps alone (written again with the
    job's settings): what a survey whose stamps all sit inside one brick's file gives (DR10's
    bricks overlap); stitched stamps are stored raw (~80 KB each)."""
    import pyarrow.compute as pc

    from darkhaloscope.dataset.hosts import read_host_rows
    from darkhaloscope.dataset.writer import ShardWriter, WriterSettings

    table = read_host_rows(hosts)
    table = table.filter(pc.field("stamp_quantised")).sort_by("task_id")
    w = ShardWriter(str(path), WriterSettings.from_config(cfg.generate), schema=table.schema)
    w.write_table(table)
    return w.close().bytes / max(1, table.num_rows)


_COLD_WORKER = """
import sys, time
c0 = time.process_time()
from darkhaloscope.config import config_from_dict
import yaml
from darkhaloscope.dataset.storage import StorageOptions
from darkhaloscope.spark.partition import JobContext, PartitionResources, make_row
from darkhaloscope.spark.tasks_input import list_task_files, read_task_file
cfg = config_from_dict(yaml.safe_load(open(sys.argv[1])))
hosts, bank = sys.argv[2], sys.argv[3]
rows = read_task_file(list_task_files(hosts)[0])
res = PartitionResources(JobContext.create(cfg, "unused", "", bank, StorageOptions(), hosts=hosts))
res.open_all()
c1 = time.process_time()
seen = set()
for r in rows:  # the first row of each role: compiled kernels loaded, astropy cosmology table made
    if r["role"] not in seen:
        seen.add(r["role"])
        make_row(r, res)
print(c1 - c0, time.process_time() - c1)
"""


def _cold_worker(cfg, hosts: str, bank: str, out: Path) -> dict:
    """One-off CPU seconds of a fresh Python process before it makes rows at full speed (what a
    Spark Python worker or a cold pool worker pays once; the timed pool above forks from this
    warm bench process): imports + opening the bank, then the first row of each role."""
    import subprocess

    import yaml

    from darkhaloscope.config import config_to_dict

    cfgfile = out / "cold_worker.yaml"
    cfgfile.write_text(yaml.safe_dump(config_to_dict(cfg)))
    got = subprocess.run([sys.executable, "-c", _COLD_WORKER, str(cfgfile), hosts, bank], capture_output=True, text=True, check=True)
    imports, first_rows = (float(v) for v in got.stdout.split()[-2:])
    return {"worker_cold_import_open_s": imports, "worker_cold_first_rows_s": first_rows}


def _self_and_children_cpu() -> float:
    """CPU seconds (user + system) of this process and its waited-for children (the process
    pool's workers): monotonic, unlike a /proc walk over live descendants, which loses the CPU of
    a descendant that exits unwaited inside the window (a Spark JVM of an earlier bench gave a
    negative figure that way)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(cfg, out_dir) -> dict:
    from darkhaloscope.config import replace
    from darkhaloscope.spark import stage
    from darkhaloscope.spark.job import run_multiprocessing

    gen = _sibling("bench_generate")
    out = Path(out_dir)
    inputs = gen._inputs(cfg, out)
    work = out / "stage_bench"
    shutil.rmtree(work, ignore_errors=True)
    figures: dict = {"stage_bench_load_1min": os.getloadavg()[0]}

    t0, c0 = time.perf_counter(), _self_and_children_cpu()
    s = stage.run_multiprocessing(cfg, inputs["tasks"], inputs["survey"], str(work / "hosts"), processes=CORES)
    wall, cpu = time.perf_counter() - t0, _self_and_children_cpu() - c0
    n = s["rows"]
    figures["host_table_bytes_per_quantised_stamp"] = _quantised_bytes_per_stamp(cfg, s["dataset"], work / "quantised.parquet")
    figures.update({
        "stage_ms_per_stamp": 1e3 * cpu / n,
        "stage_core_ms_per_stamp": 1e3 * wall * CORES / n,
        "host_table_bytes_per_stamp": s["bytes"] / n,
        "host_table_bytes_per_ok_stamp": s["bytes"] / max(1, n - s["n_not_ok"]),
        "stage_survey_bytes_per_stamp": s["survey_bytes_per_stamp"],
        "stage_bench_stamps": n,
    })

    run_multiprocessing(cfg, "", "", inputs["bank"], str(work / "warm"), processes=CORES, hosts=s["dataset"])  # numba caches, bank
    t0, c0 = time.perf_counter(), _self_and_children_cpu()
    g = run_multiprocessing(cfg, "", "", inputs["bank"], str(work / "rows"), processes=CORES, hosts=s["dataset"])
    wall, cpu = time.perf_counter() - t0, _self_and_children_cpu() - c0
    figures.update({
        "generate_from_hosts_core_ms_per_stamp": 1e3 * wall * CORES / g["rows"],
        "generate_from_hosts_cpu_ms_per_stamp": 1e3 * cpu / g["rows"],
        "generate_from_hosts_survey_bytes": g["survey_bytes"],
    })
    figures.update(_per_stamp(cfg, s["dataset"], inputs["bank"], work))
    figures.update(_cold_worker(cfg, s["dataset"], inputs["bank"], work))
    # the production layout (configs/dr10.yaml: render.write_arc false): no arc_npz to encode and write
    no_arc = _per_stamp(replace(cfg, **{"render.write_arc": False}), s["dataset"], inputs["bank"], work)
    figures.update({f"{k}_without_arc": v for k, v in no_arc.items() if k.endswith(("encode_ms_per_stamp", "write_ms_per_stamp", "row_ms_per_stamp"))})

    sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
    from http_mirror import HttpMirror

    subset = work / "http_tasks.parquet"
    table = pq.read_table(inputs["tasks"]).sort_by("task_id")
    pq.write_table(table.slice(0, min(HTTP_TASKS, table.num_rows)), subset)
    with HttpMirror(Path(inputs["survey"])) as mirror:
        h = stage.run_multiprocessing(cfg, str(subset), mirror.url, str(work / "hosts_http"), processes=CORES)
        requests = len(mirror.log)
    figures.update({
        "stage_http_bytes_per_stamp": h["survey_bytes_per_stamp"],
        "stage_http_requests_per_stamp": requests / max(1, h["rows"]),
        "stage_http_stamps": h["rows"],
    })
    shutil.rmtree(work, ignore_errors=True)
    return figures
