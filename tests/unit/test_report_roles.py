"""Per-role report: counts and brightness per role, and the shortcut gates run for every
negative role against the injections: honest ring rows pass, ring rows whose metadata differ
from the injections' fail their own gate while the control gate stays green."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_report_fixture import make_rows, write_dataset  # noqa: E402

from darkhaloscope.config import Config  # noqa: E402
from darkhaloscope.report.build import build_report  # noqa: E402

N = 420


def _with_rings(variant_depth: float = 1.0) -> list[dict]:
    """The honest fixture with every third injection relabelled ``ring`` (a painted non-lens:
    same hosts, same painted light, so only morphology could separate it); ``variant_depth``
    scales the ring rows' psfdepth metadata (a leak a finder could learn instead)."""
    rows = make_rows(N, "honest", seed=7)  # deterministic; AUC 0.47 here (0.62 on seed 11: 90 rings are few)
    k = 0
    for r in rows:
        if r["role"] == "injection":
            k += 1
            if k % 3 == 0:
                r["role"] = "ring"
                for b in "grz":
                    r[f"psfdepth_{b}"] = r[f"psfdepth_{b}"] * variant_depth
                for c in ("theta_e", "lens_e1", "lens_e2", "shear_g1", "shear_g2", "lens_x", "lens_y", "magnification"):
                    r.pop(c, None)
    return rows


def test_role_tables_and_honest_ring_gates_pass(tmp_path):
    cfg = Config()
    rows = _with_rings()
    result = build_report(str(write_dataset(tmp_path / "ds", rows)), cfg, make_figures=False)
    roles = result.data["roles"]
    for split in ("train", "val", "test"):
        want = {r: sum(1 for x in rows if x["split"] == split and x["role"] == r) for r in ("control", "injection", "ring")}
        assert roles["counts"][split] == want
    b = roles["brightness"]
    assert set(b) == {"injection", "ring"} and b["ring"]["arc_flux_r"]["n"] > 50
    g = result.data["gates"]
    for name in ("shortcuts.nuisance_classifier.ring", "shortcuts.central_brightness.ring", "shortcuts.nuisance_classifier"):
        assert g[name]["status"] == "pass", (name, g[name]["message"])
    assert "ring rows" in g["shortcuts.nuisance_classifier.ring"]["message"]


def test_ring_rows_with_leaky_metadata_fail_their_gate(tmp_path):
    result = build_report(str(write_dataset(tmp_path / "ds", _with_rings(variant_depth=2.0))), Config(), make_figures=False)
    g = result.data["gates"]
    assert g["shortcuts.nuisance_classifier.ring"]["status"] == "fail", g["shortcuts.nuisance_classifier.ring"]["message"]
    assert "psfdepth" in g["shortcuts.nuisance_classifier.ring"]["message"]
    assert g["shortcuts.nuisance_classifier"]["status"] == "pass"
    assert not result.data["passed"]
