"""Deliberately broken datasets: the matching gate fails, says why, and the command exits
non-zero naming it (unless --no-fail); honest gates on the same data stay green."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_report_fixture import make_dataset, write_dataset  # noqa: E402

from darkhaloscope import cli  # noqa: E402
from darkhaloscope.config import Config  # noqa: E402
from darkhaloscope.errors import DatasetError  # noqa: E402
from darkhaloscope.report.build import build_report  # noqa: E402

N = 300


def _statuses(result) -> dict:
    return {k: g["status"] for k, g in result.data["gates"].items()}


def test_brighter_injection_hosts_fail_the_central_brightness_gate(tmp_path):
    root = make_dataset(tmp_path / "ds", "bright_hosts", n=N)
    result = build_report(str(root), Config(), make_figures=False)
    g = result.data["gates"]["shortcuts.central_brightness"]
    assert g["status"] == "fail", g["message"]
    assert "host central brightness" in g["message"]
    ratio = g["details"]["per_band"]["r"]["median_ratio"]
    assert 2.0 < ratio < 4.5  # hosts made 3x brighter
    # host catalog fluxes are nuisance features: the classifier sees it too, and names them
    clf = result.data["gates"]["shortcuts.nuisance_classifier"]
    assert clf["status"] == "fail" and "flux_" in clf["message"]
    st = _statuses(result)
    assert st["leakage.galaxy_id"] == st["leakage.cosmos_index"] == st["physics.snr_recomputed"] == "pass"


def test_noisier_injections_fail_the_nuisance_classifier(tmp_path):
    root = make_dataset(tmp_path / "ds", "noisy_injections", n=N)
    result = build_report(str(root), Config(), make_figures=False)
    g = result.data["gates"]["shortcuts.nuisance_classifier"]
    assert g["status"] == "fail"
    assert g["value"] > 0.9 and "separable" in g["message"]
    top = [name for name, _ in g["details"]["top_features"][:3]]
    assert any(n.startswith(("outer_sigma_", "noise_ratio_")) for n in top), top
    assert _statuses(result)["shortcuts.central_brightness"] == "pass"


def test_leaks_and_tampered_snr_fail_their_gates_and_the_cli(tmp_path, capsys):
    root = make_dataset(tmp_path / "ds", "source_reuse+galaxy_reuse+tampered_snr", n=N)
    result = build_report(str(root), Config(), make_figures=False)
    gates = result.data["gates"]
    assert _statuses(result) == {
        "physics.snr_recomputed": "fail", "physics.rerender": "skipped", "leakage.galaxy_id": "fail",
        "leakage.cosmos_index": "fail", "shortcuts.nuisance_classifier": "pass", "shortcuts.central_brightness": "pass",
        "acceptance.criteria": "skipped",
    }
    assert gates["leakage.cosmos_index"]["details"]["overlaps"]["train|test"] == 1
    assert "train & test" in gates["leakage.cosmos_index"]["message"]
    assert "train & test: 1 galaxy_id" in gates["leakage.galaxy_id"]["message"]
    assert gates["physics.snr_recomputed"]["details"]["n_mismatch"] == 3
    assert "task_id=" in gates["physics.snr_recomputed"]["message"]

    out = tmp_path / "rep"
    rc = cli.main(["report", "--dataset", str(root), "--out", str(out), "--no-figures"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "gate leakage.cosmos_index FAILED" in err and "gate_leakage.png" in err
    assert "gate physics.snr_recomputed FAILED" in err
    assert json.loads((out / "report.json").read_text())["passed"] is False
    assert cli.main(["report", "--dataset", str(root), "--out", str(out), "--no-figures", "--no-fail"]) == 0


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="no split="):
        build_report(str(tmp_path), Config())
    from test_report_fixture import make_rows

    root = write_dataset(tmp_path / "ds", make_rows(40, "honest"))
    (root / "_manifest.json").unlink()
    from darkhaloscope.report.source import config_from_manifest, read_manifest_if_any

    with pytest.raises(DatasetError, match="no --config"):
        config_from_manifest(read_manifest_if_any(str(root), None), str(root))
    assert cli.main(["report", "--dataset", str(root), "--no-figures"]) == 1  # the CLI turns it into exit 1
    import pyarrow as pa
    import pyarrow.parquet as pq

    bad = tmp_path / "bad" / "split=train"
    bad.mkdir(parents=True)
    pq.write_table(pa.table({"task_id": [1]}), bad / "part-00000.parquet")
    with pytest.raises(DatasetError, match="lacks column") as exc:
        build_report(str(tmp_path / "bad"), Config())
    assert exc.value.field == "galaxy_id"
