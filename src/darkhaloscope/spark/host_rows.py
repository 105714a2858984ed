"""The stage job's row maker and row finisher (the host-table counterparts of
``partition.make_row`` / ``partition.finish_row``), run by ``partition.process_partition``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dataset.hosts import host_row

if TYPE_CHECKING:  # pragma: no cover
    from .partition import JobContext, PartitionResources

IDENTITY = ("task_id", "galaxy_id", "brickname", "ra", "dec", "split", "role")


def make_host_row(task: Mapping[str, Any], res: PartitionResources) -> dict:
    """Cut the position's stamp from the bricks (image, invvar, maskbits; ``ok=False`` and a
    reason naming the file when it cannot be made) and return its host row."""
    cfg = res.cfg
    cut = res.reader.cutout(task["ra"], task["dec"], cfg.survey.stamp_size, cfg.survey.bands, brickname=task["brickname"])
    return host_row(task, cut, cfg, source="bricks")


def finish_host_row(row: Mapping[str, Any], task: Mapping[str, Any], ctx: JobContext) -> dict:
    """A complete host row: every schema column (the task's value where the row maker left one
    out, so a failed position keeps its metadata), identity from the task, provenance the
    driver's. Task values pass through untouched (a NaN stays NaN)."""
    out = {k: row[k] if k in row else task.get(k) for k in ctx.schema.names}
    for k in IDENTITY:
        out[k] = task[k]
    if out.get("cutout_ok") is None:
        out["cutout_ok"] = False
        out["cutout_reason"] = out.get("cutout_reason") or "row maker returned no cutout_ok"
    if not out["cutout_ok"]:
        out["stamp_npz"] = None
    out["stamp_source"] = out.get("stamp_source") or "bricks"
    out["stamp_quantised"] = bool(out.get("stamp_quantised")) and out["stamp_npz"] is not None
    out["stamp_size"] = int(ctx.cfg.survey.stamp_size)
    out["bands"] = str(ctx.cfg.survey.bands)
    out["host_hash"] = ctx.config_hash
    out["code_version"] = ctx.code_version
    for k, v in out.items():
        if isinstance(v, np.generic):
            out[k] = v.item()
    return out
