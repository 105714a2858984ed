"""Small synthetic surveys shared by the survey tests (built once per test session)."""

from __future__ import annotations

import pytest

from darkhaloscope.config import config_from_dict

# Two 300 px bricks side by side in RA; centres in different 0.1 deg cells (unique DR10 names).
SMALL = {
    "seed": 7,
    "survey": {
        "synthetic": {
            "n_bricks_ra": 2, "n_bricks_dec": 1, "brick_size_pix": 300,
            "ra_start": 150.01, "dec_center": 10.05,
            "lrg_per_brick": 20, "galaxies_per_brick": 10, "stars_per_brick": 4,
            "seeing_r_min": 1.2, "seeing_r_max": 1.2, "tile_size": 64,
        }
    },
}


def small_config(**synthetic):
    data = {"seed": SMALL["seed"], "survey": {"synthetic": {**SMALL["survey"]["synthetic"], **synthetic}}}
    return config_from_dict(data)


@pytest.fixture(scope="session")
def small_survey(tmp_path_factory):
    """(config, root) of the two-brick synthetic survey; root is the region folder (``<release>/south``,
    where coadd/, tractor/ and sweep/ live; survey-bricks.fits.gz is one level up, as in DR10)."""
    from darkhaloscope.survey.build_survey import build_survey

    cfg = small_config()
    release = tmp_path_factory.mktemp("small_survey")
    build_survey(cfg, release)
    return cfg, release / "south"
