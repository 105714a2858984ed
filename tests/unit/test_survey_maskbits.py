"""DR10 maskbits: bit numbers, star-mask radii and the bad-bit rule used by every SNR and mask."""

import numpy as np
import pytest

from darkhaloscope.config import config_from_dict
from darkhaloscope.errors import ConfigError
from darkhaloscope.physics import fastrow, metrics
from darkhaloscope.report.pixels import good_mask, recompute_snr
from darkhaloscope.survey import maskbits as mb
from darkhaloscope.survey.synth_render import mask_radius_arcsec


def _stamp(flags: int, size: int = 32):
    yy, xx = np.mgrid[0:size, 0:size]
    arc = 5.0 * np.exp(-((xx - 16.0) ** 2 + (yy - 16.0) ** 2) / 8.0)
    invvar = np.full((size, size), 2.0e5, np.float32)
    return arc, invvar, np.full((size, size), flags, np.int32)


def test_bit_numbers_are_dr10s():
    # legacypipe bits.py MASKBITS (DR10): SUB_BLOB is bit 16, so maskbits need int32
    assert mb.BITS["NPRIMARY"] == 0 and mb.BITS["BRIGHT"] == 1 and mb.BITS["WISEM1"] == 8
    assert mb.BITS["MEDIUM"] == 11 and mb.BITS["CLUSTER"] == 13 and mb.BITS["ALLMASK_I"] == 15
    assert mb.BITS["SUB_BLOB"] == 16 and (1 << mb.BITS["SUB_BLOB"]) > np.iinfo(np.int16).max
    assert sorted(mb.BITS.values()) == list(range(17))


def test_wise_and_nprimary_leave_every_pixel_good():
    flags = (1 << mb.BITS["WISEM1"]) | (1 << mb.BITS["NPRIMARY"])
    arc, iv, m = _stamp(flags)
    assert mb.good_pixel_mask(iv, m).all()
    assert good_mask(iv[None], m).all()
    clean = fastrow.snr_metrics_fast(arc, iv, np.zeros_like(m))
    assert fastrow.snr_metrics_fast(arc, iv, m) == clean
    assert metrics.snr_metrics(arc, iv, m)[:3] == pytest.approx(clean[:3], rel=1e-12)
    assert recompute_snr(arc, iv, m) == pytest.approx(clean[:3], rel=1e-12)


def test_bright_masks_the_pixels():
    arc, iv, m = _stamp(0)
    m[10:22, 10:22] = 1 << mb.BITS["BRIGHT"]
    good = mb.good_pixel_mask(iv, m)
    assert good.sum() == 32 * 32 - 144 and not good[16, 16]
    fast = fastrow.snr_metrics_fast(arc, iv, m)
    ref = metrics.snr_metrics(arc, iv, m)
    assert fast[0] == pytest.approx(ref[0], rel=1e-12)
    # the peak (at the centre) is masked: the max SNR over good pixels is that of the nearest good pixel
    expected = float((arc * np.sqrt(iv.astype(np.float64) + 1e-12))[good].max())
    assert fast[0] == pytest.approx(expected, rel=1e-12)
    m[:] = 1 << mb.BITS["BRIGHT"]
    assert fastrow.snr_metrics_fast(arc, iv, m)[0] is None
    # a configured rule without BRIGHT keeps them
    assert fastrow.snr_metrics_fast(arc, iv, m, bad_mask=mb.bit_mask(["MEDIUM"]))[0] is not None


def test_config_names_to_mask_and_unknown_names():
    cfg = config_from_dict({"survey": {"bad_maskbits": ["BRIGHT", "medium"]}})
    assert mb.bad_bit_mask(cfg) == (1 << 1) | (1 << 11)
    assert mb.bad_bit_mask(config_from_dict({})) == mb.DEFAULT_BAD_MASK
    for name in ("NPRIMARY", "WISEM1", "WISEM2", "BAILOUT", "SUB_BLOB"):
        assert not mb.DEFAULT_BAD_MASK & (1 << mb.BITS[name])
    with pytest.raises(ConfigError, match="bad_maskbits"):
        config_from_dict({"survey": {"bad_maskbits": ["BRIGTH"]}})


def test_star_mask_radii():
    # reference.py: MEDIUM R = 1630" x 1.396^-mag (G < 16), BRIGHT R / 2 (G < 13)
    bright, medium = mask_radius_arcsec(np.array([10.0, 14.0, 17.0, 0.0]))
    assert medium[0] == pytest.approx(1630.0 * 1.396**-10.0) and bright[0] == pytest.approx(0.5 * medium[0])
    assert bright[1] == 0.0 and medium[1] == pytest.approx(1630.0 * 1.396**-14.0)
    assert medium[2] == 0.0 and medium[3] == 0.0
