"""The per-partition work of the generate job, shared by the Spark and multiprocessing runners.

:func:`process_partition` takes the tasks of one partition (a brick's tasks are all in one),
opens the bank and a brick reader once, makes one row per task (cut, inject, encode), and writes
one shard per split at ``<dataset>/split=<split>/part-<partition:05d>.parquet``. It returns one
small summary per shard. No Spark here: the same function runs in a Spark executor and in a
``multiprocessing`` pool.

Rows are made in ``task_id`` order, so a shard's bytes do not depend on the order in which the
tasks arrived. An exception while making one row becomes a row with ``cutout_ok = false`` and a
reason starting ``exception:``; it is counted (``n_failed``) and never kills the partition.
Failing to open the bank or the bricks (every task would fail) or to write a shard does fail
the partition, so Spark retries it and, failing again, the job stops with the error.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from .._version import code_version
from ..config import SPLITS, Config, config_hash
from ..dataset.hosts import host_cutout, host_hash
from ..dataset.manifest import shard_relpath
from ..dataset.rows import encode_row
from ..dataset.schema import COLUMN_NAMES, STAMP_SCHEMA
from ..dataset.storage import StorageOptions, join
from ..dataset.writer import DatasetError, ShardWriter, WriterSettings, read_footer, sha256_of
from ..errors import CatalogError, redact
from ..survey import remote
from .host_rows import finish_host_row, make_host_row
from .worker_memory import retain_freed_memory

log = logging.getLogger("darkhaloscope.generate")

IDENTITY = ("task_id", "galaxy_id", "brickname", "ra", "dec", "split", "role")
EXCEPTION_PREFIX = "exception: "
_LOG_FAILURES = 3  # failures logged per shard; the rest are counted
# task-table column -> stamp-row column, copied into rows that failed with an exception
_TASK_TO_ROW = {
    **{f"psfsize_{b}": f"psf_fwhm_{b}" for b in "grz"},
    **{f"psfdepth_{b}": f"psfdepth_{b}" for b in "grz"},
    **{f"flux_{b}": f"flux_{b}" for b in "grz"},
}

# value types finish_row passes through as they are (float is not one: NaN becomes null)
_PLAIN = frozenset({type(None), str, bytes, int, bool})

TaskFn = Callable[[Mapping[str, Any], "PartitionResources"], dict]


@dataclass(frozen=True)
class JobContext:
    """Everything an executor needs, shipped once per partition (picklable).

    ``dataset_url``: ``<out>/<dataset_name>``; ``bricks``: survey root; ``bank``: bank file;
    ``task_fn``: row maker (default :func:`make_row`; tests and fault-injection hooks swap it).
    """

    cfg: Config
    dataset_url: str
    bricks: str
    bank: str
    options: StorageOptions = field(default_factory=StorageOptions)
    resume: bool = False
    task_fn: TaskFn | None = None
    config_hash: str = ""
    code_version: str = ""
    kind: str = "generate"  # "generate" (rows) or "stage" (host rows, schema below)
    hosts: str = ""  # generate: the host table the tasks come from (no survey read), else ""
    schema: pa.Schema | None = None  # stage: the host table's schema (task columns passed through)

    @classmethod
    def create(cls, cfg: Config, dataset_url: str, bricks: str, bank: str, options: StorageOptions, resume: bool = False, task_fn: TaskFn | None = None,
               *, kind: str = "generate", hosts: str = "", schema: pa.Schema | None = None) -> JobContext:
        """The context of a generate (``kind="generate"``, from ``bricks`` or ``hosts``) or
        stage (``kind="stage"``, ``schema`` from ``dataset.host_schema.host_schema``) job. The
        hash the shards carry is the config's, or for a host table ``dataset.hosts.host_hash``."""
        if kind not in ("generate", "stage"):
            raise ValueError(f"job kind {kind!r}: expected 'generate' or 'stage'")
        digest = host_hash(cfg) if kind == "stage" else config_hash(cfg)
        return cls(cfg, dataset_url, bricks, bank, options, resume, task_fn, digest, code_version(), kind, hosts, schema)

    @property
    def uses_bank(self) -> bool:
        return self.kind == "generate"

    @property
    def uses_bricks(self) -> bool:
        return not self.hosts


