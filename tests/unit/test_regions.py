"""Real stamps split by sky region: HEALPix cells against astropy-healpix's own inverse, one
split per cell, region fractions on many cells, and no known lens of the evaluation anchor set
among training rows (by position within 2")."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy_healpix import HEALPix

from darkhaloscope.config import config_from_dict
from darkhaloscope.errors import CatalogError
from darkhaloscope.regions import position_table, region_cells, region_splits


def _sky(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-0.9, 0.5, n)))


def test_cells_contain_their_positions_and_splits_follow_fractions():
    cfg = config_from_dict({"tasks": {"region_nside": 16}})
    ra, dec = _sky(20000, 1)
    cells = region_cells(ra, dec, 16)
    hp = HEALPix(16, order="nested")
    centre = SkyCoord(*hp.healpix_to_lonlat(cells))
    assert centre.separation(SkyCoord(ra * u.deg, dec * u.deg)).deg.max() < 2.5 * np.sqrt(hp.pixel_area.to(u.deg**2).value)
    splits = np.array(region_splits(cells, cfg))
    for c in np.unique(cells)[:200]:  # one split per cell
        assert len(set(splits[cells == c])) == 1
    uniq, first = np.unique(cells, return_index=True)
    per_cell = splits[first]
    for name, f in cfg.tasks.region_split_fractions.items():
        assert abs((per_cell == name).mean() - f) < 4 * np.sqrt(f * (1 - f) / uniq.size), name


def test_no_evaluation_anchor_among_training_known_lenses():
    cfg = config_from_dict({})
    ra, dec = _sky(3000, 2)
    names = [f"L{i}" for i in range(ra.size)]
    # the evaluation anchors: 300 of the same lenses re-measured up to 1.5" away, plus 100 elsewhere
    rng = np.random.default_rng(3)
    pick = rng.choice(ra.size, 300, replace=False)
    off = SkyCoord(ra[pick] * u.deg, dec[pick] * u.deg).directional_offset_by(rng.uniform(0, 360, 300) * u.deg, rng.uniform(0, 1.5, 300) * u.arcsec)
    a_ra, a_dec = np.concatenate([off.ra.deg, _sky(100, 4)[0]]), np.concatenate([off.dec.deg, _sky(100, 4)[1]])
    t = position_table(ra, dec, names, "known_lens", cfg, a_ra, a_dec, [f"A{i}" for i in range(a_ra.size)])
    assert t.num_rows == ra.size and set(t["role"].to_pylist()) == {"known_lens"}
    split = np.array(t["split"].to_pylist())
    train = split != "test"  # train and val both feed training (val picks the checkpoint)
    pos = SkyCoord(t["ra"].to_numpy() * u.deg, t["dec"].to_numpy() * u.deg)
    _, sep, _ = pos[train].match_to_catalog_sky(SkyCoord(a_ra * u.deg, a_dec * u.deg))
    assert sep.arcsec.min() > 2.0
    reasons = np.array(t["split_reason"].to_pylist())
    moved = np.char.startswith(reasons.astype(str), "within 2 arcsec of evaluation anchor")
    assert moved.sum() > 100 and (split[moved] == "test").all()  # ~60 % of the 300 lay in train/val regions
    # the split of every known lens is written down, stable, and its task_id never an LRG's
    t2 = position_table(ra[::-1], dec[::-1], names[::-1], "known_lens", cfg, a_ra, a_dec, [f"A{i}" for i in range(a_ra.size)])
    assert t2.equals(t)
    assert (t["task_id"].to_numpy() >> 41 == 16001).all()


def test_bad_catalogues_raise_naming_the_row():
    cfg = config_from_dict({})
    with pytest.raises(CatalogError) as ei:
        position_table([1.0, 2.0], [0.0, 95.0], ["a", "b"], "known_lens", cfg)
    assert ei.value.row == 1
    with pytest.raises(CatalogError, match="unique"):
        position_table([1.0, 2.0], [0.0, 1.0], ["a", "a"], "impostor", cfg)
    with pytest.raises(CatalogError, match="real-stamp role"):
        position_table([1.0], [0.0], ["a"], "ring", cfg)
