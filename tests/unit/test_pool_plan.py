"""The multiprocessing runner's work units (spark/pool_plan.py): a task file whose rows all
belong to one unit is left to that unit's worker, a mixed file's rows are read by the parent and
shipped; units per split only when asked; largest (role-weighted) first."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from darkhaloscope.spark.pool_plan import PAINTED_WEIGHT, plan_units
from darkhaloscope.spark.tasks_input import partition_of, read_task_file

N = 3


def _bricks_by_partition() -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for i in range(200):
        name = f"{1500 + i:04d}p100"
        out.setdefault(partition_of(name, N), []).append(name)
    return out


def _write(path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def _task(i: int, brick: str, split: str | None, role: str) -> dict:
    row = {"task_id": i, "galaxy_id": f"g{i}", "brickname": brick, "ra": 150.0, "dec": 10.0, "role": role}
    if split is not None:
        row["split"] = split
    return row


def test_aligned_files_go_to_workers_mixed_files_are_shipped(tmp_path):
    bricks = _bricks_by_partition()
    p0, p1 = sorted(bricks)[:2]
    # host-table layout: split from the hive folder, one partition per file
    aligned = _write(tmp_path / "split=train" / "part-00000.parquet",
                     [_task(1, bricks[p0][0], None, "injection"), _task(2, bricks[p0][1], None, "control")])
    small = _write(tmp_path / "split=val" / "part-00000.parquet", [_task(3, bricks[p0][0], None, "control")])
    mixed = _write(tmp_path / "mixed" / "tasks.parquet",
                   [_task(4, bricks[p0][0], "test", "ring"), _task(5, bricks[p1][0], "test", "control"), _task(6, bricks[p1][1], "val", "control")])
    units = plan_units([aligned, small, mixed], N, None, True, by_split=True)
    by_key = {u.key: u for u in units}
    assert by_key[(p0, "train")].files == [aligned] and by_key[(p0, "train")].rows == []
    assert by_key[(p0, "train")].weight == PAINTED_WEIGHT + 1.0
    assert by_key[(p0, "val")].files == [small]
    assert [r["task_id"] for r in by_key[(p0, "test")].rows] == [4]
    assert [r["task_id"] for r in by_key[(p1, "test")].rows] == [5]
    assert [r["task_id"] for r in by_key[(p1, "val")].rows] == [6]
    assert by_key[(p0, "test")].rows == [r for r in read_task_file(mixed) if r["task_id"] == 4]  # what the worker would have read
    weights = [u.weight for u in units]
    assert weights == sorted(weights, reverse=True)  # largest first
    assert sum(len(u.rows) + sum(len(read_task_file(f)) for f in u.files) for u in units) == 6  # every task exactly once

    # per partition (generate from bricks: a partition's splits share its bricks): one unit per partition
    units = plan_units([aligned, small, mixed], N, None, True, by_split=False)
    assert sorted(u.key for u in units) == sorted({(p0, ""), (p1, "")})
    u0 = next(u for u in units if u.partition == p0)
    assert u0.files == [aligned, small] and [r["task_id"] for r in u0.rows] == [4]


def test_a_host_table_staged_with_the_same_partition_count_is_planned_from_its_manifest(tmp_path):
    import json

    import pytest

    from darkhaloscope.errors import CatalogError
    from darkhaloscope.spark.pool_plan import Unit, host_table_units, run_unit

    bricks = _bricks_by_partition()
    p0, p1 = sorted(bricks)[:2]
    a = _write(tmp_path / "split=train" / f"part-{p0:05d}.parquet", [_task(1, bricks[p0][0], None, "control")])
    b = _write(tmp_path / "split=val" / f"part-{p1:05d}.parquet", [_task(2, bricks[p1][0], None, "control"), _task(3, bricks[p1][1], None, "ring")])
    shards = [{"split": "train", "partition": p0, "path": f"split=train/part-{p0:05d}.parquet", "rows": 1},
              {"split": "val", "partition": p1, "path": f"split=val/part-{p1:05d}.parquet", "rows": 2}]
    (tmp_path / "_manifest.json").write_text(json.dumps({"n_partitions": N, "shards": shards}))
    units = host_table_units(str(tmp_path), [a, b], N, None)
    assert [(u.key, u.files, u.weight) for u in units] == [((p1, "val"), [b], 2.0), ((p0, "train"), [a], 1.0)]
    assert host_table_units(str(tmp_path), [a, b], N + 1, None) is None  # another partition count: read the files
    assert host_table_units(str(tmp_path), [a], N, None) is None  # files and manifest disagree
    assert host_table_units(str(tmp_path / "none"), [a], N, None) is None  # no manifest

    class Ctx:  # run_unit checks the rows before any work: a row of another partition is an error naming the file
        class cfg:
            class generate:
                n_partitions = N
        options = None

    with pytest.raises(CatalogError, match="not in partition"):
        run_unit(Unit(p0, "val", [b]), Ctx, True)
