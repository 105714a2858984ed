"""Host tables: real cutouts read once from the survey (``stage``), reused by every recipe.

The API other modules use (stable; ``negatives`` and ``generate --hosts`` build on it)::

    host_row(task, cutout, cfg, source="bricks") -> dict          # stage: one host row
    read_host_rows(url, split=None, columns=None) -> pa.Table     # notebooks, negatives
    cutout_from_host_row(row, cfg) -> Cutout                       # generate --hosts
    host_cutout(row, cfg) -> (Cutout, HostStamp | None)            # generate --hosts, with the blob to reuse
    host_hash(cfg) -> str                                          # what a host table depends on

A host row's ``stamp_npz`` is the cutout in stamp format 3 with its quantisation grids, so
:func:`cutout_from_host_row` gives back the very ``Cutout`` the brick reader made (image,
invvar and maskbits bit for bit, same grids), and a dataset made from hosts has the bytes of
one made from the bricks (tests/integration/test_stage_job.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from ..config import Config
from ..errors import CatalogError, DatasetError, redact
from ..survey.cutout import Cutout
from .host_schema import HOST_FORMAT, STAMP_SOURCES
from .reader import read_split, split_dataset
from .stamp import decode_stamp_with_grids, encode_stamp
from .stamp_splice import HostStamp, decode_host_stamp
from .storage import StorageOptions, filesystem_for


def host_hash(cfg: Config) -> str:
    """16-hex hash of what a host table's pixels depend on: bands, stamp size (pixels), pixel
    scale (arcsec/pixel) and the host format. A recipe change (lens, source, render, generate)
    leaves it alone, so one host table serves every recipe; ``generate --hosts`` checks it."""
    s = cfg.survey
    data = {"host_format": HOST_FORMAT, "bands": s.bands, "stamp_size": s.stamp_size, "pixel_scale": s.pixel_scale}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def host_row(task: Mapping[str, Any], cutout: Cutout, cfg: Config, source: str = "bricks") -> dict:
    """The host row of one position: every task column, the encoded cutout, its status.

    ``cutout``: image/invvar float32 [B, S, S] (nanomaggies, 1/nanomaggy^2), maskbits int32
    [S, S], grids from the brick reader (None: stored raw). ``source``: one of
    :data:`~.host_schema.STAMP_SOURCES`. Provenance (``host_hash``, ``code_version``) is filled
    in by the job. A failed cutout keeps its row, ``stamp_npz`` null, with the reason.
    """
    if source not in STAMP_SOURCES:
        raise ValueError(f"stamp source {source!r} is not one of {STAMP_SOURCES}")
    row = dict(task)
    quantised = bool(cutout.ok and cutout.grids and any(g is not None for gs in cutout.grids.values() for g in gs))
    row.update(
        brickname=str(task.get("brickname") or cutout.brickname or ""),
        stamp_npz=encode_stamp(cutout.image, cutout.invvar, cutout.maskbits, grids=cutout.grids) if cutout.ok else None,
        cutout_ok=bool(cutout.ok),
        cutout_reason=None if cutout.ok else (cutout.reason or "cutout failed (no reason given)"),
        cutout_note=cutout.note,
        stamp_source=source,
        stamp_quantised=quantised,
        stamp_size=int(cfg.survey.stamp_size),
        bands=str(cfg.survey.bands),
    )
    return row


def cutout_from_host_row(row: Mapping[str, Any], cfg: Config) -> Cutout:
    """The :class:`Cutout` a host row holds (``ok=False`` with the stored reason when the stage
    could not cut it). The row's bands and stamp size must be the config's (CatalogError naming
    the row and field otherwise): a stamp is never silently resized or re-ordered."""
    return host_cutout(row, cfg)[0]


def host_cutout(row: Mapping[str, Any], cfg: Config) -> tuple[Cutout, HostStamp | None]:
    """(:func:`cutout_from_host_row`, the decoded host blob whose bytes the dataset layer may
    reuse for the row's ``stamp_npz``: ``dataset.stamp_splice``; None for a failed cutout or a
    format 1/2 blob). The cutout's arrays and grids are the :class:`HostStamp`'s own objects."""
    task_id = row.get("task_id")
    for name, want in (("bands", cfg.survey.bands), ("stamp_size", cfg.survey.stamp_size)):
        if row.get(name) != want:
            raise CatalogError(f"host row task_id={task_id}: {name} is {row.get(name)!r}, the config's survey.{name} is {want!r}",
                               field=name, row=task_id)
    size, nb, brick = int(cfg.survey.stamp_size), len(cfg.survey.bands), row.get("brickname")
    if not row.get("cutout_ok"):
        out = Cutout.failed(row.get("cutout_reason") or "cutout failed (no reason given)", size, nb, brickname=brick)
        out.note = row.get("cutout_note")
        return out, None
    blob = row.get("stamp_npz")
    if blob is None:
        raise CatalogError(f"host row task_id={task_id}: cutout_ok is true but stamp_npz is null", field="stamp_npz", row=task_id)
    host = decode_host_stamp(blob, bool(row.get("stamp_quantised")))
    if host is not None:
        return Cutout(host.image, host.invvar, host.maskbits, True, None, brick, row.get("cutout_note"), host.grids), host
    arrays, grids = decode_stamp_with_grids(blob)
    grids = grids if row.get("stamp_quantised") else None
    return Cutout(arrays["image"], arrays["invvar"], arrays["maskbits"], True, None, brick, row.get("cutout_note"), grids), None


def read_host_rows(url: str, split: str | None = None, columns: Sequence[str] | None = None, filter=None,
                   options: StorageOptions | None = None) -> pa.Table:
    """The rows of a host table (one split, or every split when None) as an Arrow table, in the
    table's own schema (task columns passed through); ``columns`` to read only those (leave out
    ``stamp_npz`` for metadata). DatasetError naming the URL when there is no table there."""
    from pyarrow import fs as pafs

    try:
        fs, path = filesystem_for(url, options)
        missing = fs.get_file_info(path).type == pafs.FileType.NotFound
    except OSError as exc:
        raise DatasetError(f"cannot reach host table {redact(url)}: {redact(str(exc))}", path=redact(url)) from None
    if missing:
        raise DatasetError(f"host table not found: {redact(url)}", path=redact(url))
    if split is not None:
        return read_split(url, split, columns, filter, options, schema=None)
    return split_dataset(url, None, options, schema=None).to_table(columns=list(columns) if columns else None, filter=filter)
