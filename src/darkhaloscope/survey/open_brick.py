"""One open DR10 brick: its coadd files (opened lazily through :mod:`.remote`; tile-compressed
images from their raw header and tile table, :mod:`.tile_table`, else astropy HDUs),
its WCS, and each file's decoded pixels (:mod:`.decoded`). Used by :class:`.brick_reader.BrickReader`.

Files are named as DR10 names them (``bricks.coadd_relpath``) under the reader's root (the region
folder, e.g. ``dr10/south``). A file that is absent is remembered as missing (one request per file);
a corrupt or truncated one is a DataFileError naming it.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field

from ..dataset.storage import StorageOptions, is_s3, join
from ..errors import DataFileError
from . import remote
from .bricks import coadd_relpath
from .decoded import DecodedImage
from .rice_stamp import RiceStamp
from .tile_table import LightCompHDU, read_tile_table

# Read-ahead of a coadd file (bytes): none. astropy asks for exactly the header blocks, the
# tile table and each tile's compressed bytes (a DR10 100 x 100 tile is ~8-11 KB), so each read
# is one request of exactly those bytes (https: one ranged GET). Measured on DR10-format bricks
# (benchmarks/bench_dr10.py, 33 stamps per brick): 131 KB and ~13 requests per grz stamp, against
# 970 KB with a 64 KiB read-ahead; local CPU per stamp is not worse.
COADD_READ_AHEAD_BYTES = 1


class Missing(Exception):
    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


@dataclass
class _OpenFile:
    path: str
    hdul: object  # astropy's HDUList, None until opened (light path: only for the WCS or a fallback)
    hdu: object
    fileobj: object
    decoded: DecodedImage | None = None
    local: _Descriptor | None = None  # a local file's OS descriptor (the direct decoders pread tiles through it)

    def close(self) -> None:
        try:
            if self.hdul is not None:
                self.hdul.close()
        finally:
            try:
                self.fileobj.close()
            except Exception:
                pass
            if self.local is not None:
                self.local.close()


@dataclass
class OpenBrick:
    """A brick's open files, keyed (kind, band); absent files are remembered as missing."""

    brickname: str
    root: str
    options: StorageOptions | None
    files: dict = field(default_factory=dict)
    missing: set = field(default_factory=set)
    _wcs: object = None
    shape: tuple | None = None
    expected: int = 0  # stamps this brick is expected to serve (0 = unknown)
    _stamps: dict = field(default_factory=dict)  # bands -> RiceStamp or None

    def rice_stamp(self, bands: str) -> tuple[RiceStamp, list] | None:
        """(packed reader, decoded images) of the image then invvar files of ``bands`` when all are
        local RICE_1 files (:mod:`.rice_stamp`), else None (a missing file included: the
        file-by-file path then names it). Built once per brick and band list."""
        if bands not in self._stamps:
            try:
                files = [self.open(kind, b) for kind in ("image", "invvar") for b in bands]
            except Missing:
                files = []
            decs = [of.decoded for of in files]
            stamp = RiceStamp.of([d.rice for d in decs], [d.path for d in decs]) if files else None
            self._stamps[bands] = (stamp, decs) if stamp is not None else None
        return self._stamps[bands]

    def open(self, kind: str, band: str | None) -> _OpenFile:
        """The open HDU of one file; raises Missing or DataFileError (corrupt/truncated)."""
        key = (kind, band)
        if key in self.files:
            return self.files[key]
        rel = coadd_relpath(self.brickname, kind, band)
        url = join(self.root, rel)
        if key in self.missing:
            raise Missing(url)
        try:
            f = remote.open_file(self.root, rel, self.options)
            # the same raw stream without read-ahead: a stamp reads ~2.7 tiles of ~8-11 KB per
            # file, scattered over the heap; a 64 KiB read-ahead fetched ~7x that per stamp
            f = io.BufferedReader(f.detach(), buffer_size=COADD_READ_AHEAD_BYTES)
        except remote.FileMissing:
            self.missing.add(key)
            raise Missing(url) from None
        except OSError as exc:
            raise DataFileError(f"cannot open {url}: {exc}", path=url) from None
        of = _open_light(url, f) or _open_fits(url, f)
        of.local = _Descriptor.open(url) if not (remote.is_http(self.root) or is_s3(self.root)) else None
        of.decoded = DecodedImage(of.hdu, url, self.expected, fileobj=of.fileobj, fd=of.local.fd if of.local else None)
        self.files[key] = of
        return of

    def set_expected(self, n_stamps: int) -> None:
        """Stamps this brick will serve (decides whole-image vs tile-by-tile decoding)."""
        self.expected = int(n_stamps)
        for of in self.files.values():
            of.decoded.expected = self.expected

    @property
    def decoded_bytes(self) -> int:
        """Bytes of decoded pixels held by this brick's files."""
        return sum(of.decoded.nbytes for of in self.files.values())

    def drop_decoded(self) -> None:
        """Forget decoded pixels (files stay open)."""
        for of in self.files.values():
            of.decoded.drop()

    def wcs(self, bands: str):
        """The brick's WCS and image shape, from the first present image/invvar/maskbits file."""
        if self._wcs is not None:
            return self._wcs, self.shape
        from astropy.wcs import WCS

        first_missing = None
        for kind, band in [("image", b) for b in bands] + [("invvar", b) for b in bands] + [("maskbits", None)]:
            try:
                of = self.open(kind, band)
            except Missing as m:
                first_missing = first_missing or m
                continue
            self.shape = tuple(int(n) for n in of.hdu.shape)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if isinstance(of.hdu, LightCompHDU):  # no astropy HDU opened for it (~30 ms per brick)
                    self._wcs = WCS(of.hdu.wcs_header)
                    self._wcs.pixel_shape = (self.shape[1], self.shape[0])
                else:
                    self._wcs = WCS(of.hdu.header)
            return self._wcs, self.shape
        raise first_missing

    def close(self) -> None:
        for of in self.files.values():
            of.close()
        self.files.clear()
        self._stamps.clear()


