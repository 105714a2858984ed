"""``emr plan``: partitions, executors, wall time and cost of a run, from measured per-stamp costs.

The formula (all inputs printed with the plan):

    c          = dr10_end_to_end_core_ms_per_stamp [core-ms / stamp]   (make bench at DR10's density and
                 file format: benchmarks/bench_dr10.py), else end_to_end_core_ms_per_stamp, else the default
    b          = bytes_per_stamp                   [bytes / stamp]
    executors  = instances * floor(vcpus_per_instance / executor_cores) - 1   (one goes to the driver)
    slots      = executors * executor_cores        [concurrent Python tasks]
    work       = N * c / 3.6e6                     [vCPU-hours of stamp making]
    wall       = startup_minutes / 60 + work / (slots * efficiency)            [hours]
    partitions = max(ceil(N * b / target_shard_bytes), 2 * slots), at most N
    cost       = wall * (core * p + spot * p * (1 - spot_discount) + p_master)          (EC2)
               + wall * emr_fee_fraction * (core * p + spot * p + p_master)            (EMR fee)

``efficiency`` is ``emr.parallel_efficiency`` when ``c`` comes from ``make bench`` (a pure
compute figure on one core); it is 1 for the default, because the default is already an
end-to-end cluster figure: the seeds made 11,751,600 stamps (490 GB) in ~2.5 h on 34 m5.2xlarge
(272 vCPU, ~680 vCPU-hours), i.e. c = 680 * 3.6e6 / 11,751,600 = 208.3 vCPU-ms per stamp and
b = 490e9 / 11,751,600 = 41,696 bytes per stamp.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import Config
from ..errors import DataFileError

SEED_STAMPS = 11_751_600
SEED_VCPU_HOURS = 680.0
SEED_BYTES = 490e9
DEFAULT_CORE_MS_PER_STAMP = SEED_VCPU_HOURS * 3.6e6 / SEED_STAMPS
DEFAULT_BYTES_PER_STAMP = SEED_BYTES / SEED_STAMPS
BENCH_KEYS = ("dr10_end_to_end_core_ms_per_stamp", "end_to_end_core_ms_per_stamp", "bytes_per_stamp", "dr10_stage_core_ms_per_stamp",
              "stage_core_ms_per_stamp", "host_table_bytes_per_stamp", "generate_from_hosts_core_ms_per_stamp")
# stage defaults when `make bench` has not run: bench_stage on the demo survey (2 shared cores,
# load ~2.8, 2026-12-05): local bricks; a DR10 brick holds ~37 LRGs, so real stages cost more I/O.
DEFAULT_STAGE_CORE_MS_PER_STAMP = 6.9
DEFAULT_HOST_BYTES_PER_STAMP = 21_486.0
# S3 Standard, us-east-1, first 50 TB (USD per GB-month): for the storage line only.
S3_USD_PER_GB_MONTH = 0.023


@dataclass(frozen=True)
class RunPlan:
    """A sized run. Times in hours, sizes in bytes/GB/MB as named, money in USD."""

    n_tasks: int
    core_ms_per_stamp: float
    bytes_per_stamp: float
    cost_source: str
    bytes_source: str
    efficiency: float
    instances: int
    core_instances: int
    spot_instances: int
    instance_type: str
    executors: int
    executor_cores: int
    slots: int
    partitions: int
    stamps_per_partition: float
    shard_mb: float
    output_gb: float
    work_vcpu_hours: float
    startup_hours: float
    wall_hours: float
    ec2_usd: float
    emr_fee_usd: float
    cost_usd: float
    s3_usd_per_month: float


def read_bench(path: str | Path | None) -> dict:
    """The per-stamp figures from ``make bench``'s results.json ({} when the file is absent)."""
    if path is None or not Path(path).is_file():
        return {}
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataFileError(f"benchmark results {path} are not readable JSON: {exc}", path=str(path)) from None
    if not isinstance(data, dict):
        raise DataFileError(f"benchmark results {path} must be a JSON object", path=str(path))
    out = {}
    for key in BENCH_KEYS:
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise DataFileError(f"benchmark figure '{key}' in {path} must be a positive number, got {value!r}", path=str(path), field=key)
            out[key] = float(value)
    return out


