"""The source bank (DESIGN 3.2): read and write the HDF5 file of unit-flux source templates.

Layout::

    /images  float32 [N, S, S]  unit total flux, background-subtracted, pixel_scale arcsec/pixel,
                                light centroid at array position ((S-1)/2, (S-1)/2); one chunk
                                per template (gzip + shuffle), so a random fetch reads one chunk
    /meta    compound table, one row per source: cosmos_index, ident, mag_f814w (AB),
             hlr_arcsec, z_phot, sersic_n, q, pixel_scale (arcsec/pixel), split_group, plus the
             build diagnostics hlr_template_arcsec, flux_outside, snr, neg_flux_frac
    attrs    kind (cosmos|procedural), catalog_version, cuts (JSON), counts (JSON),
             code_version, config_hash, psf_handling, noise_treatment ...

:meth:`SourceBank.open` reads a local path or an ``s3://`` URL (downloaded once to a local
cache through :func:`darkhaloscope.dataset.storage.filesystem_for`). Each process opens a given
bank once (module-level cache keyed by URL, file identity and process id); templates are read
lazily per index and kept in a small LRU.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..dataset.storage import StorageOptions, filesystem_for, is_s3
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
# Optional build diagnostics and photometry, written when the builder provides them.
EXTRA_META_DTYPE = np.dtype(
    [
        ("hlr_template_arcsec", np.float32),  # HLR measured on the stored template
        ("flux_outside", np.float32),  # fraction of the galaxy's flux outside the S x S stamp
        ("snr", np.float32),  # S/N of the HST galaxy inside its segmentation mask
        ("neg_flux_frac", np.float32),  # |negative pixels| / |all pixels| of the template
        ("mag_g", np.float32),  # catalogue photometry of the source (AB), when the builder has it:
        ("mag_r", np.float32),  # inject then uses it instead of F814W + the colour model
        ("mag_z", np.float32),
    ]
)
TEMPLATE_CACHE_SIZE = 512  # templates kept per bank (512 x 64 KiB = 32 MiB at S = 128)


def write_bank(path: str | Path, images: np.ndarray, meta: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> Path:
    """Write a bank file: ``images`` [N,S,S] float32, ``meta`` columns of META_DTYPE (plus any of
    EXTRA_META_DTYPE), ``attrs``. Non-scalar attributes (dicts, lists) are stored as JSON strings.

    The file is written to ``<path>.tmp`` and renamed, and HDF5 timestamps are off, so the same
    inputs give identical bytes.
    """
    path = Path(path)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise BankError(f"bank images must be [N, S, S], got {images.shape}", path=str(path))
    n = images.shape[0]
    if n == 0:
        raise BankError("no source survived the cuts: refusing to write an empty bank", path=str(path))
    extra = [name for name in EXTRA_META_DTYPE.names if name in meta]
    dtype = np.dtype(META_DTYPE.descr + [(name, EXTRA_META_DTYPE[name]) for name in extra])
    table = np.zeros(n, dtype=dtype)
    for name in dtype.names:
        if name not in meta:
            raise BankError(f"bank meta lacks column '{name}'", path=str(path), field=name)
        col = np.asarray(meta[name])
        if len(col) != n:
            raise BankError(f"bank meta column '{name}' has {len(col)} rows, images have {n}", path=str(path), field=name)
        table[name] = np.char.encode(col.astype(str), "ascii") if dtype[name].kind == "S" else col
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    s = images.shape[1]
    with h5py.File(tmp, "w", track_order=False) as f:
        f.create_dataset(
            "images", data=images, chunks=(1, s, s), compression="gzip", compression_opts=4, shuffle=True, track_times=False
        )
        f.create_dataset("meta", data=table, track_times=False)
        for key in sorted(attrs):
            value = attrs[key]
            f.attrs[key] = value if isinstance(value, (str, int, float, np.integer, np.floating)) else json.dumps(value, sort_keys=True)
    os.replace(tmp, path)
    return path


class SourceBank:
    """Templates and metadata of a source bank, by index.

    Attributes: ``meta`` (dict of numpy columns), ``attrs`` (dict), ``pixel_scale`` (arcsec/pixel),
    ``stamp_size`` (pixels), ``path``.
    """

    def __init__(self, images: Any, meta: Mapping[str, np.ndarray], attrs: Mapping[str, Any], path: str = "<memory>", handle: Any = None) -> None:
        self._images = images
        self._handle = handle
        self._lock = threading.Lock()
        self.meta = {k: np.asarray(v) for k, v in meta.items()}
        self.attrs = dict(attrs)
        self.path = path
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        n = len(self.meta["cosmos_index"]) if "cosmos_index" in self.meta else len(images)
        if len(images) != n:
            raise BankError(f"bank has {len(images)} images but {n} meta rows", path=path)
        self.stamp_size = int(images.shape[1]) if n else 0
        ps = self.meta.get("pixel_scale")
        self.pixel_scale = float(ps[0]) if ps is not None and len(ps) else float(self.attrs.get("pixel_scale", 0.03))
        groups = self.meta.get("split_group", np.array([], dtype=str))
        self._by_split = {str(g): np.flatnonzero(groups == g) for g in np.unique(groups)}

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, images: np.ndarray, meta: Mapping[str, Any], attrs: Mapping[str, Any] | None = None) -> SourceBank:
        """An in-memory bank (tests, notebooks)."""
        return cls(np.asarray(images, np.float32), {k: np.asarray(v) for k, v in meta.items()}, attrs or {})

    @classmethod
    def open(
        cls,
        path_or_url: str | Path,
        cache_dir: str | Path | None = None,
        options: StorageOptions | None = None,
        *,
        reuse: bool = True,
        **storage_options: Any,
    ) -> SourceBank:
        """Open a bank from a local path or an ``s3://`` URL (downloaded once to ``cache_dir``,
        default ``$DARKHALOSCOPE_CACHE`` or ``~/.cache/darkhaloscope``).

        ``options`` (endpoint, region) reach S3 through ``dataset.storage.filesystem_for``;
        ``endpoint_override``/``scheme``/``region`` keywords are accepted for older callers.
        With ``reuse`` (default) a process opens each bank once and later calls return the same
        object. Raises :class:`BankError` naming the file when it is missing or corrupt.
        """
        url = str(path_or_url)
        options = _options(options, storage_options)
        local = _localise(url, cache_dir, options)
        try:
            st = os.stat(local)
        except FileNotFoundError:
            raise BankError(f"source bank not found: {url}", path=url) from None
        key = (url, options.endpoint, local, st.st_size, st.st_mtime_ns, os.getpid())
        if reuse:
            with _OPEN_LOCK:
                bank = _OPEN.get(key)
                if bank is not None and bank._images is not None:
                    return bank
        bank = cls._read(local, url)
        if reuse:
            with _OPEN_LOCK:
                _OPEN[key] = bank
        return bank

    @classmethod
    def _read(cls, local: str, url: str) -> SourceBank:
        try:
            f = h5py.File(local, "r")
        except FileNotFoundError:
            raise BankError(f"source bank not found: {url}", path=url) from None
        except OSError as exc:
            raise BankError(f"source bank is not a readable HDF5 file: {url} ({exc})", path=url) from None
        try:
            if "images" not in f or "meta" not in f:
                raise BankError(f"source bank {url} lacks /images or /meta", path=url)
            table = f["meta"][()]
            missing = [k for k in META_FIELDS if k not in (table.dtype.names or ())]
            if missing:
                raise BankError(f"source bank {url} /meta lacks columns {missing}", path=url, field=missing[0])
            images = f["images"]
            if images.ndim != 3 or images.shape[1] != images.shape[2] or images.dtype != np.float32:
                raise BankError(f"source bank {url} /images must be float32 [N, S, S], got {images.dtype} {images.shape}", path=url)
            meta = {k: (np.char.decode(table[k], "ascii") if table.dtype[k].kind == "S" else table[k]) for k in table.dtype.names}
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            return cls(images, meta, attrs, path=url, handle=f)
        except BankError:
            f.close()
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            f.close()
            raise BankError(f"source bank {url} is corrupt: {exc}", path=url) from None

    def close(self) -> None:
        """Close the HDF5 file (a later :meth:`open` of the same URL reopens it)."""
        with self._lock:
            if self._handle is not None:
                try:
                    self._handle.close()
                finally:
                    self._handle = None
                    self._images = None

    # -- access --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.meta["cosmos_index"])

    def template(self, index: int) -> np.ndarray:
        """Unit-flux template ``index`` (float32 [S, S], flux fraction per pixel, ``pixel_scale``
        arcsec/pixel). The returned array is shared: do not modify it in place."""
        index = int(index)
        if not 0 <= index < len(self):
            raise BankError(f"source index {index} outside the bank (0..{len(self) - 1})", path=self.path, field="cosmos_index")
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None:
                self._cache.move_to_end(index)
                return cached
            if self._images is None:
                raise BankError(f"source bank {self.path} is closed", path=self.path)
            try:
                cached = np.asarray(self._images[index], dtype=np.float32)
            except (OSError, ValueError, RuntimeError) as exc:
                raise BankError(f"source bank {self.path}: template {index} unreadable ({exc})", path=self.path, row=index) from None
            cached.setflags(write=False)
            self._cache[index] = cached
            if len(self._cache) > TEMPLATE_CACHE_SIZE:
                self._cache.popitem(last=False)
        return cached

    def row(self, index: int) -> dict[str, Any]:
        """Metadata of source ``index`` as plain Python values."""
        return {k: v[int(index)].item() if hasattr(v[int(index)], "item") else v[int(index)] for k, v in self.meta.items()}

    def indices(self, split_group: str) -> np.ndarray:
        """Bank indices whose ``split_group`` is ``split_group`` (train/val/test)."""
        return self._by_split.get(split_group, np.array([], dtype=np.int64))


_OPEN: dict[tuple, SourceBank] = {}
_OPEN_LOCK = threading.Lock()


def _options(options: StorageOptions | None, legacy: Mapping[str, Any]) -> StorageOptions:
    if options is not None:
        return options
    if not legacy:
        return StorageOptions()
    endpoint = legacy.get("endpoint_override") or legacy.get("endpoint") or ""
    if endpoint and "://" not in endpoint:
        endpoint = f"{legacy.get('scheme', 'https')}://{endpoint}"
    return StorageOptions(endpoint=endpoint, region=legacy.get("region") or "us-east-1")


def _localise(url: str, cache_dir: str | Path | None, options: StorageOptions) -> str:
    """Local path of ``url``; ``s3://`` objects are downloaded once to the cache (atomic rename).

    The cache name carries the object's size and mtime, so a re-uploaded bank is fetched again.
    """
    if not is_s3(url):
        return url
    from pyarrow import fs as pafs

    fs, key = filesystem_for(url, options)
    try:
        info = fs.get_file_info(key)
    except OSError as exc:
        raise BankError(f"cannot reach source bank {url}: {exc}", path=url) from None
    if info.type != pafs.FileType.File:
        raise BankError(f"source bank not found: {url}", path=url)
    cache = Path(cache_dir or os.environ.get("DARKHALOSCOPE_CACHE") or Path.home() / ".cache" / "darkhaloscope")
    cache.mkdir(parents=True, exist_ok=True)
    stamp = f"{url}|{options.endpoint}|{info.size}|{info.mtime_ns}"
    target = cache / (hashlib.sha1(stamp.encode()).hexdigest()[:16] + "-" + Path(key).name)
    if target.exists() and target.stat().st_size == info.size:
        return str(target)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        with fs.open_input_stream(key) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BankError(f"cannot download source bank {url}: {exc}", path=url) from None
    os.replace(tmp, target)
    return str(target)
