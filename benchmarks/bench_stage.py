"""Stage (survey -> host table) and generate from hosts (host table -> rows), measured in this run.

Uses the inputs of ``bench_generate`` (synthetic survey, its ``N_TASKS`` task subset, procedural
bank; built once under ``<out>/generate_inputs``). Runs, in a ``CORES``-process pool of the jobs'
own per-partition function (the Spark runner adds the same fixed JVM overhead to both):

- ``stage`` from local bricks: ``stage_ms_per_stamp`` (CPU ms of the process tree per stamp),
  ``stage_core_ms_per_stamp`` (wall x cores / stamps), ``host_table_bytes_per_stamp`` (shard
  bytes / rows: the target is <= 24 KB), ``host_table_bytes_per_quantised_stamp`` (the same
  for the stamps inside one brick file, not stitched), ``stage_survey_bytes_per_stamp`` (brick bytes read);
- ``generate --hosts`` on that host table: ``generate_from_hosts_core_ms_per_stamp`` (wall x
  cores / stamps) and ``generate_from_hosts_cpu_ms_per_stamp``: the median of
  :data:`TIMED_REPEATS` jobs after a first one on one pool of a fresh driver with the CLI's
  environment, so the workers have loaded the kernels and faulted their memory in, as reused
  Spark Python workers have (the first job on the fresh pool:
  ``generate_from_hosts_first_job_core_ms_per_stamp``; the jobs' spread: ``..._min``/``..._max``);
  target: at most the seeds' render alone per stamp (``seed_reference_ms_per_stamp`` of
  ``bench_physics``, same run); ``seed_reference_adjacent_ms_per_stamp``: the same render timed
  in the driver between the jobs, and ``generate_from_hosts_core_vs_adjacent_seed`` the ratio
  to it (the machine's speed drifts between the two benches);
  and in one process, stage by stage, ``generate_from_hosts_{read,cutout_inject,encode,write,row}_ms_per_stamp``
  (also ``..._without_arc``: the production layout, ``render.write_arc`` false);
  ``worker_cold_import_open_s`` and ``worker_cold_first_rows_s``: CPU seconds a fresh Python
  process spends on imports + opening the bank, and on the first row of each role (compiled
  kernels loaded from numba's cache, the astropy cosmology table): once per Spark Python worker
  (reused across partitions), so it amortises in production (a worker makes ~10^5 rows);
  ``generate_from_hosts_retain_{on,off}_{cpu_ms,sys_ms,page_faults}_per_stamp`` and
  ``..._max_rss_mb``: the whole job in one fresh process with the workers' memory retention
  (spark/worker_memory.py) on and off;
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
import yaml

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


def _cold_worker(cfgfile: Path, hosts: str, bank: str) -> dict:
    """One-off CPU seconds of a fresh Python process before it makes rows at full speed (what a
    Spark Python worker or a cold pool worker pays once): imports + opening the bank, then the
    first row of each role."""
    import subprocess

    got = subprocess.run([sys.executable, "-c", _COLD_WORKER, str(cfgfile), hosts, bank], capture_output=True, text=True, check=True)
    imports, first_rows = (float(v) for v in got.stdout.split()[-2:])
    return {"worker_cold_import_open_s": imports, "worker_cold_first_rows_s": first_rows}


# the timed generate: a fresh driver with the CLI's environment (spark/worker_memory.py) forks a
# pool, runs the job once on it (the workers load the kernels and the bank and fault their memory
# in: the once-per-worker cost, worker_cold_*), then `repeats` timed jobs on the same pool, as Spark
# reuses its Python workers, with the seeds' render timed in the driver before and after each;
# CPU of the driver and its workers from /proc (the pool stays open)
_TIMED_GENERATE = """
import json, logging, multiprocessing as mp, os, statistics, sys, time
logging.disable(logging.INFO)
from darkhaloscope.spark.worker_memory import set_worker_env
set_worker_env()
import numpy as np
import yaml
from darkhaloscope.config import config_from_dict
from darkhaloscope.spark.job import run_multiprocessing
cfgfile, hosts, bank, out, cores, repeats, bench_dir = sys.argv[1:8]
cfg = config_from_dict(yaml.safe_load(open(cfgfile)))
sys.path.insert(0, bench_dir)
import bench_physics as bp
templates = list(bp._templates())
stamps = bp._configs(np.random.default_rng(20240601), 40, len(templates), cfg)
def seed_ms():  # the seeds' render (bench_physics._seed_like), median over 40 stamps, this process
    return float(np.median([bp._timed(bp._seed_like, templates[k], lens, src, fw, cfg, 1)[0] for k, lens, src, fw in stamps]))
def cpu(pids):
    ticks = 0
    for pid in pids:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")
seed_ms()  # warm lenstronomy's imports and caches
t0 = time.perf_counter()
with mp.get_context("fork").Pool(int(cores)) as pool:
    rows = run_multiprocessing(cfg, "", "", bank, out + "_first", hosts=hosts, pool=pool)["rows"]
    first = time.perf_counter() - t0
    pids = [os.getpid()] + [p.pid for p in pool._pool]
    jobs, seeds = [], [seed_ms()]
    for i in range(int(repeats)):
        t0, c0 = time.perf_counter(), cpu(pids)
        g = run_multiprocessing(cfg, "", "", bank, f"{out}_{i}", hosts=hosts, pool=pool)
        jobs.append((time.perf_counter() - t0, cpu(pids) - c0))
        seeds.append(seed_ms())