def plan_run(cfg: Config, n_tasks: int, bench: dict | None = None, bench_path: str = "") -> RunPlan:
    """Size the generate job of ``n_tasks`` stamps on the cluster of ``cfg.emr`` (formula above).
    Generating from a host table (``emr.layout.uses_hosts``) uses
    ``generate_from_hosts_core_ms_per_stamp`` when the bench has it (else the from-bricks figure,
    an upper bound: it includes the survey read)."""
    from .layout import uses_hosts

    bench = bench or {}
    src = bench_path or "bench"
    key = next((k for k in ("dr10_end_to_end_core_ms_per_stamp", "end_to_end_core_ms_per_stamp") if k in bench), None)
    if uses_hosts(cfg) and "generate_from_hosts_core_ms_per_stamp" in bench:
        c, cost_source, efficiency = bench["generate_from_hosts_core_ms_per_stamp"], f"{src}: generate_from_hosts_core_ms_per_stamp", cfg.emr.parallel_efficiency
    elif key is not None:  # DR10's own density and file format first (tile-by-tile cutouts, DR10 compression)
        c, cost_source, efficiency = bench[key], f"{src}: {key}", cfg.emr.parallel_efficiency
    else:
        c = DEFAULT_CORE_MS_PER_STAMP
        cost_source = "default: the seeds' 680 vCPU-h / 11,751,600 stamps (end-to-end, efficiency 1)"
        efficiency = 1.0
    if "bytes_per_stamp" in bench:
        b, bytes_source = bench["bytes_per_stamp"], f"{src}: bytes_per_stamp"
    else:
        b, bytes_source = DEFAULT_BYTES_PER_STAMP, "default: the seeds' 490 GB / 11,751,600 stamps"
    return _size(cfg, n_tasks, c, b, cost_source, bytes_source, efficiency)


def plan_stage(cfg: Config, n_tasks: int, bench: dict | None = None, bench_path: str = "") -> RunPlan:
    """Size the stage job (survey -> host table) of ``n_tasks`` positions, same formula, with
    ``dr10_stage_core_ms_per_stamp`` (DR10 bricks at DR10 density) or ``stage_core_ms_per_stamp``
    (the demo survey) and ``host_table_bytes_per_stamp`` (bench, else the defaults)."""
    bench = bench or {}
    src = bench_path or "bench"
    key = next((k for k in ("dr10_stage_core_ms_per_stamp", "stage_core_ms_per_stamp") if k in bench), None)
    if key is not None:
        c, cost_source = bench[key], f"{src}: {key}"
    else:
        c, cost_source = DEFAULT_STAGE_CORE_MS_PER_STAMP, "default: bench_stage on the demo survey (local bricks)"
    if "host_table_bytes_per_stamp" in bench:
        b, bytes_source = bench["host_table_bytes_per_stamp"], f"{src}: host_table_bytes_per_stamp"
    else:
        b, bytes_source = DEFAULT_HOST_BYTES_PER_STAMP, "default: bench_stage on the demo survey"
    return _size(cfg, n_tasks, c, b, cost_source, bytes_source, cfg.emr.parallel_efficiency)


def _size(cfg: Config, n_tasks: int, c: float, b: float, cost_source: str, bytes_source: str, efficiency: float) -> RunPlan:
    if n_tasks < 1:
        raise DataFileError(f"--tasks must be >= 1, got {n_tasks}", field="tasks")
    emr = cfg.emr
    instances = emr.core_instances + emr.spot_instances
    per_instance = emr.vcpus_per_instance // emr.executor_cores
    executors = max(instances * per_instance - 1, 1)
    slots = executors * emr.executor_cores
    work = n_tasks * c / 3.6e6
    startup = emr.startup_minutes / 60.0
    wall = startup + work / (slots * efficiency)
    total_bytes = n_tasks * b
    partitions = min(max(math.ceil(total_bytes / (emr.target_shard_mb * 1e6)), 2 * slots), n_tasks)
    p, pm = emr.hourly_price_usd, emr.master_hourly_price_usd
    ec2 = wall * (emr.core_instances * p + emr.spot_instances * p * (1.0 - emr.spot_discount) + pm)
    fee = wall * emr.emr_fee_fraction * (emr.core_instances * p + emr.spot_instances * p + pm)
    return RunPlan(
        n_tasks=n_tasks, core_ms_per_stamp=c, bytes_per_stamp=b, cost_source=cost_source,
        bytes_source=bytes_source, efficiency=efficiency, instances=instances,
        core_instances=emr.core_instances, spot_instances=emr.spot_instances,
        instance_type=emr.instance_type, executors=executors, executor_cores=emr.executor_cores,
        slots=slots, partitions=partitions, stamps_per_partition=n_tasks / partitions,
        shard_mb=total_bytes / partitions / 1e6, output_gb=total_bytes / 1e9,
        work_vcpu_hours=work, startup_hours=startup, wall_hours=wall, ec2_usd=ec2,
        emr_fee_usd=fee, cost_usd=ec2 + fee, s3_usd_per_month=total_bytes / 1e9 * S3_USD_PER_GB_MONTH,
    )


