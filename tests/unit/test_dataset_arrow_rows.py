"""Arrow tables from row dicts (dataset/arrow_rows.py) against pyarrow's own conversion, the
independent reference: the same arrays value for value and null for null, so shards keep their bytes."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from darkhaloscope.config import ROLE_LABELS
from darkhaloscope.dataset.arrow_rows import BlobScratch, binary_array, table_from_rows
from darkhaloscope.dataset.schema import STAMP_SCHEMA, rows_to_table


@pytest.mark.parametrize("values", [
    [],
    [None, None],
    [b"", b"a", None, b"\x00" * 1000, None, b"xyz"],
    [bytes(range(256)) * (i % 5) for i in range(37)],
    [None] + [np.random.default_rng(1).bytes(300 + i) for i in range(20)] + [None],
])
def test_binary_array_equals_pyarrows_conversion(values):
    got = binary_array(values)
    got.validate(full=True)
    want = pa.array(values, pa.binary())
    assert got.type == pa.binary() and got.null_count == want.null_count
    assert got.equals(want)
    assert got.to_pylist() == values


def test_other_bytes_like_values_take_pyarrows_conversion():
    values = [bytearray(b"ab"), memoryview(b"cd"), None]
    assert binary_array(values).to_pylist() == [b"ab", b"cd", None]
    with pytest.raises((pa.ArrowTypeError, pa.ArrowInvalid, TypeError)):
        binary_array([b"ok", 3])  # pyarrow's error, not a silently wrong blob


def _rows(n: int) -> list[dict]:
    rng = np.random.default_rng(4)
    return [{
        "task_id": i, "galaxy_id": f"g{i}", "brickname": "1500p100", "ra": 150.0 + i, "dec": -1.5, "split": "train",
        "role": ("control", "injection", "unlensed")[i % 3], "stamp_npz": rng.bytes(50 + i) if i % 4 else None,
        "arc_npz": rng.bytes(20) if i % 3 == 1 else None, "cutout_ok": bool(i % 4), "theta_e": np.float32(0.5 * i) if i % 3 == 1 else None,
        "n_tries": i % 7, "seed": 7, "config_hash": "h", "code_version": "v",
    } for i in range(n)]


def test_stamp_table_equals_pa_table_of_lists_and_writes_the_same_bytes():
    rows = _rows(29)
    columns = {f.name: [r.get(f.name) for r in rows] for f in STAMP_SCHEMA}
    columns["label"] = [ROLE_LABELS[r["role"]] for r in rows]  # the labels rows_to_table fills in
    want = pa.table(columns, schema=STAMP_SCHEMA)
    got = rows_to_table(rows)
    assert got.equals(want, check_metadata=True)

    def parquet(table):
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        return sink.getvalue()

    assert parquet(got) == parquet(want)


def test_other_schema_missing_keys_are_null():
    schema = pa.schema([pa.field("a", pa.int64()), pa.field("blob", pa.binary()), pa.field("s", pa.string())])
    table = table_from_rows([{"a": 1, "blob": b"x"}, {"s": "only"}], schema)
    assert table.schema == schema
    assert table.to_pylist() == [{"a": 1, "blob": b"x", "s": None}, {"a": None, "blob": None, "s": "only"}]


def test_scratch_is_reused_and_never_overwrites_a_table_still_alive():
    rng = np.random.default_rng(8)
    scratch = BlobScratch()
    first = [rng.bytes(1000) for _ in range(6)]
    a = binary_array(first, scratch, "stamp_npz")
    assert a.to_pylist() == first
    del a
    scratch.release()
    held = scratch.nbytes
    second = [rng.bytes(900) for _ in range(6)] + [None]
    kept = binary_array(second, scratch, "stamp_npz")  # same memory as the first, smaller
    assert scratch.nbytes == held and kept.to_pylist() == second
    scratch.release()  # `kept` is still alive: its memory leaves the scratch
    third = [rng.bytes(900) for _ in range(5)]  # would fit in the memory `kept` uses
    assert binary_array(third, scratch, "stamp_npz").to_pylist() == third
    assert kept.to_pylist() == second  # untouched by the third
