"""Shard writer: stamp rows -> one Parquet file (gzip; the pixel blobs with their own codec,
``generate.blob_compression``), local or ``s3://``, verified before it counts.

A shard is streamed row group by row group into a local temporary file (memory stays at about
one row group, ~25 MB at 512 rows x ~48 KB), then published in one step:

* local: the temporary file sits next to the target (hidden ``.`` name, ignored by readers) and
  is moved into place with ``os.replace`` (atomic on one filesystem);
* S3: the whole file is uploaded with one ``open_output_stream`` (a single PutObject below 5 MB,
  a multipart upload above); either way S3 makes the object visible only once it is complete.

The sha256 and size come from the bytes as they go out (:class:`_HashingFile`), not from reading
the file back. Then the footer is read back from the target and its row count checked; only then
does :meth:`ShardWriter.close` return a :class:`ShardSummary` (rows, bytes, sha256). Bytes are a
pure function of the rows and the writer settings (fixed row-group and page boundaries, no
timestamps), so a rerun gives byte-identical shards.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DatasetError, StorageError, redact
from .arrow_rows import BlobScratch, table_from_rows
from .schema import STAMP_SCHEMA, rows_to_table
from .storage import StorageOptions, filesystem_for, is_s3

_CHUNK = 1 << 22  # 4 MiB read/upload chunks
# Rows per encoding batch of a column. Arrow cuts a data page (1 MiB target) only between
# batches, and its default batch of 1024 rows made each 512-row row group's pixel blob column
# one ~45 MB page (one zstd call over fresh memory; a reader of one stamp decompressed it all).
# 8 rows of ~125 KB give ~1 MiB pages: ~0.03 ms per row less to write (860 demo rows), ~20 bytes
# per row more of page headers; the small columns still fill one page per row group.
_PAGE_BATCH_ROWS = 8
# The blob columns of every writer of this process are built in the same memory, one row group
# at a time (the lock): a row group's worth (~45-64 MB at 512 demo rows) stays allocated between
# row groups, as much as one flush took before, and no row group pays fresh pages for it.
_SCRATCH = BlobScratch()
_SCRATCH_LOCK = threading.Lock()


@dataclass(frozen=True)
class ShardSummary:
    """What the driver learns about one written shard: ``path`` (URL), ``rows``, ``bytes``, ``sha256``."""

    path: str
    rows: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


# the pixel blobs: coded by the dataset layer (stamp format 3), so they get their own codec
BLOB_COLUMNS = ("stamp_npz", "arc_npz")


@dataclass(frozen=True)
class WriterSettings:
    """Parquet settings of a shard: ``compression`` (gzip|zstd|snappy|none) and its level for
    every column but the pixel blobs, ``blob_compression`` and ``blob_compression_level`` for
    those (:data:`BLOB_COLUMNS`; "same": ``compression`` at its level), rows per row group."""

    compression: str = "gzip"
    compression_level: int | None = 6
    row_group_rows: int = 512
    blob_compression: str = "same"
    blob_compression_level: int | None = None  # None: compression_level

    @classmethod
    def from_config(cls, gen) -> WriterSettings:
        """Settings from a :class:`~darkhaloscope.config.GenerateConfig`."""
        return cls(gen.compression, gen.compression_level, gen.row_group_rows, gen.blob_compression, gen.blob_compression_level)

    def _codec(self, name: str, level: int | None) -> tuple[str, int | None]:
        """(pyarrow codec name, level or None) of one codec setting at ``level``."""
        codec = None if name == "none" else name
        level = level if codec in ("gzip", "zstd", "brotli") else None
        if codec == "gzip" and level is not None:
            level = max(1, min(9, level))
        return (codec or "NONE"), level

    def parquet_kwargs(self, columns: tuple[str, ...] | list[str] = ()) -> dict:
        """``pq.ParquetWriter`` keyword arguments for a schema of these ``columns`` (the blob
        codec applies to the :data:`BLOB_COLUMNS` among them)."""
        codec, level = self._codec(self.compression, self.compression_level)
        blobs = [c for c in columns if c in BLOB_COLUMNS]
        compression: str | dict = codec
        levels: int | dict | None = level
        if blobs and self.blob_compression not in ("same", self.compression):
            own = self.compression_level if self.blob_compression_level is None else self.blob_compression_level
            blob_codec, blob_level = self._codec(self.blob_compression, own)
            compression = {c: blob_codec if c in BLOB_COLUMNS else codec for c in columns}
            levels = {c: lv for c in columns if (lv := blob_level if c in BLOB_COLUMNS else level) is not None}
        return {
            "compression": compression,
            "compression_level": levels,
            # Dictionary pages only help the short string columns; blobs are unique per row.
            "use_dictionary": ["galaxy_id", "brickname", "split", "role", "cutout_reason", "cosmos_ident", "brightness_mode", "snr_reason", "config_hash", "code_version"],
            "write_statistics": ["task_id", "ra", "dec", "theta_e", "arc_snr", "cutout_ok"],
            "store_schema": True,
            "write_batch_size": _PAGE_BATCH_ROWS,
        }


class ShardWriter:
    """Stream rows into one Parquet shard at ``url`` and publish it atomically on :meth:`close`.

    ``metadata`` (str -> str) goes into the file footer (e.g. the config hash, checked on resume).
    Rows are written in the order given; callers sort them (by ``task_id``) for determinism.
    """

    def __init__(
        self,
        url: str,
        settings: WriterSettings | None = None,
        options: StorageOptions | None = None,
        metadata: Mapping[str, str] | None = None,
        schema: pa.Schema = STAMP_SCHEMA,
    ) -> None:
        self.url = str(url)
        self.settings = settings or WriterSettings()
        self.options = options
        self.fs, self.path = filesystem_for(self.url, options)
        self._stamp_rows = schema.equals(STAMP_SCHEMA)
        meta = dict(schema.metadata or {})
        meta.update({str(k).encode(): str(v).encode() for k, v in (metadata or {}).items()})
        self.schema = schema.with_metadata(meta)
        self.rows = 0
        self._pending: list[dict] = []
        if is_s3(self.url):
            fd, self._tmp = tempfile.mkstemp(prefix="dhs-shard-", suffix=".parquet")
            os.close(fd)
        else:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
            self._tmp = os.path.join(parent, f".{os.path.basename(self.path)}.{uuid.uuid4().hex[:8]}.tmp")
        self._sink = _HashingFile(self._tmp)
        try:
            self._writer = pq.ParquetWriter(self._sink, self.schema, **self.settings.parquet_kwargs(self.schema.names))
        except BaseException:
            self._sink.close()
            _remove(self._tmp)
            raise
        self._closed = False

    # -- writing ---------------------------------------------------------------------------------
    def write_row(self, row: Mapping) -> None:
        """Buffer one row; a full row group is flushed to the temporary file."""
        self._pending.append(row)
        if len(self._pending) >= self.settings.row_group_rows:
            self._flush()

    def write_rows(self, rows: Iterable[Mapping]) -> None:
        for row in rows:
            self.write_row(row)

    def write_table(self, table: pa.Table) -> None:
        """Append an Arrow table (schema must equal the stamp schema); row groups stay fixed-size."""
        self._flush()
        table = table.cast(self.schema) if table.schema != self.schema else table
        self._writer.write_table(table, row_group_size=self.settings.row_group_rows)
        self.rows += table.num_rows

    def _flush(self) -> None:
        if not self._pending:
            return
        with _SCRATCH_LOCK:
            try:
                self._write_pending()
            finally:
                _SCRATCH.release()  # the table is gone: its blob memory serves the next row group
        self.rows += len(self._pending)
        self._pending = []

    def _write_pending(self) -> None:
        if self._stamp_rows:
            table = rows_to_table(self._pending, _SCRATCH)
        else:  # another schema (host tables): its own columns, missing keys null
            table = table_from_rows(self._pending, self.schema, scratch=_SCRATCH)
        self._writer.write_table(table.replace_schema_metadata(self.schema.metadata), row_group_size=self.settings.row_group_rows)

    # -- publishing ------------------------------------------------------------------------------
    def close(self, metadata: Mapping[str, str] | None = None) -> ShardSummary:
        """Flush, publish the shard, read its footer back and check the row count.

        ``metadata`` (str -> str) is added to the footer's key-value metadata (counts known only
        at the end, e.g. how many tasks failed)."""
        if self._closed:
            raise DatasetError("shard writer already closed", path=redact(self.url))
        try:
            self._flush()
            if metadata:
                self._writer.add_key_value_metadata({str(k): str(v) for k, v in metadata.items()})
            self._writer.close()
            self._sink.close()
            self._closed = True
            digest, size = self._sink.hexdigest(), self._sink.size
            if size != os.path.getsize(self._tmp):
                raise DatasetError(f"shard {redact(self.url)}: {size} bytes hashed, {os.path.getsize(self._tmp)} on disk", path=redact(self.url))
            self._publish()
        except BaseException:
            self.abort()
            raise
        footer_rows = shard_row_count(self.url, self.options)
        if footer_rows != self.rows:
            raise DatasetError(
                f"shard {redact(self.url)} footer says {footer_rows} rows, {self.rows} were written",
                path=redact(self.url),
            )
        return ShardSummary(path=self.url, rows=self.rows, bytes=size, sha256=digest)

    def _publish(self) -> None:
        if not is_s3(self.url):
            os.replace(self._tmp, self.path)
            return
        try:
            with open(self._tmp, "rb") as src, self.fs.open_output_stream(self.path) as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
        except OSError as exc:
            raise StorageError(f"cannot upload shard to {redact(self.url)}: {redact(str(exc))}", path=redact(self.url)) from None
        finally:
            _remove(self._tmp)

    def abort(self) -> None:
        """Drop the temporary file; the target is left as it was."""
        if not self._closed:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - best effort on an already failing path
                pass
            self._sink.close()
            self._closed = True
        _remove(self._tmp)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def write_shard(
    rows: Iterable[Mapping] | pa.Table,
    url: str,
    settings: WriterSettings | None = None,
    options: StorageOptions | None = None,
    metadata: Mapping[str, str] | None = None,
) -> ShardSummary:
    """Write ``rows`` (dicts or an Arrow table) as one shard at ``url``; returns its summary."""
    writer = ShardWriter(url, settings, options, metadata)
    with writer:
        if isinstance(rows, pa.Table):
            writer.write_table(rows)
        else:
            writer.write_rows(rows)
    return writer.close()


def shard_row_count(url: str, options: StorageOptions | None = None) -> int:
    """Row count from a shard's footer (raises :class:`DatasetError` if unreadable)."""
    return read_footer(url, options).num_rows


