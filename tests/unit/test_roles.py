"""Roles: the role mix per split on 1e5 ids, the config's forms and errors, the label mapping,
and the painted negatives (unlensed, ring): complete rows, matched brightness, re-rendered bit
for bit from their parameters, look-alike shapes checked against an analytic reference."""

from __future__ import annotations

import numpy as np
import pytest
from test_inject import bank as bank  # noqa: F401 (module fixture: 12 GalSim templates)
from test_inject import (  # inject: + the dataset layer's encoding
    bright_cfg,
    inject,
    make_cutout,
    make_task,
)

from darkhaloscope.config import HASHED_ROLES, ROLE_LABELS, ROLES, Config, config_from_dict
from darkhaloscope.dataset.schema import COLUMN_NAMES, rows_to_table
from darkhaloscope.dataset.stamp import decode_arc, decode_stamp
from darkhaloscope.errors import CatalogError, ConfigError
from darkhaloscope.ids import (
    assign_role,
    assign_split,
    label_of,
    labels_of,
    make_galaxy_id,
    make_task_ids,
)
from darkhaloscope.physics.lookalikes import Lookalike, lookalike_unit
from darkhaloscope.roles import render_painted_from_row

N = 100_000
MIX = {"control": 0.35, "injection": 0.40, "unlensed": 0.10, "ring": 0.15}


@pytest.fixture(scope="module")
def ids():
    rng = np.random.default_rng(5)
    release, brickid, objid = np.full(N, 10000), rng.integers(1, 662174, N), rng.integers(0, 20000, N)
    return make_task_ids(release, brickid, objid), [make_galaxy_id(r, b, o) for r, b, o in zip(release, brickid, objid, strict=True)]


def test_role_fractions_within_tolerance_on_1e5_ids(ids):
    tids, gids = ids
    test_mix = {"control": 0.5, "injection": 0.2, "unlensed": 0.1, "ring": 0.2}
    cfg = config_from_dict({"tasks": {"role_fractions": {"all": MIX, "test": test_mix}}})
    t = cfg.tasks
    splits = np.array([assign_split(x, t.split_fractions, t.split_salt) for x in tids])
    roles = np.array([assign_role(g, t.role_mix(s), t.role_salt) for g, s in zip(gids, splits, strict=True)])
    for split in ("train", "val", "test"):
        mix = test_mix if split == "test" else MIX
        sel = roles[splits == split]
        sigma = np.sqrt(0.25 / sel.size)  # binomial sigma at most
        for role, f in mix.items():
            assert abs((sel == role).mean() - f) < 4 * sigma, (split, role)


def test_legacy_control_fraction_keeps_every_role(ids):
    _, gids = ids
    cfg = config_from_dict({"tasks": {"control_fraction": 0.3}})
    old = [assign_role(g, 0.3, cfg.tasks.role_salt) for g in gids[:5000]]
    new = [assign_role(g, cfg.tasks.role_mix("train"), cfg.tasks.role_salt) for g in gids[:5000]]
    assert old == new and set(old) == {"control", "injection"}


@pytest.mark.parametrize("tasks, field", [
    ({"control_fraction": 0.3, "role_fractions": MIX}, "tasks.control_fraction"),
    ({"role_fractions": {**MIX, "ring": 0.2}}, "tasks.role_fractions"),
    ({"role_fractions": {"control": 0.5, "known_lens": 0.5}}, "tasks.role_fractions.known_lens"),
    ({"role_fractions": {"train": MIX}}, "tasks.role_fractions"),
    ({"role_fractions": {"all": MIX, "tset": MIX}}, "tasks.role_fractions.tset"),
])
def test_bad_role_fractions_name_the_field(tasks, field):
    with pytest.raises(ConfigError) as ei:
        config_from_dict({"tasks": tasks})
    assert ei.value.field == field


def test_resolved_configs_round_trip():
    """A resolved config (manifest, checkpoint) holds both fields at their values: it reloads."""
    from darkhaloscope.config import config_to_dict

    cfg = config_from_dict({"tasks": {"role_fractions": {"all": MIX}}})
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_labels_come_from_one_mapping():
    assert set(ROLES) == set(ROLE_LABELS) and set(HASHED_ROLES) <= set(ROLES)
    assert [label_of(r) for r in ("control", "injection", "unlensed", "ring", "impostor", "known_lens")] == [0, 1, 0, 0, 0, 1]
    assert labels_of(["ring", "known_lens"]).tolist() == [0, 1]
    with pytest.raises(CatalogError):
        label_of("lens?")
    table = rows_to_table([{"task_id": 1, "galaxy_id": "g", "brickname": "b", "ra": 0.0, "dec": 0.0, "split": "train", "role": r,
                            "cutout_ok": False, "seed": 0, "config_hash": "h", "code_version": "v"} for r in ROLES])
    assert table["label"].to_pylist() == [ROLE_LABELS[r] for r in ROLES]