class ResourceError(RuntimeError):
    """Opening a per-partition resource (bank, bricks) failed: fails the partition, not one row."""


class PartitionResources:
    """The bank and the brick reader of one partition, opened lazily, once."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg

    @cached_property
    def bank(self):
        try:
            return open_bank(self.ctx.bank, self.ctx.options, self.cfg)
        except Exception as exc:
            raise ResourceError(exc) from exc

    @cached_property
    def reader(self):
        try:
            from ..survey import http
            from ..survey.brick_reader import BrickReader

            http.configure(http.HttpSettings.from_config(self.cfg.stage))  # https mirrors: bounded, retried
            return BrickReader(self.ctx.bricks, self.cfg.survey.brick_cache_size, self.ctx.options,
                               decoded_cache_mb=self.cfg.survey.decoded_cache_mb)
        except Exception as exc:
            raise ResourceError(exc) from exc

    @cached_property
    def inject(self):
        try:
            from ..inject import inject

            return inject
        except Exception as exc:
            raise ResourceError(exc) from exc

    def open_all(self) -> None:
        """Open everything the row maker needs now, so a missing bank or module fails the
        partition at once instead of turning every row into a failure."""
        if self.ctx.uses_bricks:
            _ = self.reader
        if self.ctx.uses_bank:
            _ = self.bank, self.inject

    def close(self) -> None:
        """Close the partition's bricks (the bank stays open for the worker's next partition:
        ``SourceBank.open`` reuses it per process)."""
        reader = self.__dict__.get("reader")
        if reader is not None:
            try:
                reader.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


def open_bank(url: str, options: StorageOptions, cfg: Config):
    """Open the source bank at a local path or ``s3://`` URL (endpoint from ``options``);
    ``SourceBank.open`` keeps it open per process, so a worker's later partitions reuse it."""
    from ..sources.bank import SourceBank

    return SourceBank.open(url, cache_dir=cfg.paths.cache_dir or None, options=options)


