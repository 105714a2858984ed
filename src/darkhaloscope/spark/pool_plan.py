"""Work units of the multiprocessing runner (``job.run_multiprocessing``): who reads which task
file, and in which order the pool takes the units.

The parent reads only the light columns of each task file (``brickname``, ``split``, ``role``)
to learn which unit its rows belong to. A file whose rows all belong to one unit (a host table
staged with the same ``generate.n_partitions`` is laid out exactly so: one file per partition
and split) is read by the worker that runs the unit, so its stamp blobs never pass through the
parent or a pipe. Rows of a mixed file (a task table from ``build-tasks``) are read by the
parent and shipped, as before.

A host table staged with the run's partition count needs no reading at all: its manifest lists
one shard per (partition, split), each a unit (:func:`host_table_units`; the Spark runner uses
the same units, so generate from hosts shuffles no stamp blobs either). Workers check that every
row they read belongs to their unit.

A unit is a partition, or, when the stamps come from a host table (no brick to share between a
partition's splits), a partition's split: each shard is written by exactly one unit either way,
so the shards' bytes do not change. Units run largest first (longest-processing-time order,
weighted by role: a painted role costs about twice a control), so two cores finish together
instead of one idling while the other runs the last large partition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from ..config import PAINTED_ROLES
from ..dataset import manifest as mf
from ..dataset.storage import StorageOptions, filesystem_for, join
from ..errors import CatalogError, DatasetError, redact
from .partition import JobContext, process_partition
from .tasks_input import hive_values, partition_of, read_task_file
from .worker_memory import retain_freed_memory

PAINTED_WEIGHT = 2.0  # cost of a painted-role row relative to a control's (ordering only)
_KEY_COLUMNS = ("brickname", "split", "role")


@dataclass
class Unit:
    """One pool job: partition ``partition`` (and only ``split`` when set): the task files its
    worker reads whole, the rows the parent read for it, and its weight (rows, painted x2)."""

    partition: int
    split: str | None = None
    files: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    weight: float = 0.0

    @property
    def key(self) -> tuple[int, str]:
        return self.partition, self.split or ""


def _weight(role: Any) -> float:
    return PAINTED_WEIGHT if role in PAINTED_ROLES else 1.0


def _light_columns(url: str, options: StorageOptions | None) -> dict[str, list]:
    """brickname, split and role of every row of one task file (hive folder keys filled in)."""
    fs, path = filesystem_for(url, options)
    with fs.open_input_file(path) as f:
        pf = pq.ParquetFile(f)
        names = [c for c in _KEY_COLUMNS if c in pf.schema_arrow.names]
        table = pf.read(columns=names)
    hive = hive_values(url)
    return {c: table.column(c).to_pylist() if c in names else [hive.get(c)] * table.num_rows for c in _KEY_COLUMNS}


def plan_units(files: list[str], n_partitions: int, options: StorageOptions | None, check_roles: bool, by_split: bool) -> list[Unit]:
    """The units of a run over task ``files``, largest first (see module doc). ``by_split``: one
    unit per (partition, split) instead of per partition."""
    units: dict[tuple[int, str], Unit] = {}

    def unit(brickname: Any, split: Any) -> Unit:
        p, s = partition_of(brickname, n_partitions), (str(split) if by_split else None)
        return units.setdefault((p, s or ""), Unit(p, s))

    for url in files:
        cols = _light_columns(url, options)
        keys = {(partition_of(b, n_partitions), str(s) if by_split else "") for b, s in zip(cols["brickname"], cols["split"], strict=True)}
        if len(keys) == 1 and None not in cols["brickname"]:
            u = unit(cols["brickname"][0], cols["split"][0])
            u.files.append(url)
            u.weight += sum(_weight(r) for r in cols["role"])
            continue
        for task in read_task_file(url, options, check_roles):  # mixed file: the parent reads and ships its rows
            u = unit(task["brickname"], task["split"])
            u.rows.append(task)
            u.weight += _weight(task.get("role"))
    return sorted(units.values(), key=lambda u: (-u.weight, u.key))


def host_table_units(hosts: str, files: list[str], n_partitions: int, options: StorageOptions | None) -> list[Unit] | None:
    """The units of a run over a host table staged with ``n_partitions`` (its manifest says so):
    each shard ``split=<s>/part-<p>.parquet`` holds exactly partition p's split-s positions (stage
    keyed them with the same :func:`~.tasks_input.partition_of`), so it is one unit, weighted by
    its row count, and nothing needs reading here. None when the manifest's partition count or
    shard list differs from ``files`` (then :func:`plan_units` reads the light columns)."""
    try:
        manifest = mf.read_manifest(hosts, options)
    except DatasetError:
        return None
    if manifest.get("n_partitions") != n_partitions:
        return None
    units = [Unit(int(s["partition"]), str(s["split"]), [join(hosts, s["path"])], [], float(s["rows"])) for s in manifest.get("shards", [])]
    if sorted(f for u in units for f in u.files) != sorted(files):
        return None
    return sorted(units, key=lambda u: (-u.weight, u.key))


def run_unit(unit: Unit, ctx: JobContext, check_roles: bool) -> list[dict]:
    """Worker side: the unit's tasks (its files read here, checked to belong to the unit, plus
    the rows shipped with it) -> :func:`~.partition.process_partition` (sorts them by task_id)."""
    retain_freed_memory()  # before the unit's files are read (spark/worker_memory.py)
    tasks: list[Mapping[str, Any]] = list(unit.rows)
    n = ctx.cfg.generate.n_partitions
    for url in unit.files:
        rows = read_task_file(url, ctx.options, check_roles)
        for i, row in enumerate(rows):
            if partition_of(row["brickname"], n) != unit.partition or (unit.split is not None and row["split"] != unit.split):
                raise CatalogError(f"task file {redact(url)} row {i}: brick {row['brickname']!r} / split {row['split']!r} is not in "
                                   f"partition {unit.partition} of {n}{'' if unit.split is None else ' split ' + unit.split}, "
                                   "where the file's manifest or first rows put it", path=redact(url), row=i, field="brickname")
        tasks.extend(rows)
    return process_partition(unit.partition, tasks, ctx)
