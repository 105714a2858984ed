"""Fixtures of the reliability suite: one tiny real world (synthetic DR10-format survey of two
300 px bricks, its task table, a procedural source bank), built once per test session, and
helpers to damage copies of it."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from darkhaloscope.config import Config, config_from_dict

# Small enough for the whole suite on 2 shared cores; big enough for two bricks, every split,
# both roles, edge stamps (cutout_ok = false) and several shards per run.
REL_CONFIG = {
    "seed": 7,
    "survey": {
        "synthetic": {
            "n_bricks_ra": 2, "n_bricks_dec": 1, "brick_size_pix": 300,
            "ra_start": 150.01, "dec_center": 10.05,
            "lrg_per_brick": 50, "galaxies_per_brick": 10, "stars_per_brick": 4, "tile_size": 64,
        }
    },
    "bank": {"stamp_size": 64, "procedural": {"n_sources": 24}},
    "render": {"supersampling": 2},
    "generate": {"n_partitions": 2, "row_group_rows": 16},
}


@dataclass(frozen=True)
class World:
    """The tiny world: config, survey root, task table folder, bank file, tasks as dicts."""

    cfg: Config
    survey: Path
    tasks_dir: Path
    bank: Path
    tasks: list

    def tasks_of(self, brickname: str) -> list:
        return [t for t in self.tasks if t["brickname"] == brickname]

    @property
    def bricknames(self) -> list[str]:
        return sorted({t["brickname"] for t in self.tasks})


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    import pyarrow.parquet as pq

    from darkhaloscope.sources.commands import build_bank
    from darkhaloscope.survey.build_survey import build_survey
    from darkhaloscope.survey.tasks import build_tasks

    cfg = config_from_dict(REL_CONFIG)
    base = tmp_path_factory.mktemp("rel_world")
    survey, tasks_dir, bank = base / "survey", base / "tasks", base / "bank.h5"
    build_survey(cfg, survey)
    build_tasks(cfg, str(survey / "south" / "tractor"), str(tasks_dir), bricks_table=str(survey / "survey-bricks.fits.gz"))
    survey = survey / "south"  # the region folder: the brick reader's root
    build_bank(cfg, bank)
    tasks = pq.read_table(str(tasks_dir)).to_pylist()
    assert len({t["brickname"] for t in tasks}) == 2 and {t["role"] for t in tasks} == {"control", "injection"}
    return World(cfg, survey, tasks_dir, bank, tasks)


def copy_survey(world: World, dest: Path) -> Path:
    """A private copy of the survey to damage (the whole release; returns its region folder)."""
    shutil.copytree(world.survey.parent, dest)
    return dest / world.survey.name


def coadd_file(root: Path, brickname: str, kind: str, band: str | None = None) -> Path:
    from darkhaloscope.survey.bricks import coadd_relpath

    return Path(root) / coadd_relpath(brickname, kind, band)


def assert_no_nan_numbers(table: pa.Table) -> None:
    """No NaN or inf in any floating-point column: missing numbers are null."""
    for name in table.column_names:
        col = table[name]
        if pa.types.is_floating(col.type):
            bad = pc.sum(pc.invert(pc.is_finite(col.fill_null(0.0)))).as_py() or 0
            assert bad == 0, f"column {name} holds {bad} NaN/inf values"


def assert_row_numbers_finite(row: dict) -> None:
    for k, v in row.items():
        if isinstance(v, float):
            assert math.isfinite(v), f"{k} = {v!r}"
        if isinstance(v, np.floating):
            raise AssertionError(f"{k} is a numpy scalar, not a Python number")