@pytest.mark.parametrize("role", ["unlensed", "ring"])
def test_painted_negative_rows_rerender_bit_for_bit(bank, role):  # noqa: F811
    cfg = bright_cfg(Config())
    cut = make_cutout()
    kinds = set()
    for tid in range(8):
        task = make_task(task_id=tid, role=role)
        row = inject(task, cut, bank, cfg)
        ref = inject({**task, "role": "injection"}, cut, bank, cfg)
        assert tuple(row) == COLUMN_NAMES and row["cutout_ok"], row["cutout_reason"]
        assert rows_to_table([row])["label"].to_pylist() == [0]
        assert row["theta_e"] is None and row["magnification"] is None  # not lensed: no lens columns
        assert row["ref_theta_e"] == ref["theta_e"]
        arc = decode_arc(row["arc_npz"])
        rerendered = render_painted_from_row(row, bank, cfg)
        assert rerendered.dtype == arc.dtype and np.array_equal(rerendered, arc)
        stamp = decode_stamp(row["stamp_npz"])
        assert np.abs(stamp["image"] - cut.image - arc).max() < 0.05 * arc.max()  # host + painted + shot noise
        # brightness matched to the would-be injection's arc in r (the PSF loses a little at the edge)
        assert row["arc_flux_r"] == pytest.approx(ref["arc_flux_r"], rel=0.02)
        r = np.hypot(row["lookalike_x"] - ref["lens_x"], row["lookalike_y"] - ref["lens_y"])
        assert r < 1e-6  # centred on the host
        r_max = cfg.lens.theta_e_max * (1 + cfg.lens.source_radius_fraction)
        if role == "unlensed":
            sep = np.hypot(row["src_x"] - ref["lens_x"], row["src_y"] - ref["lens_y"])
            assert min(cfg.negatives.unlensed_sep_min * ref["theta_e"], r_max) - 1e-4 <= sep <= min(3 * ref["theta_e"], r_max) + 1e-4
            assert row["cosmos_index"] == ref["cosmos_index"] and row["src_mag_g"] - row["src_mag_r"] == pytest.approx(ref["src_mag_g"] - ref["src_mag_r"], abs=0.03)
        else:
            kinds.add(row["lookalike_kind"])
            assert row["lookalike_radius"] <= r_max + 1e-4
            # colours of the host (g-r of flux_g=2, flux_r=5) within 4 sigma of the scatter
            host_gr = -2.5 * np.log10(2.0 / 5.0)
            assert abs(row["src_mag_g"] - row["src_mag_r"] - host_gr) < 4 * cfg.negatives.host_colour_scatter + 1e-6
        again = inject(task, cut, bank, cfg)
        assert again["stamp_npz"] == row["stamp_npz"]
    if role == "ring":
        assert len(kinds) >= 2


def test_lookalike_ring_matches_analytic_profile():
    """A full circular ring, no clumps: flux per pixel against an independent radial Gaussian
    ring integrated on a 16x finer grid (tolerance 2 % of the peak)."""
    s, pix = 64, 0.262
    p = Lookalike("ring", 0.3, -0.2, 2.0, 0.2, 1.0, 0.0, 360.0, 0.0, 20.0, 1, 0, 0.0, 1)
    img = lookalike_unit(p, s, pix, 4)
    assert img.sum() == pytest.approx(1.0, abs=1e-12)
    f = 16
    c = ((np.arange(s * f) + 0.5) / f - 0.5 - (s - 1) / 2) * pix
    yy, xx = np.meshgrid(c, c, indexing="ij")
    ref = np.exp(-0.5 * ((np.hypot(xx - 0.3, yy + 0.2) - 2.0) / 0.2) ** 2).reshape(s, f, s, f).sum(axis=(1, 3))
    ref /= ref.sum()
    assert np.abs(img - ref).max() < 0.02 * ref.max()
    # one image only: a partial ring puts its flux on one side (no counter-image)
    half = lookalike_unit(Lookalike("partial_ring", 0.0, 0.0, 2.0, 0.2, 1.0, 0.0, 90.0, 0.0, 20.0, 1, 0, 0.0, 1), s, pix, 4)
    x = (np.arange(s) - (s - 1) / 2)[None, :]
    assert half[:, (x[0] > 0)].sum() > 0.95
