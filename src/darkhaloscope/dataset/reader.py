"""Readers for notebooks and training: a split of a stamp dataset as Arrow, from disk or S3.

    tbl = read_split("out/dataset/demo", "train", columns=["task_id", "arc_snr"])
    arrays = decode_stamp(tbl["stamp_npz"][0].as_py())
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.dataset as pads

from .schema import STAMP_SCHEMA
from .storage import StorageOptions, filesystem_for, join


def split_dataset(root: str, split: str | None = None, options: StorageOptions | None = None, schema: pa.Schema | None = STAMP_SCHEMA) -> pads.Dataset:
    """A pyarrow dataset over ``<root>/split=<split>/*.parquet`` (all splits when ``split`` is None).

    Files starting with ``_`` or ``.`` (manifest, _SUCCESS, temporary files) are ignored.
    ``schema``: the stamp schema by default; None takes the files' own (host tables, whose
    schema carries the position table's columns)."""
    from pyarrow import fs as pafs

    fs, path = filesystem_for(root, options)
    base = join(path, f"split={split}") if split else path
    if fs.get_file_info(base).type == pafs.FileType.NotFound:
        # A split with no shards (tiny runs) reads as empty, not as an error.
        return pads.dataset([], schema=schema or STAMP_SCHEMA)
    return pads.dataset(
        base,
        filesystem=fs,
        format="parquet",
        schema=schema,
        partitioning=None,
        exclude_invalid_files=False,
        ignore_prefixes=["_", "."],
    )


def read_split(root: str, split: str, columns: Sequence[str] | None = None, filter=None, options: StorageOptions | None = None,
               schema: pa.Schema | None = STAMP_SCHEMA) -> pa.Table:
    """The rows of one split as an Arrow table (``columns`` to read only those); ``schema=None``
    for a host table (``dataset.hosts.read_host_rows`` does that)."""
    return split_dataset(root, split, options, schema).to_table(columns=list(columns) if columns else None, filter=filter)


def iter_batches(root: str, split: str | None = None, columns: Sequence[str] | None = None, batch_size: int = 1024, filter=None, options: StorageOptions | None = None) -> Iterator[pa.RecordBatch]:
    """Stream record batches of a split (or the whole dataset) without loading it all."""
    yield from split_dataset(root, split, options).to_batches(columns=list(columns) if columns else None, batch_size=batch_size, filter=filter)
