"""`darkhaloscope emr plan`: the printed figures follow from the benchmark numbers.

The expected values are computed here, independently, from the formula documented in
emr/README.md and darkhaloscope/emr/sizing.py, with the cluster of configs/emr-dr10.yaml.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from darkhaloscope.cli import main as cli_main
from darkhaloscope.errors import DataFileError

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "emr-dr10.yaml"
SEED_STAMPS = 11_751_600


def _expected(n, c_ms, b, eff):
    # configs/emr-dr10.yaml: 10 core + 24 spot m5.2xlarge, 8 vCPU, 4-core executors, 12 min start-up
    instances = 10 + 24
    executors = instances * (8 // 4) - 1  # one executor's room goes to the cluster-mode driver
    slots = executors * 4
    work_h = n * c_ms / 1000.0 / 3600.0
    wall_h = 12.0 / 60.0 + work_h / (slots * eff)
    ec2 = wall_h * (10 * 0.384 + 24 * 0.384 * (1 - 0.6) + 0.192)
    fee = wall_h * 0.25 * (34 * 0.384 + 0.192)
    partitions = min(max(math.ceil(n * b / 128e6), 2 * slots), n)
    return {"slots": slots, "work": work_h, "wall": wall_h, "cost": ec2 + fee, "partitions": partitions,
            "output_gb": n * b / 1e9}


def _plan(capsys, *args):
    assert cli_main(["emr", "plan", "--config", str(CONFIG), *args]) == 0
    return capsys.readouterr().out


def test_plan_for_seed_stamps_follows_from_bench(tmp_path, capsys):
    bench = tmp_path / "results.json"
    c_ms, b = 137.5, 38_500.0
    bench.write_text(json.dumps({"end_to_end_core_ms_per_stamp": c_ms, "bytes_per_stamp": b, "other_ms": 3.0}))
    exp = _expected(SEED_STAMPS, c_ms, b, eff=0.8)

    got = json.loads(_plan(capsys, "--tasks", str(SEED_STAMPS), "--bench", str(bench), "--json"))
    assert got["slots"] == exp["slots"] == 268
    assert got["partitions"] == exp["partitions"]
    assert got["work_vcpu_hours"] == pytest.approx(exp["work"], rel=1e-12)
    assert got["wall_hours"] == pytest.approx(exp["wall"], rel=1e-12)
    assert got["cost_usd"] == pytest.approx(exp["cost"], rel=1e-12)
    assert got["output_gb"] == pytest.approx(exp["output_gb"], rel=1e-12)

    text = _plan(capsys, "--tasks", str(SEED_STAMPS), "--bench", str(bench))
    assert f"{exp['work']:,.1f} vCPU-hours" in text
    assert f"expected wall time : {exp['wall']:.2f} h" in text
    assert f"${exp['cost']:,.2f}" in text
    assert f"partitions         : {exp['partitions']:,}" in text
    assert "end_to_end_core_ms_per_stamp" in text


def test_plan_default_reproduces_the_seed_run(tmp_path, capsys):
    """Without a bench file the default is the seeds' own figure: 680 vCPU-h, ~2.5 h on 34 nodes."""
    got = json.loads(_plan(capsys, "--tasks", str(SEED_STAMPS), "--bench", str(tmp_path / "absent.json"), "--json"))
    assert got["work_vcpu_hours"] == pytest.approx(680.0, rel=1e-12)
    assert got["output_gb"] == pytest.approx(490.0, rel=1e-12)
    exp = _expected(SEED_STAMPS, 680 * 3.6e6 / SEED_STAMPS, 490e9 / SEED_STAMPS, eff=1.0)
    assert got["wall_hours"] == pytest.approx(exp["wall"], rel=1e-12)
    # the seeds: 680 vCPU-h on 272 vCPU = 2.5 h; we lose one executor to the driver and add start-up
    assert 2.5 < got["wall_hours"] < 2.5 + 0.2 + 0.1
    assert "default: the seeds'" in _plan(capsys, "--tasks", "1000", "--bench", str(tmp_path / "absent.json"))


