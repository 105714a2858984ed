"""BrickReader: stamps from DR10 coadd bricks, reading only the compressed tiles a stamp needs.

One reader per process (Spark: one per partition) keeps an LRU cache of open bricks
(``survey.brick_cache_size``); an open brick holds its files' astropy HDUs (memmap off, lazy HDUs,
file objects from :mod:`.remote`), its WCS and the pixels decoded so far (:mod:`.decoded`: each
compressed tile is decoded at most once; a brick that will serve many stamps is decoded whole at
its first stamp). ``expect(brickname, n)`` tells the reader how many stamps a brick will serve;
decoded pixels of bricks other than the one being cut are dropped, least recently used first,
beyond ``decoded_cache_mb``.

Pixel convention: the stamp box is the one of ``astropy.nddata.Cutout2D`` for the pixel position
of (ra, dec) in the brick's WCS (``all_world2pix``, origin 0): rows/cols ``ceil(p - S/2)`` ..
``+S``. A stamp inside one brick therefore equals ``Cutout2D`` of the same file to the bit.

Edges: when the box leaves the home brick, the missing pixels come from neighbour bricks whose
pixel grid is the home grid shifted by whole pixels (the synthetic survey: one tangent plane).
Real DR10 bricks each have their own tangent point; their images overlap by ~82 px per side, so
a 64 px stamp centred in a brick's unique area never leaves it. A box that would need
resampling, or whose neighbour is absent, gives ``ok=False`` with a reason.
"""

from __future__ import annotations

import gzip
import io
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..dataset.storage import StorageOptions, join
from ..errors import DataFileError, SecurityError
from . import remote
from .bricks import BRICKS_TABLE, BrickTable, validate_brickname
from .cutout import Cutout
from .open_brick import Missing, OpenBrick

ALIGN_TOL_PIX = 1e-3  # neighbour grids within this of a whole-pixel shift are "the same grid"


def parent_root(root: str) -> str | None:
    """The folder above a local path, ``s3://`` or ``https://`` root; None at a bucket or host root."""
    r = str(root).rstrip("/")
    if "://" in r:
        scheme, rest = r.split("://", 1)
        return f"{scheme}://{rest.rsplit('/', 1)[0]}" if "/" in rest else None
    parent = str(Path(r).parent)
    return parent if parent != r else None


def stamp_box(x: float, y: float, size: int) -> tuple[int, int]:
    """Lower-left pixel (x0, y0) of the size x size box around pixel (x, y), as Cutout2D does."""
    return int(math.ceil(x - size / 2.0)), int(math.ceil(y - size / 2.0))


