"""Geometry of the synthetic DR10-format sky: one tangent plane, bricks as windows of it.

All synthetic bricks are windows of ONE global TAN projection (tangent point ``(ra_start,
dec_center)`` at global pixel (0, 0), pixel scale ``survey.pixel_scale``, north up, east left),
so neighbouring bricks share one pixel grid and a stamp across a brick edge is stitched by
copying pixels (no resampling). With N = ``brick_size_pix`` and margin M = ``brick_overlap_pix``,
brick centres are P = N - 2M pixels apart and brick (i, j) covers global pixels
``X in [i*P - N//2, i*P - N//2 + N)``, ``Y`` likewise. Its primary (unique) area is the central
P x P pixels: the survey-bricks table's RA1..RA2, DEC1..DEC2, the objects the brick's catalog
calls ``brick_primary`` and sweeps keep, and the pixels its maskbits do not flag NPRIMARY. That is
DR10's layout: 3600 px images on a 0.25 deg grid reach ~82 px into their neighbours
(legacypipe ``py/legacypipe/survey.py`` ``wcs_for_brick``; ``runbrick.py`` sets NPRIMARY outside
the unique area), so a stamp of S <= 2M px centred on a primary object never crosses its
image's edge. M = 0 tiles the field with no overlap (stamps near an edge are stitched). (Real DR10
bricks have their own tangent points; the reader handles both, see brick_reader.py.)

Names follow DR10 (``RRRR[pm]DDD`` from the brick centre); bricks smaller than DR10's 0.1 deg
name resolution can collide, which :func:`synthetic_bricks` reports as a ConfigError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import Config
from ..errors import ConfigError
from .bricks import Brick, brickname_for


@dataclass(frozen=True)
class SynthBrick:
    """A synthetic brick: its table row, grid indices, first global pixel (x0, y0), image side
    and primary-area margin (pixels of the image outside the unique area, each side)."""

    brick: Brick
    i: int
    j: int
    x0: int
    y0: int
    size: int
    margin: int = 0

    def primary(self, x, y) -> np.ndarray:
        """bool: global pixel position(s) (x, y) inside this brick's primary (unique) area."""
        lo_x, lo_y = self.x0 + self.margin - 0.5, self.y0 + self.margin - 0.5
        hi = self.size - 2 * self.margin
        x, y = np.asarray(x, float), np.asarray(y, float)
        return (x >= lo_x) & (x < lo_x + hi) & (y >= lo_y) & (y < lo_y + hi)


class SynthGrid:
    """The global tangent plane of the synthetic survey (angles in degrees, pixels 0-based)."""

    def __init__(self, cfg: Config) -> None:
        s = cfg.survey.synthetic
        self.ra0 = float(s.ra_start)
        self.dec0 = float(s.dec_center)
        self.scale_deg = cfg.survey.pixel_scale / 3600.0
        self.n = int(s.brick_size_pix)

    def header_wcs(self, x0: int, y0: int) -> dict:
        """FITS WCS keywords of a window whose first pixel is global (x0, y0)."""
        return {
            "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
            "CRVAL1": self.ra0, "CRVAL2": self.dec0,
            # FITS pixels are 1-based: global pixel 0 is local pixel 1 - x0.
            "CRPIX1": 1.0 - x0, "CRPIX2": 1.0 - y0,
            "CD1_1": -self.scale_deg, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": self.scale_deg,
            "EQUINOX": 2000.0, "RADESYS": "ICRS",
        }

    def wcs(self, x0: int = 0, y0: int = 0):
        """astropy WCS of the window starting at global pixel (x0, y0)."""
        from astropy.io import fits
        from astropy.wcs import WCS

        h = fits.Header()
        h["NAXIS"] = 2
        h["NAXIS1"] = self.n
        h["NAXIS2"] = self.n
        for k, v in self.header_wcs(x0, y0).items():
            h[k] = v
        return WCS(h)

    def pix2world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global pixel (x, y) -> (ra, dec) degrees."""
        ra, dec = self.wcs().all_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
        return np.asarray(ra), np.asarray(dec)

    def world2pix(self, ra, dec) -> tuple[np.ndarray, np.ndarray]:
        """(ra, dec) degrees -> global pixel (x, y)."""
        x, y = self.wcs().all_world2pix(np.asarray(ra, float), np.asarray(dec, float), 0)
        return np.asarray(x), np.asarray(y)


def synthetic_bricks(cfg: Config) -> list[SynthBrick]:
    """The bricks of the synthetic sky, in row-major order (Dec rows, then RA columns)."""
    s = cfg.survey.synthetic
    grid = SynthGrid(cfg)
    n, m = grid.n, int(s.brick_overlap_pix)
    step = n - 2 * m  # centre spacing = side of the primary area
    out = []
    for j in range(s.n_bricks_dec):
        for i in range(s.n_bricks_ra):
            x0, y0 = i * step - n // 2, j * step - n // 2
            cx, cy = x0 + (n - 1) / 2.0, y0 + (n - 1) / 2.0
            (ra, dec) = (float(v[0]) for v in grid.pix2world([cx], [cy]))
            # RA1..RA2, DEC1..DEC2: the primary area's edges (as survey-bricks gives them)
            lo, hi = m - 0.5, n - m - 0.5
            ra_e, dec_e = grid.pix2world([x0 + hi, x0 + lo, cx, cx], [cy, cy, y0 + lo, y0 + hi])
            name = brickname_for(ra, dec)
            brick = Brick(
                brickname=name,
                brickid=1 + j * s.n_bricks_ra + i,
                ra=ra, dec=dec,
                ra1=float(ra_e[0]) % 360.0, ra2=float(ra_e[1]) % 360.0,
                dec1=float(dec_e[2]), dec2=float(dec_e[3]),
            )
            out.append(SynthBrick(brick, i, j, x0, y0, n, m))
    names = [b.brick.brickname for b in out]
    if len(set(names)) != len(names):
        dup = sorted({x for x in names if names.count(x) > 1})
        raise ConfigError(
            f"synthetic bricks of {n} px ({n * cfg.survey.pixel_scale / 3600:.4f} deg) get duplicate DR10 names {dup}: "
            "DR10 names resolve 0.1 deg; use survey.synthetic.brick_size_pix >= 1375, or move ra_start/dec_center so "
            "brick centres fall in different 0.1 deg cells",
            field="survey.synthetic.brick_size_pix",
        )
    return out