def test_plan_scales_linearly_in_stamps(tmp_path, capsys):
    bench = tmp_path / "results.json"
    bench.write_text(json.dumps({"end_to_end_core_ms_per_stamp": 100.0}))
    a = json.loads(_plan(capsys, "--tasks", "1000000", "--bench", str(bench), "--json"))
    b = json.loads(_plan(capsys, "--tasks", "2000000", "--bench", str(bench), "--json"))
    assert b["work_vcpu_hours"] == pytest.approx(2 * a["work_vcpu_hours"], rel=1e-12)
    assert b["wall_hours"] - b["startup_hours"] == pytest.approx(2 * (a["wall_hours"] - a["startup_hours"]), rel=1e-12)


@pytest.mark.parametrize("content, field", [
    ('{"end_to_end_core_ms_per_stamp": -1}', "end_to_end_core_ms_per_stamp"),
    ('{"bytes_per_stamp": "big"}', "bytes_per_stamp"),
])
def test_bad_bench_figure_names_file_and_field(tmp_path, content, field):
    from darkhaloscope.emr.sizing import read_bench

    bench = tmp_path / "results.json"
    bench.write_text(content)
    with pytest.raises(DataFileError) as err:
        read_bench(bench)
    assert err.value.field == field and str(bench) in str(err.value)


def test_bench_not_json_is_a_clear_error(tmp_path):
    from darkhaloscope.emr.sizing import read_bench

    bench = tmp_path / "results.json"
    bench.write_text("{not json")
    with pytest.raises(DataFileError, match="results.json"):
        read_bench(bench)


def test_plan_sizes_stage_and_generate_from_hosts(tmp_path, capsys):
    """configs/emr-dr10.yaml stages then generates from the host table: both steps are sized from
    their own bench figures, and the run pays one start-up."""
    bench = tmp_path / "results.json"
    figures = {"end_to_end_core_ms_per_stamp": 137.5, "bytes_per_stamp": 38_500.0, "stage_core_ms_per_stamp": 7.0,
               "host_table_bytes_per_stamp": 21_000.0, "generate_from_hosts_core_ms_per_stamp": 8.0}
    bench.write_text(json.dumps(figures))
    gen = _expected(SEED_STAMPS, 8.0, 38_500.0, eff=0.8)
    stage = _expected(SEED_STAMPS, 7.0, 21_000.0, eff=0.8)
    got = json.loads(_plan(capsys, "--tasks", str(SEED_STAMPS), "--bench", str(bench), "--json"))
    assert got["core_ms_per_stamp"] == 8.0 and "generate_from_hosts" in got["cost_source"]
    assert got["work_vcpu_hours"] == pytest.approx(gen["work"], rel=1e-12)
    assert got["stage"]["work_vcpu_hours"] == pytest.approx(stage["work"], rel=1e-12)
    assert got["stage"]["output_gb"] == pytest.approx(stage["output_gb"], rel=1e-12)
    assert got["total_wall_hours"] == pytest.approx(gen["wall"] + stage["wall"] - 12.0 / 60.0, rel=1e-12)
    assert got["total_cost_usd"] == pytest.approx(gen["cost"] * got["total_wall_hours"] / gen["wall"], rel=1e-9)
    text = _plan(capsys, "--tasks", str(SEED_STAMPS), "--bench", str(bench))
    assert "stage step" in text and f"{got['total_wall_hours']:.2f} h" in text


def test_plan_prefers_the_dr10_figure(tmp_path, capsys):
    """dr10_end_to_end_core_ms_per_stamp (DR10 density and file format) wins over the demo figure."""
    bench = tmp_path / "results.json"
    bench.write_text(json.dumps({"end_to_end_core_ms_per_stamp": 100.0, "dr10_end_to_end_core_ms_per_stamp": 40.0, "bytes_per_stamp": 38_500.0}))
    got = json.loads(_plan(capsys, "--tasks", str(SEED_STAMPS), "--bench", str(bench), "--json"))
    exp = _expected(SEED_STAMPS, 40.0, 38_500.0, eff=0.8)
    assert got["core_ms_per_stamp"] == 40.0 and got["cost_source"].endswith("dr10_end_to_end_core_ms_per_stamp")
    assert got["wall_hours"] == pytest.approx(exp["wall"], rel=1e-12)