wall = statistics.median(w for w, _ in jobs)
print(json.dumps({"first": first, "walls": [w for w, _ in jobs], "cpus": [c for _, c in jobs], "wall": wall,
                  "cpu": statistics.median(c for _, c in jobs), "rows": rows, "survey_bytes": g["survey_bytes"], "seeds": seeds}))
"""
TIMED_REPEATS = 3


def _timed_generate(cfgfile: Path, hosts: str, bank: str, work: Path) -> dict:
    """``generate --hosts`` on a warm ``CORES``-process pool of a fresh driver (:data:`_TIMED_GENERATE`):
    after a first job (the workers' one-off costs: what a job this small pays), ``TIMED_REPEATS``
    jobs, each followed by the seeds' render timed in the driver while the pool idles. Core ms
    (wall x cores) and CPU ms (driver + workers) per stamp: the median job; the spread of the
    jobs; and the seeds' render measured between them (``seed_reference_adjacent_ms_per_stamp``,
    the median of the brackets), since this machine's speed drifts by 10-30 % within the minutes
    between bench_physics and this bench, and a 2-process job drifts more than a 1-process render."""
    import json
    import statistics
    import subprocess

    got = subprocess.run([sys.executable, "-c", _TIMED_GENERATE, str(cfgfile), hosts, bank, str(work / "rows"), str(CORES),
                          str(TIMED_REPEATS), str(HERE)], capture_output=True, text=True, check=True)
    r = json.loads(got.stdout.strip().splitlines()[-1])
    per_stamp = 1e3 * CORES / r["rows"]
    seed = statistics.median(r["seeds"])
    return {
        "generate_from_hosts_first_job_core_ms_per_stamp": r["first"] * per_stamp,
        "generate_from_hosts_core_ms_per_stamp": r["wall"] * per_stamp,
        "generate_from_hosts_core_ms_per_stamp_min": min(r["walls"]) * per_stamp,
        "generate_from_hosts_core_ms_per_stamp_max": max(r["walls"]) * per_stamp,
        "generate_from_hosts_cpu_ms_per_stamp": 1e3 * r["cpu"] / r["rows"],
        "generate_from_hosts_survey_bytes": r["survey_bytes"],
        "seed_reference_adjacent_ms_per_stamp": seed,
        "generate_from_hosts_core_vs_adjacent_seed": r["wall"] * per_stamp / seed,
    }


_ONE_PROCESS_JOB = """
import logging, resource, sys
from multiprocessing.pool import ThreadPool
logging.disable(logging.INFO)
import yaml
from darkhaloscope.config import config_from_dict
from darkhaloscope.spark.job import run_multiprocessing
cfg = config_from_dict(yaml.safe_load(open(sys.argv[1])))
hosts, bank, out = sys.argv[2], sys.argv[3], sys.argv[4]
with ThreadPool(1) as pool:  # the job's own path, every unit in this one process
    run_multiprocessing(cfg, "", "", bank, out + "_first", hosts=hosts, pool=pool)  # kernels, bank, cosmology table
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    n = run_multiprocessing(cfg, "", "", bank, out, hosts=hosts, pool=pool)["rows"]
    r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))  # kB, this process only
print(1e3 * cpu / n, 1e3 * (r1.ru_stime - r0.ru_stime) / n, (r1.ru_minflt - r0.ru_minflt) / n, hwm / 1024)
"""


def _retention(cfgfile: Path, hosts: str, bank: str, out: Path) -> dict:
    """The whole generate-from-hosts job in one fresh process (every shard, in order, after a
    warm-up pass), with the workers' memory retention (spark/worker_memory.py) on and off: CPU ms,
    system CPU ms and minor page faults per row, and the process's peak RSS (MB)."""
    import subprocess

    from darkhaloscope.spark.worker_memory import SWITCH, WORKER_ENV

    figures = {}
    for state in ("on", "off"):
        env = dict(os.environ, **{SWITCH: "1" if state == "on" else "0"})
        for key, value in WORKER_ENV.items():
            if state == "on":
                env[key] = value
            else:
                env.pop(key, None)
        got = subprocess.run([sys.executable, "-c", _ONE_PROCESS_JOB, str(cfgfile), hosts, bank, str(out / f"retain_{state}")],
                             capture_output=True, text=True, check=True, env=env)
        cpu, sys_cpu, faults, rss = (float(v) for v in got.stdout.split()[-4:])
        figures.update({f"generate_from_hosts_retain_{state}_cpu_ms_per_stamp": cpu, f"generate_from_hosts_retain_{state}_sys_ms_per_stamp": sys_cpu,
                        f"generate_from_hosts_retain_{state}_page_faults_per_stamp": faults, f"generate_from_hosts_retain_{state}_max_rss_mb": rss})
    return figures


def _self_and_children_cpu() -> float:
    """CPU seconds (user + system) of this process and its waited-for children (the process
    pool's workers): monotonic, unlike a /proc walk over live descendants, which loses the CPU of
    a descendant that exits unwaited inside the window (a Spark JVM of an earlier bench gave a
    negative figure that way)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(cfg, out_dir) -> dict:
    from darkhaloscope.config import config_to_dict, replace
    from darkhaloscope.spark import stage

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

    cfgfile = work / "config.yaml"
    cfgfile.write_text(yaml.safe_dump(config_to_dict(cfg)))
    os.sync()  # the inputs and host table just written (~1.4 GB) are flushed before the generate is timed
    figures.update(_timed_generate(cfgfile, s["dataset"], inputs["bank"], work))
    figures.update(_per_stamp(cfg, s["dataset"], inputs["bank"], work))
    figures.update(_cold_worker(cfgfile, s["dataset"], inputs["bank"]))
    figures.update(_retention(cfgfile, s["dataset"], inputs["bank"], work))
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
