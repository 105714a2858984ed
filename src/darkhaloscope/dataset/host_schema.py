"""The host table's Parquet schema (output of ``stage``, input of ``generate --hosts``).

One row per position of the staged table (LRG tasks, anchors, impostors, random sky points):
the host's own columns (``HOST_FIELDS``), then every column of the position table that is not
one of them, with the position table's own Arrow type, in its order. So columns other branches
add to the task table (``z_phot``, ``z_spec``, ``sigma_v``, ``shape_e1/e2``,
``mw_transmission_*``, ...) flow through to the hosts and on to ``generate`` without code here.

Units: as the position table (fluxes nanomaggies, ``psfsize_*`` arcsec FWHM, ``psfdepth_*``
1/nanomaggy^2, ``ra``/``dec`` degrees); ``stamp_npz`` is stamp format 3 (docs/DATASET.md):
``image`` float32 [B, S, S] nanomaggies, ``invvar`` float32 [B, S, S] 1/nanomaggy^2 as the
file's fpack integers (RICE_1-coded) with their quantisation grids (lossless), ``maskbits``
int32 [S, S].
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from ..errors import CatalogError

# bumped when the meaning of a host column changes. 2: stamp_npz in stamp format 3 (a control's
# row reuses its host blob, so a format-2 host table would not give generate --bricks' bytes)
HOST_FORMAT = 2

# where a host stamp came from: the coadd bricks (the file's integers + grids) or the Legacy
# Surveys cutout service (its FITS cutouts are not on the coadd's quantisation: stored raw)
STAMP_SOURCES = ("bricks", "cutout_service")

HOST_FIELDS: list[pa.Field] = [
    # identity (the task table's, unchanged)
    pa.field("task_id", pa.int64(), nullable=False),
    pa.field("galaxy_id", pa.string(), nullable=False),
    pa.field("brickname", pa.string(), nullable=False),
    pa.field("ra", pa.float64(), nullable=False),
    pa.field("dec", pa.float64(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("role", pa.string(), nullable=False),
    # the cutout
    pa.field("stamp_npz", pa.binary()),  # null when cutout_ok is false
    pa.field("cutout_ok", pa.bool_(), nullable=False),
    pa.field("cutout_reason", pa.string()),
    pa.field("cutout_note", pa.string()),  # remarks that do not spoil the stamp (no maskbits file)
    pa.field("stamp_source", pa.string(), nullable=False),  # one of STAMP_SOURCES
    pa.field("stamp_quantised", pa.bool_(), nullable=False),  # pixels stored as the file's integers
    pa.field("stamp_size", pa.int16(), nullable=False),  # pixels
    pa.field("bands", pa.string(), nullable=False),  # channel order of the stamp, e.g. "grz"
    # provenance
    pa.field("host_hash", pa.string(), nullable=False),  # dataset.hosts.host_hash(cfg)
    pa.field("code_version", pa.string(), nullable=False),
]
HOST_COLUMN_NAMES = tuple(f.name for f in HOST_FIELDS)
BASE_HOST_SCHEMA = pa.schema(HOST_FIELDS, metadata={b"darkhaloscope.host_format": str(HOST_FORMAT).encode()})


def host_schema(task_schemas: Iterable[pa.Schema]) -> pa.Schema:
    """The host schema for position tables of these schemas: :data:`HOST_FIELDS`, then the
    tables' other columns (types unified across files; conflicting types are a CatalogError
    naming the column)."""
    schemas = [pa.schema([f for f in s if f.name not in HOST_COLUMN_NAMES]) for s in task_schemas]
    try:
        extra = pa.unify_schemas(schemas) if schemas else pa.schema([])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise CatalogError(f"position table files disagree on a column's type: {exc}") from None
    fields = list(HOST_FIELDS) + [f.with_nullable(True) for f in extra]
    return pa.schema(fields, metadata=BASE_HOST_SCHEMA.metadata)


def rows_to_host_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Arrow table of host rows (dicts keyed by column name; missing keys are null)."""
    return pa.table({name: [row.get(name) for row in rows] for name in schema.names}, schema=schema)