class _Descriptor:
    """A read-only OS descriptor of a local file (the direct tile decoders read runs of tiles with
    one ``os.preadv`` each, no Python buffering layer); closed with its brick, or when collected
    (a reader dropped without ``close`` must not leak descriptors)."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    @classmethod
    def open(cls, path: str) -> _Descriptor | None:
        """The descriptor of ``path``, or None when it cannot be opened (reads then go through the file object)."""
        try:
            return cls(os.open(path, os.O_RDONLY))
        except OSError:
            return None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        self.close()


def _open_light(url: str, f) -> _OpenFile | None:
    """Open a tile-compressed image from its raw header and tile table (:mod:`.tile_table`, no
    astropy HDU until one is needed); None when that reader does not apply or the bytes are bad
    (astropy then opens the file and names what is wrong). Checks the file is as long as its
    headers say."""
    try:
        table = read_tile_table(f)
        size = f.seek(0, 2)
    except Exception:  # corrupt or unusual: astropy's open gives the precise error
        table = None
    if table is None:
        return None
    end = table._data_offset + table._data_size
    if end > size:
        f.close()
        raise DataFileError(f"truncated file {url}: {size} bytes, its headers need {end}", path=url)
    of = _OpenFile(url, None, None, f)

    def open_astropy():
        full = _open_fits(url, f, close_on_error=False)
        of.hdul = full.hdul
        return full.hdu

    of.hdu = LightCompHDU(table, open_astropy)
    return of


def _open_fits(url: str, f, close_on_error: bool = True) -> _OpenFile:
    """Open a (tile-compressed) FITS image; checks the file is as long as its headers say."""
    from astropy.io import fits

    try:
        size = f.seek(0, 2)
        f.seek(0)
        hdul = fits.open(f, memmap=False, lazy_load_hdus=True, cache=False)
        hdu = None
        for h in hdul:
            if h.is_image and h.header.get("NAXIS", 0) == 2 or isinstance(h, fits.CompImageHDU):
                hdu = h
                break
        if hdu is None:
            raise DataFileError(f"corrupt file {url}: no 2-D image HDU", path=url)
        table = getattr(hdu, "_bintable", None) or hdu
        end = table._data_offset + table._data_size
        if end > size:
            raise DataFileError(f"truncated file {url}: {size} bytes, its headers need {end}", path=url)
    except DataFileError:
        if close_on_error:
            f.close()
        raise
    except Exception as exc:  # astropy raises OSError/ValueError/TypeError/KeyError on corrupt input
        if close_on_error:
            f.close()
        raise DataFileError(f"corrupt file {url}: {type(exc).__name__}: {exc}", path=url) from None
    return _OpenFile(url, hdul, hdu, f)
