"""ids.py: stable task ids, hash splits within 0.5 % of config, roles 50/50, stability."""

from __future__ import annotations

import numpy as np
import pytest

from darkhaloscope.config import config_from_dict
from darkhaloscope.errors import CatalogError
from darkhaloscope.ids import (
    assign_role,
    assign_split,
    make_galaxy_id,
    make_task_id,
    make_task_ids,
    split_task_id,
    task_rng,
)

N = 100_000


@pytest.fixture(scope="module")
def ids():
    rng = np.random.default_rng(3)
    release = np.full(N, 10000)
    brickid = rng.integers(1, 662174, N)
    objid = rng.integers(0, 20000, N)
    tids = make_task_ids(release, brickid, objid)
    gids = [make_galaxy_id(r, b, o) for r, b, o in zip(release, brickid, objid, strict=True)]
    return tids, gids


def test_task_id_roundtrip_and_layout():
    t = make_task_id(10000, 662174, 12345)
    assert split_task_id(t) == (10000, 662174, 12345)
    assert t > 0 and t < 2**63
    assert make_galaxy_id(10000, 662174, 12345) == "10000_662174_12345"
    with pytest.raises(CatalogError) as ei:
        make_task_id(10000, 2**20, 0)
    assert ei.value.field == "brickid"


def test_split_fractions_within_half_percent(ids):
    cfg = config_from_dict({})
    tids, _ = ids
    splits = np.array([assign_split(t, cfg.tasks.split_fractions, cfg.tasks.split_salt) for t in tids])
    for name, frac in cfg.tasks.split_fractions.items():
        assert abs((splits == name).mean() - frac) < 0.005, name


def test_other_fractions_follow_config(ids):
    tids, _ = ids
    fr = {"train": 0.8, "val": 0.1, "test": 0.1}
    splits = np.array([assign_split(t, fr, "s") for t in tids[:50000]])
    assert abs((splits == "train").mean() - 0.8) < 0.005


def test_roles_fifty_fifty(ids):
    cfg = config_from_dict({})
    _, gids = ids
    roles = np.array([assign_role(g, cfg.tasks.control_fraction, cfg.tasks.role_salt) for g in gids])
    assert abs((roles == "control").mean() - 0.5) < 0.005


def test_split_and_role_are_stable_and_independent(ids):
    cfg = config_from_dict({})
    tids, gids = ids
    a = [assign_split(t, cfg.tasks.split_fractions, cfg.tasks.split_salt) for t in tids[:1000]]
    b = [assign_split(t, cfg.tasks.split_fractions, cfg.tasks.split_salt) for t in reversed(tids[:1000])]
    assert a == b[::-1]
    # a different salt reshuffles
    c = [assign_split(t, cfg.tasks.split_fractions, "other-salt") for t in tids[:1000]]
    assert a != c
    # role does not depend on split: control fraction equal within each split
    splits = np.array([assign_split(t, cfg.tasks.split_fractions, cfg.tasks.split_salt) for t in tids[:40000]])
    roles = np.array([assign_role(g, 0.5, cfg.tasks.role_salt) for g in gids[:40000]])
    for s in ("train", "val", "test"):
        assert abs((roles[splits == s] == "control").mean() - 0.5) < 0.02


def test_task_rng_is_the_seed_sequence_of_the_int_list():
    """task_rng's uint32-word entropy gives numpy's SeedSequence([seed, task_id, key]) draws
    exactly: zero, one-word, two-word and full-layout values of each entry."""
    from darkhaloscope.ids import _stream_key

    rng = np.random.default_rng(3)
    values = [0, 1, 2**32 - 1, 2**32, 2**41 + 5, 2**63 - 1, *(int(v) for v in rng.integers(0, 2**63 - 1, 20))]
    for seed in (0, 12345, 2**32 + 7):
        for task_id in values:
            for stream in ("lens", "source", "noise", "negative"):
                ref = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, task_id, _stream_key(stream)])))
                assert np.array_equal(task_rng(seed, task_id, stream).random(3), ref.random(3)), (seed, task_id, stream)
    with pytest.raises(ValueError):
        task_rng(-1, 5, "lens")


def test_task_rng_streams():
    a = task_rng(1, 99, "lens").random(4)
    assert np.array_equal(a, task_rng(1, 99, "lens").random(4))
    assert not np.array_equal(a, task_rng(1, 99, "source").random(4))
    assert not np.array_equal(a, task_rng(2, 99, "lens").random(4))