def read_footer(url: str, options: StorageOptions | None = None) -> pq.FileMetaData:
    """The Parquet footer of ``url``; :class:`DatasetError` naming the file when missing or corrupt."""
    fs, path = filesystem_for(url, options)
    try:
        with fs.open_input_file(path) as f:
            return pq.ParquetFile(f).metadata
    except FileNotFoundError:
        raise DatasetError(f"shard not found: {redact(url)}", path=redact(url)) from None
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetError(f"shard {redact(url)} is unreadable: {redact(str(exc))}", path=redact(url)) from None


def sha256_of(url: str, options: StorageOptions | None = None) -> tuple[str, int]:
    """(sha256 hex digest, size in bytes) of a stored file."""
    fs, path = filesystem_for(url, options)
    h = hashlib.sha256()
    size = 0
    with fs.open_input_stream(path) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


class _HashingFile(io.RawIOBase):
    """A new local file (truncated) that hashes what is written to it: sha256 and size of the
    shard without reading it back (the re-read cost ~0.02 ms per row of ~47 KB; the sha256
    itself, ~1 GB/s here, is paid either way). pyarrow writes through it as a Python file."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close(), also on abort
        self._sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._sha.update(data)
        written = self._file.write(data)  # a buffered file writes everything or raises
        self.size += written
        return written

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:  # pyarrow's writer closes its sink too: idempotent
        if not self._file.closed:
            self._file.close()
        super().close()

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
