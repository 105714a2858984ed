"""The source bank (DESIGN 3.2): read and write the HDF5 file of unit-flux source templates.

Layout::

    /images  float32 [N, S, S]  unit total flux, background-subtracted, pixel_scale arcsec/pixel
    /meta    compound table, one row per source: cosmos_index, ident, mag_f814w (AB),
             hlr_arcsec, z_phot, sersic_n, q, pixel_scale (arcsec/pixel), split_group
    attrs    kind (cosmos|procedural), catalog_version, cuts (JSON), counts (JSON),
             code_version, config_hash

:meth:`SourceBank.open` reads a local path or an ``s3://`` URL (downloaded once to a local
cache). Templates are read lazily per index and memoised per process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import BankError

META_DTYPE = np.dtype(
    [
        ("cosmos_index", np.int64),
        ("ident", "S32"),
        ("mag_f814w", np.float32),
        ("hlr_arcsec", np.float32),
        ("z_phot", np.float32),
        ("sersic_n", np.float32),
        ("q", np.float32),
        ("pixel_scale", np.float32),
        ("split_group", "S8"),
    ]
)
META_FIELDS = tuple(META_DTYPE.names)


def write_bank(path: str | Path, images: np.ndarray, meta: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> Path:
    """Write a bank file: ``images`` [N,S,S] float32, ``meta`` columns of META_DTYPE, ``attrs``.

    Non-scalar attributes (dicts, lists) are stored as JSON strings. Chunks hold one template,
    so random access reads exactly one.
    """
    path = Path(path)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise BankError(f"bank images must be [N, S, S], got {images.shape}", path=str(path))
    n = images.shape[0]
    table = np.zeros(n, dtype=META_DTYPE)
    for name in META_FIELDS:
        if name not in meta:
            raise BankError(f"bank meta lacks column '{name}'", path=str(path), field=name)
        col = np.asarray(meta[name])
        if len(col) != n:
            raise BankError(f"bank meta column '{name}' has {len(col)} rows, images have {n}", path=str(path), field=name)
        table[name] = np.char.encode(col.astype(str), "ascii") if META_DTYPE[name].kind == "S" else col
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with h5py.File(tmp, "w") as f:
        s = images.shape[1]
        f.create_dataset("images", data=images, chunks=(1, s, s) if n else None)
        f.create_dataset("meta", data=table)
        for key, value in attrs.items():
            f.attrs[key] = value if isinstance(value, (str, int, float, np.integer, np.floating)) else json.dumps(value, sort_keys=True)
    os.replace(tmp, path)
    return path


class SourceBank:
    """Templates and metadata of a source bank, by index.

    Attributes: ``meta`` (dict of numpy columns), ``attrs`` (dict), ``pixel_scale`` (arcsec/pixel),
    ``stamp_size`` (pixels), ``path``.
    """

    def __init__(self, images: Any, meta: Mapping[str, np.ndarray], attrs: Mapping[str, Any], path: str = "<memory>") -> None:
        self._images = images
        self.meta = {k: np.asarray(v) for k, v in meta.items()}
        self.attrs = dict(attrs)
        self.path = path
        self._cache: dict[int, np.ndarray] = {}
        n = len(self.meta["cosmos_index"]) if "cosmos_index" in self.meta else len(images)
        if len(images) != n:
            raise BankError(f"bank has {len(images)} images but {n} meta rows", path=path)
        self.stamp_size = int(images.shape[1]) if n else 0
        ps = self.meta.get("pixel_scale")
        self.pixel_scale = float(ps[0]) if ps is not None and len(ps) else float(self.attrs.get("pixel_scale", 0.03))
        groups = self.meta.get("split_group", np.array([], dtype=str))
        self._by_split = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, images: np.ndarray, meta: Mapping[str, Any], attrs: Mapping[str, Any] | None = None) -> SourceBank:
        """An in-memory bank (tests, notebooks)."""
        return cls(np.asarray(images, np.float32), {k: np.asarray(v) for k, v in meta.items()}, attrs or {})

    @classmethod
    def open(cls, path_or_url: str | Path, cache_dir: str | Path | None = None, **storage_options: Any) -> SourceBank:
        """Open a bank file from a local path or an ``s3://`` URL (downloaded once to ``cache_dir``).

        ``storage_options`` (``endpoint_override``, ``region``) reach the S3 filesystem.
        """
        local = _localise(str(path_or_url), cache_dir, storage_options)
        try:
            f = h5py.File(local, "r")
        except FileNotFoundError:
            raise BankError(f"source bank not found: {path_or_url}", path=str(path_or_url)) from None
        except OSError as exc:
            raise BankError(f"source bank is not a readable HDF5 file: {path_or_url} ({exc})", path=str(path_or_url)) from None
        try:
            if "images" not in f or "meta" not in f:
                raise BankError(f"source bank {path_or_url} lacks /images or /meta", path=str(path_or_url))
            table = f["meta"][()]
            missing = [k for k in META_FIELDS if k not in (table.dtype.names or ())]
            if missing:
                raise BankError(f"source bank {path_or_url} /meta lacks columns {missing}", path=str(path_or_url))
            meta = {k: (np.char.decode(table[k], "ascii") if table.dtype[k].kind == "S" else table[k]) for k in table.dtype.names}
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            return cls(f["images"], meta, attrs, path=str(path_or_url))
        except BankError:
            f.close()
            raise
        except (OSError, KeyError, ValueError) as exc:
            f.close()
            raise BankError(f"source bank {path_or_url} is corrupt: {exc}", path=str(path_or_url)) from None

    # -- access --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.meta["cosmos_index"])

    def template(self, index: int) -> np.ndarray:
        """Unit-flux template ``index`` (float32 [S, S], flux per pixel, ``pixel_scale`` arcsec/pixel)."""
        index = int(index)
        if not 0 <= index < len(self):
            raise BankError(f"source index {index} outside the bank (0..{len(self) - 1})", path=self.path, field="cosmos_index")
        cached = self._cache.get(index)
        if cached is None:
            try:
                cached = np.asarray(self._images[index], dtype=np.float32)
            except (OSError, ValueError) as exc:
                raise BankError(f"source bank {self.path}: template {index} unreadable ({exc})", path=self.path) from None
            if len(self._cache) < 4096:
                self._cache[index] = cached
        return cached

    def row(self, index: int) -> dict[str, Any]:
        """Metadata of source ``index`` as plain Python values."""
        return {k: v[int(index)].item() if hasattr(v[int(index)], "item") else v[int(index)] for k, v in self.meta.items()}

    def indices(self, split_group: str) -> np.ndarray:
        """Bank indices whose ``split_group`` is ``split_group`` (train/val/test)."""
        return self._by_split.get(split_group, np.array([], dtype=np.int64))


def _localise(url: str, cache_dir: str | Path | None, storage_options: Mapping[str, Any]) -> str:
    """Local path of ``url``; ``s3://`` files are downloaded once to the cache (atomic rename)."""
    if not url.startswith("s3://"):
        return url
    import hashlib

    from pyarrow import fs as pafs

    cache = Path(cache_dir or os.environ.get("DARKHALOSCOPE_CACHE", Path.home() / ".cache" / "darkhaloscope"))
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / (hashlib.sha1(url.encode()).hexdigest()[:12] + "-" + Path(url).name)
    if target.exists():
        return str(target)
    s3 = pafs.S3FileSystem(**{k: v for k, v in storage_options.items() if v})
    tmp = target.with_suffix(".part")
    try:
        with s3.open_input_stream(url[len("s3://"):]) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
    except (OSError, FileNotFoundError) as exc:
        raise BankError(f"cannot download source bank {url}: {exc}", path=url) from None
    os.replace(tmp, target)
    return str(target)
