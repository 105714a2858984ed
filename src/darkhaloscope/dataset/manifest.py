"""Dataset manifest: ``_manifest.json`` (what was made, from what, shard by shard) and ``_SUCCESS``.

The driver writes ``_manifest.json`` once every shard is verified, then ``_SUCCESS`` last, so
a dataset with ``_SUCCESS`` is complete and its manifest is the list of its shards. The JSON is
canonical (sorted keys, no timestamps): the same run gives the same manifest bytes.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from .._version import code_version
from ..config import SPLITS, Config, config_hash, config_to_dict
from ..errors import DatasetError, StorageError, redact
from .storage import StorageOptions, filesystem_for, is_s3, join

MANIFEST_NAME = "_manifest.json"
SUCCESS_NAME = "_SUCCESS"
FORMAT_VERSION = 1


def shard_relpath(split: str, partition: int) -> str:
    """Deterministic shard path inside a dataset: ``split=<split>/part-<partition:05d>.parquet``."""
    return f"split={split}/part-{int(partition):05d}.parquet"


def build_manifest(cfg: Config, shards: Iterable[Mapping[str, Any]], inputs: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None) -> dict:
    """The manifest of a dataset made with ``cfg`` from per-shard summaries.

    Each shard mapping has ``split``, ``partition``, ``rows``, ``bytes``, ``sha256`` and
    optionally ``n_failed`` (tasks whose processing raised) and ``n_not_ok`` (rows with
    ``cutout_ok = false``). ``inputs`` are the input locations (credentials redacted).
    """
    rows = []
    for s in shards:
        rows.append({
            "split": str(s["split"]),
            "partition": int(s["partition"]),
            "path": shard_relpath(s["split"], s["partition"]),
            "rows": int(s["rows"]),
            "bytes": int(s["bytes"]),
            "sha256": str(s["sha256"]),
            "n_failed": int(s.get("n_failed", 0)),
            "n_not_ok": int(s.get("n_not_ok", 0)),
        })
    rows.sort(key=lambda r: (r["split"], r["partition"]))
    seen = set()
    for r in rows:
        if r["path"] in seen:
            raise DatasetError(f"two summaries for shard {r['path']}", path=r["path"])
        seen.add(r["path"])
    per_split = {sp: sum(r["rows"] for r in rows if r["split"] == sp) for sp in SPLITS}
    return {
        "format_version": FORMAT_VERSION,
        "dataset_name": cfg.generate.dataset_name,
        "config_hash": config_hash(cfg),
        "code_version": code_version(),
        "seed": cfg.seed,
        "inputs": {k: redact(str(v)) for k, v in (inputs or {}).items()},
        "parquet": {
            "compression": cfg.generate.compression,
            "compression_level": cfg.generate.compression_level,
            "blob_compression": cfg.generate.blob_compression,  # stamp_npz, arc_npz
            "blob_compression_level": cfg.generate.blob_compression_level,
            "row_group_rows": cfg.generate.row_group_rows,
        },
        "n_partitions": cfg.generate.n_partitions,
        "totals": {
            "rows": sum(per_split.values()),
            "rows_per_split": per_split,
            "bytes": sum(r["bytes"] for r in rows),
            "shards": len(rows),
            "n_failed": sum(r["n_failed"] for r in rows),
            "n_not_ok": sum(r["n_not_ok"] for r in rows),
        },
        **dict(extra or {}),
        "shards": rows,
        "config": _redacted(config_to_dict(cfg)),  # e.g. an endpoint URL with userinfo
    }


def _redacted(value: Any) -> Any:
    """``value`` with every string in it passed through :func:`redact` (nested dicts/lists)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def dumps(manifest: Mapping) -> bytes:
    """Canonical JSON bytes of a manifest."""
    return (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()


def put_bytes(url: str, data: bytes, options: StorageOptions | None = None) -> None:
    """Write a small object whole: local = temp file + ``os.replace``; S3 = a single PUT."""
    fs, path = filesystem_for(url, options)
    try:
        if is_s3(url):
            with fs.open_output_stream(path) as out:
                out.write(data)
            return
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write {redact(url)}: {redact(str(exc))}", path=redact(url)) from None


def get_bytes(url: str, options: StorageOptions | None = None) -> bytes | None:
    """The bytes of a small object, or None when it does not exist."""
    fs, path = filesystem_for(url, options)
    try:
        with fs.open_input_stream(path) as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        if "NoSuchKey" in str(exc) or "does not exist" in str(exc).lower():
            return None
        raise StorageError(f"cannot read {redact(url)}: {redact(str(exc))}", path=redact(url)) from None


def delete(url: str, options: StorageOptions | None = None) -> None:
    """Delete a file if it exists."""
    fs, path = filesystem_for(url, options)
    try:
        fs.delete_file(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if "NoSuchKey" not in str(exc) and "not found" not in str(exc).lower():
            raise StorageError(f"cannot delete {redact(url)}: {redact(str(exc))}", path=redact(url)) from None


def write_manifest(dataset_root: str, manifest: Mapping, options: StorageOptions | None = None) -> str:
    """Write ``<dataset_root>/_manifest.json``; returns its URL."""
    url = join(dataset_root, MANIFEST_NAME)
    put_bytes(url, dumps(manifest), options)
    return url


def read_manifest(dataset_root: str, options: StorageOptions | None = None) -> dict:
    """The manifest of a dataset; :class:`DatasetError` when absent or not JSON."""
    url = join(dataset_root, MANIFEST_NAME)
    data = get_bytes(url, options)
    if data is None:
        raise DatasetError(f"dataset manifest not found: {redact(url)}", path=redact(url))
    try:
        return json.loads(data)
    except ValueError as exc:
        raise DatasetError(f"dataset manifest {redact(url)} is not valid JSON: {exc}", path=redact(url)) from None


def write_success(dataset_root: str, options: StorageOptions | None = None) -> str:
    """Write the empty ``_SUCCESS`` marker (last, after the manifest)."""
    url = join(dataset_root, SUCCESS_NAME)
    put_bytes(url, b"", options)
    return url


def clear_success(dataset_root: str, options: StorageOptions | None = None) -> None:
    """Remove ``_SUCCESS`` (a run that starts makes the dataset incomplete until it ends)."""
    delete(join(dataset_root, SUCCESS_NAME), options)


def is_complete(dataset_root: str, options: StorageOptions | None = None) -> bool:
    """True when ``_SUCCESS`` exists."""
    return get_bytes(join(dataset_root, SUCCESS_NAME), options) is not None


def list_shards(dataset_root: str, options: StorageOptions | None = None) -> list[str]:
    """Relative paths ``split=<s>/part-NNNNN.parquet`` of the shards present under a dataset root."""
    from pyarrow import fs as pafs

    fs, path = filesystem_for(dataset_root, options)
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise StorageError(f"cannot list {redact(dataset_root)}: {redact(str(exc))}", path=redact(dataset_root)) from None
    base = path.rstrip("/") + "/"
    out = []
    for info in infos:
        if info.type != pafs.FileType.File or not info.path.startswith(base):
            continue
        rel = info.path[len(base):]
        parts = rel.split("/")
        if len(parts) == 2 and parts[0].startswith("split=") and parts[1].startswith("part-") and parts[1].endswith(".parquet"):
            out.append(rel)
    return sorted(out)


def verify_manifest(dataset_root: str, options: StorageOptions | None = None, checksums: bool = False) -> dict:
    """Check a dataset against its manifest: every listed shard exists with the listed row count
    (footer) and, with ``checksums``, the listed sha256; no unlisted shard. Returns the manifest;
    raises :class:`DatasetError` naming the first disagreement."""
    from .writer import read_footer, sha256_of

    manifest = read_manifest(dataset_root, options)
    listed = {s["path"]: s for s in manifest["shards"]}
    present = set(list_shards(dataset_root, options))
    extra = sorted(present - set(listed))
    if extra:
        raise DatasetError(f"shard {extra[0]} is not in the manifest of {redact(dataset_root)}", path=extra[0])
    for rel, s in sorted(listed.items()):
        url = join(dataset_root, rel)
        if rel not in present:
            raise DatasetError(f"manifest lists {rel} but it is missing under {redact(dataset_root)}", path=rel)
        rows = read_footer(url, options).num_rows
        if rows != s["rows"]:
            raise DatasetError(f"shard {rel} has {rows} rows, the manifest says {s['rows']}", path=rel)
        if checksums:
            digest, size = sha256_of(url, options)
            if digest != s["sha256"] or size != s["bytes"]:
                raise DatasetError(f"shard {rel} checksum/size differ from the manifest", path=rel)
    return manifest
