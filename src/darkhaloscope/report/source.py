"""Where the report reads from: a stamp dataset (DESIGN 3.3) on local disk or ``s3://``.

Two access patterns, both streaming:

* :func:`iter_meta_batches` - every row of a split, scalar columns only (no pixel blobs);
* :func:`iter_sampled_row_groups` - whole Parquet row groups chosen by a salted hash of
  ``split/file#row_group``, read with all columns. Sampling row groups (not rows) is what keeps
  the pixel I/O proportional to the sample: a row-level sample of 2 % would still touch every
  512-row group.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as pads
from pyarrow import fs as pafs

from ..config import SPLITS, Config, config_from_dict
from ..dataset.manifest import get_bytes
from ..dataset.reader import split_dataset
from ..dataset.storage import StorageOptions, filesystem_for, join
from ..errors import ConfigError, DatasetError, StorageError, redact
from ..ids import hash_unit


@dataclass(frozen=True)
class DatasetSource:
    """An opened dataset: ``root`` URL, storage ``options``, ``splits`` present (ordered),
    ``manifest`` (dict or None) and exact ``rows`` per split from the Parquet footers."""

    root: str
    options: StorageOptions | None
    splits: tuple[str, ...]
    manifest: dict | None
    rows: dict

    def dataset(self, split: str) -> pads.Dataset:
        return split_dataset(self.root, split, self.options)


def _read_small(url: str, options: StorageOptions | None) -> bytes | None:
    try:
        return get_bytes(url, options)
    except StorageError as exc:
        raise DatasetError(exc.message, path=redact(url)) from None


def read_manifest_if_any(root: str, options: StorageOptions | None) -> dict | None:
    """``<root>/_manifest.json`` as a dict, None when absent; DatasetError when not JSON."""
    url = join(root, "_manifest.json")
    data = _read_small(url, options)
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise DatasetError(f"dataset manifest {redact(url)} is not valid JSON: {exc}", path=redact(url)) from None


def config_from_manifest(manifest: dict | None, root: str) -> Config:
    """The config that made the dataset, rebuilt from the manifest's ``config``."""
    if not manifest or "config" not in manifest:
        raise DatasetError(f"no --config given and {redact(root)} has no _manifest.json with a 'config' to rebuild it from", path=redact(root))
    try:
        return config_from_dict(manifest["config"])
    except ConfigError as exc:
        raise DatasetError(f"the config in {redact(root)}/_manifest.json does not load under this code version ({exc.message}); pass --config", path=redact(root), field=exc.fields.get("field")) from None


def open_source(root: str, options: StorageOptions | None = None) -> DatasetSource:
    """Open a dataset root: find its ``split=*`` folders, count rows from footers, read the manifest."""
    fs, path = filesystem_for(root, options)
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=False, allow_not_found=True))
    except OSError as exc:
        raise DatasetError(f"cannot list dataset {redact(root)}: {redact(str(exc))}", path=redact(root)) from None
    found = sorted(i.base_name[len("split="):] for i in infos if i.type == pafs.FileType.Directory and i.base_name.startswith("split="))
    if not found:
        raise DatasetError(f"no split=<split> folders under {redact(root)}: not a stamp dataset (DESIGN 3.3)", path=redact(root))
    splits = tuple([s for s in SPLITS if s in found] + [s for s in found if s not in SPLITS])
    rows = {}
    for split in splits:
        try:
            rows[split] = int(split_dataset(root, split, options).count_rows())
        except (OSError, pa.ArrowInvalid) as exc:
            raise DatasetError(f"cannot read split={split} of {redact(root)}: {redact(str(exc))}", path=redact(join(root, f"split={split}"))) from None
    return DatasetSource(root, options, splits, read_manifest_if_any(root, options), rows)


def iter_meta_batches(src: DatasetSource, split: str, columns: Sequence[str], batch_size: int = 65536) -> Iterator[pa.RecordBatch]:
    """Every row of ``split``, only ``columns`` (never pixel blobs unless asked)."""
    try:
        yield from src.dataset(split).to_batches(columns=list(columns), batch_size=batch_size)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetError(f"cannot read split={split} of {redact(src.root)}: {redact(str(exc))}", path=redact(join(src.root, f"split={split}"))) from None


def iter_sampled_row_groups(src: DatasetSource, fraction: float, salt: str, columns: Sequence[str] | None = None) -> Iterator[tuple[str, str, pa.Table]]:
    """(split, shard file name, table) for each row group whose hash of
    ``"<split>/<file>#<index>"`` is below ``fraction`` (all of them when fraction >= 1)."""
    for split in src.splits:
        ds = src.dataset(split)
        for frag in sorted(ds.get_fragments(), key=lambda f: f.path):
            name = frag.path.rsplit("/", 1)[-1]
            try:
                n_groups = frag.metadata.num_row_groups
                chosen = [i for i in range(n_groups) if fraction >= 1.0 or hash_unit(f"{split}/{name}#{i}", salt) < fraction]
                for i in chosen:
                    table = frag.subset(row_group_ids=[i]).to_table(schema=ds.schema, columns=list(columns) if columns else None)
                    yield split, name, table
            except (OSError, pa.ArrowInvalid) as exc:
                raise DatasetError(f"cannot read shard {name} of split={split}: {redact(str(exc))}", path=redact(frag.path)) from None