class StagedFailure(Exception):
    """A host row whose stage raised (reason ``exception: ...``): generate from hosts fails the
    task the same way generate from bricks would, with the same reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def make_row(task: Mapping[str, Any], res: PartitionResources) -> dict:
    """The real row maker: the stamp cut from its brick (or rebuilt from its host row when the
    job reads a host table), injected or not; returns the row (raw arrays, see dataset.rows)."""
    cfg = res.cfg
    if res.ctx.hosts:
        if not task.get("cutout_ok") and str(task.get("cutout_reason") or "").startswith(EXCEPTION_PREFIX):
            raise StagedFailure(str(task["cutout_reason"])[len(EXCEPTION_PREFIX):])
        cut, host = host_cutout(task, cfg)
        row = res.inject(task, cut, res.bank, cfg)
        # the dataset layer reuses the host blob's bytes (a control's whole stamp_npz, a painted
        # row's integer sections): dataset.stamp_splice
        row["host_stamp"] = host
        return row
    cut = res.reader.cutout(task["ra"], task["dec"], cfg.survey.stamp_size, cfg.survey.bands, brickname=task["brickname"])
    return res.inject(task, cut, res.bank, cfg)


def failure_row(task: Mapping[str, Any], exc: BaseException) -> dict:
    """The row of a task whose processing raised: identity, cutout_ok = false, the reason."""
    row = {k: task.get(k) for k in IDENTITY}
    for src, dst in _TASK_TO_ROW.items():
        if task.get(src) is not None:
            row[dst] = task[src]
    message = exc.reason if isinstance(exc, StagedFailure) else redact(f"{type(exc).__name__}: {exc}")
    row["cutout_ok"] = False
    row["cutout_reason"] = EXCEPTION_PREFIX + message[:500]
    return row


def finish_row(row: Mapping[str, Any], task: Mapping[str, Any], ctx: JobContext) -> dict:
    """A complete schema row: identity from the task (a row cannot claim another task),
    arrays encoded to NPZ if the row maker left them raw, provenance filled in."""
    encoded = encode_row(row, ctx.cfg.render.write_arc)
    out = {k: encoded.get(k) for k in COLUMN_NAMES}
    for k in IDENTITY:
        out[k] = task[k]
    if out.get("cutout_ok") is None:
        out["cutout_ok"] = False
        out["cutout_reason"] = out.get("cutout_reason") or "row maker returned no cutout_ok"
    out["seed"] = ctx.cfg.seed if out.get("seed") is None else out["seed"]
    out["supersampling"] = ctx.cfg.render.supersampling if out.get("supersampling") is None else out["supersampling"]
    # Provenance is the driver's: an executor's own view (a code zip without git, a worker
    # started before a commit) must not change the bytes of a shard.
    out["config_hash"] = ctx.config_hash
    out["code_version"] = ctx.code_version
    for k, v in out.items():  # numpy scalars -> Python; NaN in a number column -> null
        if type(v) in _PLAIN:  # most values: nothing to convert (one set lookup, not two isinstance)
            continue
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and v != v:
            v = None
        out[k] = v
    return out


def _ensure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def _done_shard(url: str, expected: int, ctx: JobContext) -> dict | None:
    """Summary of an existing shard that a resume may keep (footer rows and config hash match)."""
    try:
        meta = read_footer(url, ctx.options)
    except DatasetError:
        return None
    kv = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
    if (meta.num_rows != expected or kv.get("darkhaloscope.config_hash") != ctx.config_hash
            or kv.get("darkhaloscope.n_partitions") != str(ctx.cfg.generate.n_partitions)):
        return None
    digest, size = sha256_of(url, ctx.options)
    return {"rows": meta.num_rows, "bytes": size, "sha256": digest,
            "n_failed": int(kv.get("darkhaloscope.n_failed", 0)), "n_not_ok": int(kv.get("darkhaloscope.n_not_ok", 0))}


FAULT_KILL_ENV = "DARKHALOSCOPE_FAULT_KILL_PARTITION"


def _fault_kill_hook(index: int) -> None:
    """Reliability-test hook: with ``$DARKHALOSCOPE_FAULT_KILL_PARTITION = "<n>:<marker file>"``
    the worker running partition n dies (``os._exit``) after publishing a shard, once: the
    marker, created with O_EXCL, spares every later attempt. Unset in production: a no-op."""
    spec = os.environ.get(FAULT_KILL_ENV)
    if not spec:
        return
    part, _, marker = spec.partition(":")
    if int(part) != index:
        return
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os._exit(86)


def process_partition(index: int, tasks: Iterable[Mapping[str, Any]], ctx: JobContext) -> list[dict]:
    """Make and write the shards of partition ``index``; one summary dict per non-empty split:
    ``split, partition, rows, bytes, sha256, n_failed, n_not_ok, seconds, skipped``."""
    _ensure_logging()
    retain_freed_memory()  # once per worker process (spark/worker_memory.py)
    t0 = time.perf_counter()
    tasks = sorted(tasks, key=lambda t: int(t["task_id"]))
    for a, b in zip(tasks, tasks[1:], strict=False):
        if int(a["task_id"]) == int(b["task_id"]):
            raise CatalogError(f"task_id {a['task_id']} appears twice in the task table", field="task_id", row=int(a["task_id"]))
    by_split = {s: [t for t in tasks if t["split"] == s] for s in SPLITS}
    summaries: list[dict] = []
    todo: dict[str, list] = {}
    for split, split_tasks in by_split.items():
        if not split_tasks:
            continue
        url = join(ctx.dataset_url, shard_relpath(split, index))
        kept = _done_shard(url, len(split_tasks), ctx) if ctx.resume else None
        if kept is not None:
            summaries.append({"split": split, "partition": index, **kept, "seconds": 0.0, "skipped": True})
            log.info("generate: kept %s (%d rows, resume)", shard_relpath(split, index), kept["rows"])
        else:
            todo[split] = split_tasks
    if not todo:
        return summaries
    task_fn = ctx.task_fn or (make_host_row if ctx.kind == "stage" else make_row)
    finish = finish_host_row if ctx.kind == "stage" else finish_row
    res = PartitionResources(ctx)
    if ctx.task_fn is None:
        try:
            res.open_all()
        except ResourceError as exc:
            raise exc.__cause__ from None
        if ctx.uses_bricks:  # stamps per brick decide whole-brick vs tile-by-tile decoding (survey/decoded.py)
            res.reader.expect_counts(Counter(t["brickname"] for ts in todo.values() for t in ts))
    read0 = remote.bytes_read()
    settings = WriterSettings.from_config(ctx.cfg.generate)
    footer = {"darkhaloscope.config_hash": ctx.config_hash, "darkhaloscope.code_version": ctx.code_version,
              "darkhaloscope.n_partitions": str(ctx.cfg.generate.n_partitions)}
    # One writer per split, fed in task_id order (task_id groups a brick's objects), so each
    # brick is read once even when its tasks go to three shards.
    writers: dict[str, ShardWriter] = {}
    counts = {split: {"n_failed": 0, "n_not_ok": 0} for split in todo}
    try:
        for split in todo:
            writers[split] = ShardWriter(join(ctx.dataset_url, shard_relpath(split, index)), settings, ctx.options, footer,
                                         schema=ctx.schema or STAMP_SCHEMA)
        for task in sorted((t for ts in todo.values() for t in ts), key=lambda t: int(t["task_id"])):
            split = task["split"]
            try:
                row = finish(task_fn(task, res), task, ctx)
            except ResourceError as exc:
                raise exc.__cause__ from None
            except Exception as exc:  # noqa: BLE001 - one bad task must not kill the partition
                row = finish(failure_row(task, exc), task, ctx)
                counts[split]["n_failed"] += 1
                if counts[split]["n_failed"] <= _LOG_FAILURES:
                    log.warning("generate: %s: task %s failed: %s%s", shard_relpath(split, index), task.get("task_id"), row["cutout_reason"],
                                " (further failures in this shard are only counted)" if counts[split]["n_failed"] == _LOG_FAILURES else "")
            counts[split]["n_not_ok"] += not row["cutout_ok"]
            writers[split].write_row(row)
        survey_bytes = remote.bytes_read() - read0  # this partition's reads of brick files (all splits)
        for split, writer in writers.items():
            c = counts[split]
            summary = writer.close({"darkhaloscope.n_failed": c["n_failed"], "darkhaloscope.n_not_ok": c["n_not_ok"]})
            dt = time.perf_counter() - t0
            summaries.append({"split": split, "partition": index, "rows": summary.rows, "bytes": summary.bytes,
                              "sha256": summary.sha256, **c, "seconds": dt, "skipped": False,
                              "survey_bytes": survey_bytes if split == next(iter(writers)) else 0})
            log.info("generate: wrote %s: %d rows (%d failed, %d not ok), %.1f KB/row, %.1f rows/s",
                     shard_relpath(split, index), summary.rows, c["n_failed"], c["n_not_ok"],
                     summary.bytes / 1024 / max(summary.rows, 1), summary.rows / max(dt, 1e-9))
            _fault_kill_hook(index)
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    finally:
        res.close()
    log.info("generate: partition %d done in %.1f s", index, time.perf_counter() - t0)
    return summaries