def format_plan(plan: RunPlan, cfg: Config) -> str:
    """The plan as the text ``emr plan`` prints."""
    p = plan
    return "\n".join([
        f"emr plan: {p.n_tasks:,} stamps on {p.instances} x {p.instance_type} "
        f"({p.core_instances} on-demand core + {p.spot_instances} spot task), {cfg.emr.release_label}",
        f"  per-stamp cost     : {p.core_ms_per_stamp:.1f} core-ms/stamp  [{p.cost_source}]",
        f"  output size        : {p.bytes_per_stamp:,.0f} B/stamp -> {p.output_gb:,.1f} GB  [{p.bytes_source}]",
        f"  partitions         : {p.partitions:,} (~{p.stamps_per_partition:,.0f} stamps, ~{p.shard_mb:.1f} MB per shard; "
        f"config generate.n_partitions = {cfg.generate.n_partitions:,})",
        f"  executors          : {p.executors} x {p.executor_cores} cores = {p.slots} task slots",
        f"  stamp work         : {p.work_vcpu_hours:,.1f} vCPU-hours",
        f"  expected wall time : {p.wall_hours:.2f} h ({p.startup_hours:.2f} h start-up + "
        f"{p.wall_hours - p.startup_hours:.2f} h at {p.efficiency:.0%} efficiency)",
        f"  expected cost      : ${p.cost_usd:,.2f} (EC2 ${p.ec2_usd:,.2f} + EMR fee ${p.emr_fee_usd:,.2f}); "
        f"S3 storage ${p.s3_usd_per_month:,.2f}/month",
    ])


def plan_as_dict(plan: RunPlan, stage: RunPlan | None = None) -> dict:
    """JSON-able plan (``emr plan --json``): the generate job's figures, and with a stage step
    ``stage`` (the same figures for it) and the run's ``total_wall_hours`` / ``total_cost_usd``."""
    out = asdict(plan)
    if stage is not None:
        out["stage"] = asdict(stage)
        out["total_wall_hours"] = plan.wall_hours + stage.wall_hours - plan.startup_hours  # one cluster start-up
        out["total_cost_usd"] = (plan.cost_usd + stage.cost_usd) * out["total_wall_hours"] / (plan.wall_hours + stage.wall_hours)
    return out


def format_stage_plan(stage: RunPlan, plan: RunPlan) -> str:
    """The stage step's lines of ``emr plan`` and the run's total (one cluster start-up)."""
    d = plan_as_dict(plan, stage)
    return "\n".join([
        "emr plan, stage step (survey -> host table, read once) on the same cluster:",
        f"  per-stamp cost     : {stage.core_ms_per_stamp:.1f} core-ms/stamp  [{stage.cost_source}]",
        f"  host table size    : {stage.bytes_per_stamp:,.0f} B/stamp -> {stage.output_gb:,.1f} GB  [{stage.bytes_source}]",
        f"  stamp work         : {stage.work_vcpu_hours:,.1f} vCPU-hours, {stage.wall_hours - stage.startup_hours:.2f} h",
        f"  S3 storage         : ${stage.s3_usd_per_month:,.2f}/month for the host table",
        f"run total (stage + generate, one start-up): {d['total_wall_hours']:.2f} h, ${d['total_cost_usd']:,.2f}; "
        "a new recipe on the same hosts costs the generate step alone",
    ])
