"""Reading the task table (DESIGN 3.1) for the generate job, from a local folder or ``s3://``.

The driver only lists the Parquet files and reads their footers (row counts, schema); the
executors read the rows of their files themselves, so the task table never passes through the
driver. Hive ``key=value`` folders (e.g. ``split=train``) become columns when the files lack them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from ..config import ROLES, SPLITS
from ..dataset.storage import StorageOptions, filesystem_for, is_s3
from ..errors import CatalogError, StorageError, redact

REQUIRED_COLUMNS = ("task_id", "galaxy_id", "brickname", "ra", "dec", "split", "role")


def partition_of(brickname: str, n_partitions: int) -> int:
    """Partition of a brick's tasks: blake2b(brickname) mod n (stable across processes and runs)."""
    digest = hashlib.blake2b(str(brickname).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % int(n_partitions)


def list_task_files(root: str, options: StorageOptions | None = None) -> list[str]:
    """URLs of the task table's Parquet files (a single file or a folder, sorted)."""
    fs, path = filesystem_for(root, options)
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            return [str(root)]
        if info.type == pafs.FileType.NotFound:
            raise CatalogError(f"task table not found: {redact(root)}", path=redact(root))
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    except OSError as exc:
        raise StorageError(f"cannot list the task table {redact(root)}: {redact(str(exc))}", path=redact(root)) from None
    prefix = "s3://" if is_s3(root) else ""
    files = sorted(
        prefix + i.path
        for i in infos
        if i.type == pafs.FileType.File and i.path.endswith(".parquet")
        and not any(part.startswith(("_", ".")) for part in i.path[len(path):].split("/"))
    )
    if not files:
        raise CatalogError(f"task table {redact(root)} holds no .parquet files", path=redact(root))
    return files


def hive_values(url: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in url.split("/")[:-1] if "=" in part and not part.startswith("s3:"))


def task_file_info(url: str, options: StorageOptions | None = None) -> tuple[int, list[str]]:
    """(row count, column names incl. hive keys) of one task file, from its footer only."""
    fs, path = filesystem_for(url, options)
    try:
        with fs.open_input_file(path) as f:
            pf = pq.ParquetFile(f)
            return pf.metadata.num_rows, list(pf.schema_arrow.names) + list(hive_values(url))
    except (OSError, pa.ArrowInvalid) as exc:
        raise CatalogError(f"task file {redact(url)} is unreadable: {redact(str(exc))}", path=redact(url)) from None


def task_file_schema(url: str, options: StorageOptions | None = None) -> pa.Schema:
    """The Arrow schema of one task file from its footer, hive folder keys added as strings."""
    fs, path = filesystem_for(url, options)
    try:
        with fs.open_input_file(path) as f:
            schema = pq.ParquetFile(f).schema_arrow
    except (OSError, pa.ArrowInvalid) as exc:
        raise CatalogError(f"task file {redact(url)} is unreadable: {redact(str(exc))}", path=redact(url)) from None
    for key in hive_values(url):
        if key not in schema.names:
            schema = schema.append(pa.field(key, pa.string()))
    return schema.remove_metadata()


def check_task_files(files: list[str], options: StorageOptions | None = None) -> int:
    """Check every task file has the required columns; returns the total number of tasks."""
    total = 0
    for url in files:
        rows, names = task_file_info(url, options)
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise CatalogError(f"task file {redact(url)} lacks column(s) {missing}", path=redact(url), field=missing[0])
        total += rows
    return total


def read_task_file(url: str, options: StorageOptions | None = None, check_roles: bool = True) -> list[dict]:
    """Rows of one task file as dicts (hive folder keys added as columns), checked for
    the identity columns, the split and (``check_roles``: generate) the role. ``stage`` takes
    any role: anchors, impostors and random positions carry their own."""
    fs, path = filesystem_for(url, options)
    try:
        with fs.open_input_file(path) as f:
            table = pq.read_table(f)
    except (OSError, pa.ArrowInvalid) as exc:
        raise CatalogError(f"task file {redact(url)} is unreadable: {redact(str(exc))}", path=redact(url)) from None
    for key, value in hive_values(url).items():
        if key not in table.column_names:
            table = table.append_column(key, pa.array([value] * table.num_rows, pa.string()))
    rows = table.to_pylist()
    for i, row in enumerate(rows):
        for col in REQUIRED_COLUMNS:
            if row.get(col) is None:
                raise CatalogError(f"task file {redact(url)} row {i}: '{col}' is null", path=redact(url), row=i, field=col)
        if row["split"] not in SPLITS:
            raise CatalogError(f"task file {redact(url)} row {i}: split {row['split']!r} is not one of {list(SPLITS)}", path=redact(url), row=i, field="split")
        if check_roles and row["role"] not in ROLES:
            raise CatalogError(f"task file {redact(url)} row {i}: role {row['role']!r} is not one of {list(ROLES)}", path=redact(url), row=i, field="role")
    return rows


def keyed_tasks(url: str, n_partitions: int, options: StorageOptions | None = None, check_roles: bool = True) -> Iterator[tuple[int, dict]]:
    """(partition, task) pairs of one task file, for Spark's ``partitionBy``."""
    for row in read_task_file(url, options, check_roles):
        yield partition_of(row["brickname"], n_partitions), row
