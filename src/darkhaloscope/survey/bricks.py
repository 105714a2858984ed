"""DR10 brick geometry: brick names, the survey-bricks table, file paths inside a survey root.

A brick name is ``RRRR[pm]DDD``: RA x 10 and |Dec| x 10 of the brick centre, truncated
(``0959p805`` is RA 95.95, Dec +80.5). Every name read from a catalog, a file name or a user is
validated against that pattern before it becomes part of a path, so nothing outside the survey
root can be named through it.

Angles are in degrees throughout.
"""

from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFileError, SecurityError

BRICKNAME_RE = re.compile(r"^\d{4}[pm]\d{3}$")
BRICKS_TABLE = "survey-bricks.fits.gz"  # all bricks; DR10: dr10/survey-bricks.fits.gz, above the regions
# The DR10 release as on the portal (https://portal.nersc.gov/cfs/cosmo/data/legacysurvey/dr10/):
# <release>/survey-bricks.fits.gz and <release>/<region>/{coadd,tractor,sweep}/...; a brick reader's
# root is the region folder (``dr10/south``), where coadd/ and tractor/ live.
REGION = "south"
BRICKS_SUMMARY = "survey-bricks-dr10-south.fits.gz"  # per-brick summary in the region folder (depths in AB mag)
SWEEP_DIR = "sweep/10.1"  # recommended DR10 sweeps, under the region folder
PHOTOZ_DIR = "sweep/10.1-photo-z"  # photometric redshifts, one <sweep>-pz.fits per sweep, row by row


def validate_brickname(name: str) -> str:
    """Return ``name`` (stripped) if it is a DR10 brick name, else raise SecurityError."""
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    name = str(name).strip()
    if not BRICKNAME_RE.match(name):
        raise SecurityError(f"not a DR10 brick name: {name!r} (expected RRRR[pm]DDD)", path=name)
    return name


def brickname_for(ra: float, dec: float) -> str:
    """DR10 brick name of a brick centred at (ra, dec) degrees: truncated RA x 10 and |Dec| x 10."""
    r10 = int(np.floor(ra * 10.0 + 1e-9)) % 3600
    d10 = int(np.floor(abs(dec) * 10.0 + 1e-9))
    return f"{r10:04d}{'p' if dec >= 0 else 'm'}{d10:03d}"


BANDED_KINDS = ("image", "invvar", "nexp", "depth", "galdepth", "psfsize")


def coadd_relpath(brickname: str, kind: str, band: str | None = None) -> str:
    """Path of a coadd file relative to the survey (region) root, e.g. ``dr10/south``.

    kind: ``maskbits``, or ``image``, ``invvar``, ``nexp``, ``depth``, ``galdepth``, ``psfsize``
    (these need ``band``); DR10 names, legacypipe ``survey.py`` ``find_file``.
    """
    b = validate_brickname(brickname)
    if kind == "maskbits":
        fname = f"legacysurvey-{b}-maskbits.fits.fz"
    else:
        if kind not in BANDED_KINDS:
            raise SecurityError(f"bad coadd file type {kind!r}", path=str(kind))
        if band is None or not re.fullmatch(r"[a-zA-Z0-9]", band):
            raise SecurityError(f"bad band name {band!r}", path=str(band))
        fname = f"legacysurvey-{b}-{kind}-{band}.fits.fz"
    return f"coadd/{b[:3]}/{b}/{fname}"


def tractor_relpath(brickname: str) -> str:
    """Path of a brick's Tractor catalog relative to the survey root."""
    b = validate_brickname(brickname)
    return f"tractor/{b[:3]}/tractor-{b}.fits"


@dataclass(frozen=True)
class Brick:
    """One row of the survey-bricks table: centre and unique-area bounds (degrees)."""

    brickname: str
    brickid: int
    ra: float
    dec: float
    ra1: float
    ra2: float
    dec1: float
    dec2: float

    def contains(self, ra: float, dec: float) -> bool:
        """True when (ra, dec) lies in the brick's unique area (RA wrap handled)."""
        if not self.dec1 <= dec < self.dec2:
            return False
        width = (self.ra2 - self.ra1) % 360.0
        return ((ra - self.ra1) % 360.0) < width


def _col(table, name: str):
    names = {n.lower(): n for n in table.columns.names}
    if name.lower() not in names:
        return None
    return table[names[name.lower()]]