class BrickReader:
    """Reusable stamp reader over one survey root, with an LRU cache of open bricks.

    Parameters
    ----------
    root: local folder, ``s3://bucket/prefix`` or ``https://`` mirror of the DR10 layout.
    cache_size: open bricks kept (``survey.brick_cache_size``).
    options: S3 endpoint/region (tests: the loopback moto server).
    decoded_cache_mb: decoded pixels kept for bricks other than the one being cut
        (``survey.decoded_cache_mb``); peak memory is this plus one brick (DR10: <= 337 MB).
    """

    def __init__(self, root: str, cache_size: int = 8, options: StorageOptions | None = None, decoded_cache_mb: float = 256.0) -> None:
        self.root = str(root).rstrip("/") if not str(root).endswith("://") else str(root)
        self.cache_size = max(1, int(cache_size))
        self.options = options
        self.decoded_cache_bytes = int(max(0.0, float(decoded_cache_mb)) * 2**20)
        self._expected: dict[str, int] = {}
        self._bricks: OrderedDict[str, OpenBrick] = OrderedDict()
        self._table: BrickTable | None = None
        self._table_error: str | None = None
        self._kept: set = set()  # the bricks of the last trimmed stamp

    # -- bricks ---------------------------------------------------------------------------
    def table(self) -> BrickTable | None:
        """The survey-bricks table: ``<root>/survey-bricks.fits.gz``, else one level up (DR10: the
        table sits in ``dr10/``, above the region folder ``dr10/south`` that holds coadd/).
        None when absent from both; the reason is kept."""
        if self._table is None and self._table_error is None:
            tried = []
            for root in dict.fromkeys(r for r in (self.root, parent_root(self.root)) if r):
                url = join(root, BRICKS_TABLE)
                try:
                    with remote.open_file(root, BRICKS_TABLE, self.options) as f:
                        data = f.read()
                    if data[:2] == b"\x1f\x8b":  # astropy does not un-gzip file objects
                        data = gzip.decompress(data)
                    self._table = BrickTable.read(io.BytesIO(data), label=url)
                    break
                except remote.FileMissing:
                    tried.append(url)
                except DataFileError as exc:
                    self._table_error = exc.message
                    break
                except (OSError, EOFError) as exc:
                    self._table_error = f"cannot read {url}: {exc}"
                    break
            if self._table is None and self._table_error is None:
                self._table_error = f"no survey-bricks table at {' or '.join(tried)}"
        return self._table

    def brick(self, brickname: str) -> OpenBrick:
        """The open brick (from the LRU cache, or newly opened)."""
        name = validate_brickname(brickname)
        if name in self._bricks:
            self._bricks.move_to_end(name)
            return self._bricks[name]
        ob = OpenBrick(name, self.root, self.options, expected=self._expected.get(name, 0))
        self._bricks[name] = ob
        while len(self._bricks) > self.cache_size:
            _, old = self._bricks.popitem(last=False)
            old.close()
        return ob

    def expect(self, brickname: str, n_stamps: int) -> None:
        """Hint: ``brickname`` will serve ``n_stamps`` stamps from this reader (e.g. a partition's
        tasks per brick). Many stamps -> its files are decoded whole at the first stamp; few ->
        tile by tile (see :func:`~darkhaloscope.survey.decoded.prefer_whole`). Never changes pixels."""
        name = validate_brickname(brickname)
        self._expected[name] = int(n_stamps)
        if name in self._bricks:
            self._bricks[name].set_expected(int(n_stamps))

    def expect_counts(self, counts) -> None:
        """:meth:`expect` for every (brickname, n_stamps) of a mapping; bad names are skipped
        (their stamps fail with their own reason)."""
        for name, n in dict(counts).items():
            try:
                self.expect(name, n)
            except SecurityError:
                continue

    @property
    def decoded_bytes(self) -> int:
        """Bytes of decoded pixels held by all open bricks."""
        return sum(ob.decoded_bytes for ob in self._bricks.values())

    def _trim(self, keep: set) -> None:
        """Drop decoded pixels of least recently used bricks (not in ``keep``) beyond the budget.
        Skipped while the same bricks are cut (the other bricks' pixels cannot have grown since
        the last trim; summing every open file's bytes per stamp cost ~0.02 ms)."""
        if keep == self._kept:
            return
        self._kept = keep
        total = self.decoded_bytes
        for name, ob in self._bricks.items():
            if total <= self.decoded_cache_bytes:
                break
            if name in keep:
                continue
            total -= ob.decoded_bytes
            ob.drop_decoded()

    def cached_bricks(self) -> list[str]:
        """Names of the bricks currently open, least recently used first."""
        return list(self._bricks)

    def close(self) -> None:
        """Close every open file."""
        for ob in self._bricks.values():
            ob.close()
        self._bricks.clear()
        self._kept = set()

    # -- stamps ---------------------------------------------------------------------------
    def cutout(self, ra: float, dec: float, size: int = 64, bands: str = "grz", brickname: str | None = None) -> Cutout:
        """Image (nanomaggies), invvar (1/nanomaggy^2) and maskbits of a size x size stamp at (ra, dec) deg.

        Never raises for bad data: returns ``Cutout.failed(reason)`` naming the file.
        """
        nb = len(bands)
        try:
            if brickname is None:
                table = self.table()
                if table is None:
                    return Cutout.failed(f"no brickname given and {self._table_error}", size, nb)
                b = table.find(ra, dec)
                if b is None:
                    return Cutout.failed(f"(ra, dec) = ({ra:.6f}, {dec:.6f}) lies in no brick of the survey-bricks table of {self.root}", size, nb)
                brickname = b.brickname
            brickname = validate_brickname(brickname)
            return self._cutout(brickname, float(ra), float(dec), int(size), bands)
        except SecurityError as exc:
            return Cutout.failed(f"invalid brick name: {exc.message}", size, nb)
        except DataFileError as exc:
            return Cutout.failed(exc.message, size, nb, brickname=brickname)

    def _cutout(self, brickname: str, ra: float, dec: float, size: int, bands: str) -> Cutout:
        nb = len(bands)
        home = self.brick(brickname)
        try:
            wcs, shape = home.wcs(bands)
        except Missing as m:
            return Cutout.failed(f"missing file {m.path} (no coadd files for brick {brickname})", size, nb, brickname=brickname)
        x, y = (float(v) for v in wcs.all_world2pix([[ra, dec]], 0)[0])
        if not (np.isfinite(x) and np.isfinite(y)):
            return Cutout.failed(f"(ra, dec) = ({ra}, {dec}) has no pixel position in brick {brickname}", size, nb, brickname=brickname)
        x0, y0 = stamp_box(x, y, size)

        # Which brick serves each part of the stamp: [(open brick, dx, dy, sub-box in stamp coords)].
        pieces, reason = self._plan(home, wcs, shape, x0, y0, size, bands)
        if reason:
            return Cutout.failed(reason, size, nb, brickname=brickname)

        planes = np.zeros((2, nb, size, size), np.float32)  # image then invvar: one array for the packed RICE path
        image, invvar = planes[0], planes[1]
        maskbits = np.zeros((size, size), np.int32)
        notes = []
        # each band's quantisation grid, for lossless compact storage; a stitched stamp has none
        grids = {"image": [None] * nb, "invvar": [None] * nb}
        for ob, dx, dy, sel in pieces:
            # stamp pixel (sy, sx) is home pixel (y0+sy, x0+sx) is brick pixel (y0+sy+dy, x0+sx+dx);
            # read the bounding box of this brick's pixels once, copy where it is the source.
            if sel is None:  # the whole stamp from this brick
                sy0, sy1, sx0, sx1, m = 0, size, 0, size, True
            else:
                rows, cols = np.flatnonzero(sel.any(axis=1)), np.flatnonzero(sel.any(axis=0))
                sy0, sy1, sx0, sx1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
                m = sel[sy0:sy1, sx0:sx1]
            box = (y0 + sy0 + dy, y0 + sy1 + dy, x0 + sx0 + dx, x0 + sx1 + dx)
            if sel is None and self._read_packed(ob, bands, y0 + dy, x0 + dx, size, planes, grids):
                bands_left = ""  # every image and invvar plane read in one pass (rice_stamp.py)
            else:
                bands_left = bands
            for i, band in enumerate(bands_left):
                for kind, out in (("image", image), ("invvar", invvar)):
                    try:
                        of = ob.open(kind, band)
                    except Missing as miss:
                        other = "invvar" if kind == "image" else "image"
                        try:
                            ob.open(other, band)
                        except Missing:
                            return Cutout.failed(f"missing band {band}: brick {ob.brickname} has no {band}-band coadd ({miss.path} not found)", size, nb, brickname=brickname)
                        return Cutout.failed(f"missing file {miss.path}", size, nb, brickname=brickname)
                    if sel is None:  # the whole box: decoded straight into the stamp
                        of.decoded.read(*box, out=out[i])
                    else:
                        np.copyto(out[i, sy0:sy1, sx0:sx1], of.decoded.read(*box), where=m)
                    if sel is None and of.decoded.quant is not None:
                        grids[kind][i] = of.decoded.quant.window(y0 + dy, x0 + dx, size)
            try:
                of = ob.open("maskbits", None)
                np.copyto(maskbits[sy0:sy1, sx0:sx1], of.decoded.read(*box), where=m)
            except Missing as miss:
                # DR6 and earlier have no maskbits file: zeros, and say so.
                notes.append(f"no maskbits file ({miss.path}): maskbits set to 0")
        self._trim({ob.brickname for ob, *_ in pieces})
        return Cutout(image, invvar, maskbits, True, None, brickname, "; ".join(notes) or None, grids)

    @staticmethod
    def _read_packed(ob: OpenBrick, bands: str, row0: int, col0: int, size: int, planes: np.ndarray, grids: dict) -> bool:
        """Image and invvar boxes of every band through the brick's packed RICE reader
        (:mod:`.rice_stamp`: two compiled calls for the six grz files), with their quantisation
        grids; False when it does not apply (non-RICE or remote files, a whole-decoded file)."""
        packed = ob.rice_stamp(bands)
        if packed is None:
            return False
        stamp, decs = packed
        if not all(d.box_by_box(size) for d in decs):
            return False
        try:
            stamp.read(row0, col0, size, planes.reshape(len(decs), size, size))
        except ValueError as exc:  # a corrupt or truncated tile: name the file, as the per-file path does
            path = next((p for p in stamp.paths if str(exc).startswith(p)), stamp.paths[0])
            raise DataFileError(f"corrupt file {path}: cannot decompress [{row0}:{row0 + size}, {col0}:{col0 + size}]: ValueError: {exc}", path=path) from None
        nb = len(bands)
        for j, d in enumerate(decs):
            q = d.quant
            grids["image" if j < nb else "invvar"][j % nb] = q.window(row0, col0, size) if q is not None else None
        return True

    def _plan(self, home: OpenBrick, wcs, shape, x0: int, y0: int, size: int, bands: str):
        """[(open brick, dx, dy, stamp-pixel mask or None = all)] serving every stamp pixel, or (None, reason)."""
        if x0 >= 0 and y0 >= 0 and x0 + size <= shape[1] and y0 + size <= shape[0]:
            return [(home, 0, 0, None)], None  # inside the home brick: the common case
        covered = np.zeros((size, size), bool)
        pieces = []
        sy, sx = np.mgrid[0:size, 0:size]

        def add(ob, dx, dy, bshape):
            bny, bnx = bshape
            inside = (x0 + sx + dx >= 0) & (x0 + sx + dx < bnx) & (y0 + sy + dy >= 0) & (y0 + sy + dy < bny)
            sel = inside & ~covered
            if sel.any():
                pieces.append((ob, dx, dy, sel))
                covered[sel] = True

        add(home, 0, 0, shape)
        if covered.all():
            return pieces, None
        table = self.table()
        if table is None:
            return None, f"stamp crosses the edge of brick {home.brickname} and neighbours cannot be found: {self._table_error}"
        ny, nx = shape
        cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
        hra, hdec = (float(v) for v in wcs.all_pix2world([[cx, cy]], 0)[0])
        half_diag = math.hypot(nx, ny) * _pixscale_deg(wcs)
        corners = np.array([[x0, y0], [x0 + size - 1, y0], [x0, y0 + size - 1], [x0 + size - 1, y0 + size - 1]], float)
        sky = wcs.all_pix2world(corners, 0)
        not_aligned = []
        for b in table.near(hra, hdec, 1.5 * half_diag):
            if b.brickname == home.brickname:
                continue
            ob = self.brick(b.brickname)
            try:
                nwcs, nshape = ob.wcs(bands)
            except Missing:
                continue
            npix = nwcs.all_world2pix(sky, 0)
            off = npix - corners
            d = np.round(off[0])
            if np.abs(off - d).max() > ALIGN_TOL_PIX:
                overlaps = npix[:, 0].max() >= -0.5 and npix[:, 0].min() < nshape[1] - 0.5 and npix[:, 1].max() >= -0.5 and npix[:, 1].min() < nshape[0] - 0.5
                if overlaps:
                    not_aligned.append(b.brickname)
                continue
            add(ob, int(d[0]), int(d[1]), nshape)
            if covered.all():
                return pieces, None
        missing = int((~covered).sum())
        if not_aligned:
            return None, (f"stamp crosses the edge of brick {home.brickname}; neighbour brick(s) {not_aligned} are on a different "
                          f"pixel grid (would need resampling); {missing} pixels uncovered")
        return None, f"stamp crosses the edge of brick {home.brickname} and no neighbour brick covers {missing} of its pixels (absent from {join(self.root, 'coadd')})"


def _pixscale_deg(wcs) -> float:
    return float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))))