class BrickTable:
    """The survey-bricks table: brick lookup by name and by sky position.

    Reads the standard DR10 ``survey-bricks.fits.gz`` columns (any letter case):
    BRICKNAME, BRICKID, RA, DEC, RA1, RA2, DEC1, DEC2. Optional per-brick columns such as
    ``psfsize_g/r/z`` (arcsec, in the survey-bricks-dr* summaries) are kept in :attr:`extra`.
    """

    def __init__(self, bricks: list[Brick], extra: dict[str, np.ndarray] | None = None) -> None:
        self.bricks = bricks
        self.extra = extra or {}
        self._by_name = {b.brickname: i for i, b in enumerate(bricks)}
        self._dec = np.array([b.dec for b in bricks])
        self._ra = np.array([b.ra for b in bricks])

    def __len__(self) -> int:
        return len(self.bricks)

    @classmethod
    def read(cls, path_or_file, label: str | None = None) -> BrickTable:
        """Read a survey-bricks FITS table from a path or a binary file object."""
        from astropy.io import fits

        label = label or str(path_or_file)
        try:
            with fits.open(path_or_file, memmap=False) as hdul:
                t = hdul[1].data
                cols = {n: _col(t, n) for n in ("brickname", "brickid", "ra", "dec", "ra1", "ra2", "dec1", "dec2")}
                missing = [n for n in ("brickname", "ra", "dec") if cols[n] is None]
                if missing:
                    raise DataFileError(f"survey-bricks table {label} lacks column(s) {missing}", path=label)
                n = len(t)
                names = [validate_brickname(x) for x in np.asarray(cols["brickname"])]
                ra = np.asarray(cols["ra"], float)
                dec = np.asarray(cols["dec"], float)
                bid = np.asarray(cols["brickid"], np.int64) if cols["brickid"] is not None else np.full(n, -1)
                # Tables without bounds (e.g. survey-bricks-dr6 summaries) get none: lookup by name only.
                ra1 = np.asarray(cols["ra1"], float) if cols["ra1"] is not None else np.full(n, np.nan)
                ra2 = np.asarray(cols["ra2"], float) if cols["ra2"] is not None else np.full(n, np.nan)
                dec1 = np.asarray(cols["dec1"], float) if cols["dec1"] is not None else np.full(n, np.nan)
                dec2 = np.asarray(cols["dec2"], float) if cols["dec2"] is not None else np.full(n, np.nan)
                extra = {}
                for c in t.columns.names:
                    if c.lower().startswith(("psfsize_", "psfdepth_", "galdepth_", "ebv")):
                        extra[c.lower()] = np.asarray(t[c], float)
        except DataFileError:
            raise
        except SecurityError as exc:
            raise DataFileError(f"survey-bricks table {label} holds an invalid brick name: {exc.message}", path=label) from None
        except Exception as exc:  # astropy raises many types for corrupt files
            raise DataFileError(f"cannot read survey-bricks table {label}: {exc}", path=label) from None
        bricks = [
            Brick(names[i], int(bid[i]), float(ra[i]), float(dec[i]), float(ra1[i]), float(ra2[i]), float(dec1[i]), float(dec2[i]))
            for i in range(n)
        ]
        return cls(bricks, extra)

    def get(self, brickname: str) -> Brick | None:
        """The brick of that name, or None."""
        i = self._by_name.get(str(brickname).strip())
        return None if i is None else self.bricks[i]

    def index(self, brickname: str) -> int | None:
        """Row index of a brick name, or None."""
        return self._by_name.get(str(brickname).strip())

    def find(self, ra: float, dec: float) -> Brick | None:
        """The brick whose unique area contains (ra, dec), or None."""
        near = np.flatnonzero(np.abs(self._dec - dec) < 1.0)
        for i in near:
            b = self.bricks[i]
            if b.contains(ra, dec):
                return b
        return None

    def near(self, ra: float, dec: float, radius_deg: float) -> list[Brick]:
        """Bricks whose centre lies within ``radius_deg`` (+ their half-size) of (ra, dec), nearest first."""
        d = _angsep(ra, dec, self._ra, self._dec)
        order = np.argsort(d, kind="stable")
        return [self.bricks[i] for i in order if d[i] < radius_deg]


def _angsep(ra1, dec1, ra2, dec2):
    """Angular separation in degrees (haversine)."""
    r1, d1, r2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    a = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(a, 0, 1))))


def write_bricks_table(path: str | Path, bricks: list[Brick], extra: dict[str, np.ndarray] | None = None) -> None:
    """Write a survey-bricks table (DR10 upper-case column names) to ``path`` (gzip by suffix)."""
    from astropy.io import fits

    cols = [
        fits.Column("BRICKNAME", "8A", array=np.array([b.brickname for b in bricks])),
        fits.Column("BRICKID", "J", array=np.array([b.brickid for b in bricks], np.int32)),
        fits.Column("RA", "D", array=np.array([b.ra for b in bricks])),
        fits.Column("DEC", "D", array=np.array([b.dec for b in bricks])),
        fits.Column("RA1", "D", array=np.array([b.ra1 for b in bricks])),
        fits.Column("RA2", "D", array=np.array([b.ra2 for b in bricks])),
        fits.Column("DEC1", "D", array=np.array([b.dec1 for b in bricks])),
        fits.Column("DEC2", "D", array=np.array([b.dec2 for b in bricks])),
    ]
    for name, arr in (extra or {}).items():
        cols.append(fits.Column(name.upper(), "E", array=np.asarray(arr, np.float32)))
    hdu = fits.BinTableHDU.from_columns(cols)
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf, checksum=False)
    # gzip with mtime=0 and no embedded name: the same bricks give identical bytes.
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue())
