"""Anchor sets built from the real known-lens catalogs in ../shared/data, checked against
independent counts (pandas substring counts, a scipy cKDTree friends-of-friends)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from darkhaloscope.errors import CatalogError, DataFileError
from darkhaloscope.ml import anchors as A


@pytest.fixture(scope="module")
def built(shared_data):
    cats = A.default_catalogs(shared_data)
    table, summary = A.build_anchors(cats)
    return cats, table, summary


@pytest.fixture(scope="module")
def raw(shared_data):
    lenscat = pd.read_csv(shared_data / "lenscat" / "catalog.csv")
    new = pd.read_csv(shared_data / "known_lenses" / "stein2021_new_lenses.tsv", sep="\t")
    known = pd.read_csv(shared_data / "known_lenses" / "stein2021_training_lenses.tsv", sep="\t")
    return lenscat, new, known


def test_counts_per_reference_match_independent_count(built, raw):
    _, _, summary = built
    lenscat, new, known = raw
    counts = summary["entries_per_reference"]
    refs = lenscat["ref"].fillna("")
    for ref in A.REFERENCES:
        pattern = "|".join(re.escape(i) for i in ref.ids)
        expected = int(refs.str.contains(pattern, regex=True).sum())
        if ref.key == "stein2021":
            expected += len(new)
        assert counts.get(ref.key, 0) == expected, ref.key
    assert counts["stein2021_known"] == len(known)
    # the papers the brief names are all present, with the sizes their rows imply
    for key in ("huang2020", "huang2021", "storfer2022", "jacobs2019", "rojas2021", "zaborowski2022", "stein2021", "agel2022", "slacs", "bells"):
        assert counts[key] > 0, key
    assert summary["n_entries"] == len(lenscat) + len(new) + len(known)


def test_merge_equals_independent_friends_of_friends(built, raw):
    _, table, summary = built
    lenscat, new, known = raw
    ra = np.radians(np.concatenate([lenscat["RA [deg]"], new["ra"], known["ra"]]) % 360)
    dec = np.radians(np.concatenate([lenscat["DEC [deg]"], new["dec"], known["dec"]]))
    xyz = np.c_[np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)]
    chord = 2 * np.sin(np.radians(2.0 / 3600) / 2)
    pairs = cKDTree(xyz).query_pairs(chord, output_type="ndarray")
    n = len(xyz)
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    n_groups, _ = connected_components(g, directed=False)
    assert summary["n_anchors"] == len(table) == n_groups
    assert table["n_merged"].sum() == n
    # no two anchors closer than 2" (merging is complete)
    ra2, dec2 = np.radians(table["ra"]), np.radians(table["dec"])
    xyz2 = np.c_[np.cos(dec2) * np.cos(ra2), np.cos(dec2) * np.sin(ra2), np.sin(dec2)]
    assert len(cKDTree(xyz2).query_pairs(chord * 0.999)) == 0


def test_sets_grades_and_footprint(built):
    _, table, summary = built
    # a SLACS lens (Bolton 2008 grade A) lands in the slacs_bells set, not the primary one
    row = table[table["name"] == "SDSSJ0008-0004"].iloc[0]
    assert row["set_slacs_bells"] and row["grade"] == "A" and "slacs" in row["references"]
    # every primary anchor cites a primary discovery paper
    primary_keys = {r.key for r in A.REFERENCES if r.anchor_set == A.SET_GROUND}
    prim = table[table["set_ground"]]
    assert len(prim) > 5000
    assert all(set(r.split(";")) & primary_keys for r in prim["references"])
    assert (prim["lens_type"] != "cluster").all()
    # Stein 2021 new lenses present in both lenscat and the TSV are merged into one anchor
    both = table[table["catalogs"].str.contains("catalog.csv") & table["catalogs"].str.contains("stein2021_new")]
    assert len(both) > 1000
    # DR10 footprint = the declination cut, documented
    np.testing.assert_array_equal(table["in_dr10"], table["dec"] <= A.DEC_MAX_DR10)
    assert summary["dr10_dec_range_deg"] == [A.DEC_MIN_DR10, 32.375]
    # deterministic order and ids
    assert table["anchor_id"].is_unique
    assert (np.diff(table["ra"]) >= 0).all()


def test_generic_csv_and_errors(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text(
        "ra,dec,name,grade,reference,theta_e\n"
        "150.0,2.0,L1,A,Huang et al. (2020) - arXiv:1906.00970,1.2\n"
        "150.0003,2.0,L1b,B,my survey,\n"  # 1.08" away: merged with L1
        "40.0,40.0,L2,C,my survey,0.9\n"
    )
    table, summary = A.build_anchors([p])
    assert len(table) == 2
    l1 = table[table["name"] == "L1"].iloc[0]
    assert l1["set_ground"] and l1["grade"] == "A" and l1["theta_e"] == pytest.approx(1.2)
    assert l1["references"] == "huang2020;my survey" and l1["n_merged"] == 2
    l2 = table[table["name"] == "L2"].iloc[0]
    assert l2["anchor_set"] == "other" and not l2["in_dr10"]

    bad = tmp_path / "bad.csv"
    bad.write_text("ra,dec,name,grade,reference\n1,2,a,A,x\n3,95,b,A,x\n")
    with pytest.raises(CatalogError) as err:
        A.build_anchors([bad])
    assert err.value.row == 1 and "bad.csv" in str(err.value)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("ra,dec,name\n1,2,a\n")
    with pytest.raises(CatalogError, match="reference"):
        A.read_catalog(nocol)
    with pytest.raises(DataFileError):
        A.read_catalog(tmp_path / "missing.csv")


def test_write_read_roundtrip(built, tmp_path):
    _, table, _ = built
    out = A.write_anchors(table.head(50), tmp_path / "a.parquet")
    back = A.read_anchors(out)
    pd.testing.assert_frame_equal(back, table.head(50).reset_index(drop=True))


def test_free_text_citations_map_to_known_papers_and_empty_selection_is_named(tmp_path):
    from darkhaloscope.cli import main as cli_main
    from darkhaloscope.ml.anchors import parse_references, reference_set

    # a user CSV cites papers in words, not by arXiv id / DOI / bibcode
    assert parse_references("Huang et al. 2020") == ["huang2020"]
    assert parse_references("Jacobs et al. (2019)") == ["jacobs2019"]
    assert reference_set(parse_references("Storfer et al. 2022")[0]) == "ground"
    assert parse_references("Nobody et al. 2020") == ["Nobody et al. 2020"]  # unknown stays itself
    assert reference_set("Nobody et al. 2020") == "other"

    csv = tmp_path / "mine.csv"
    csv.write_text("name,ra,dec,grade,reference\nL1,150.1,10.1,A,Nobody et al. 2020\n")
    assert cli_main(["anchors", "build", "--catalog", str(csv), "--out", str(tmp_path / "a.parquet")]) == 0
    # only an 'other' anchor: the default sets select nothing -> exit 1 with a message, no traceback
    rc = cli_main(["anchors", "cutouts", "--anchors", str(tmp_path / "a.parquet"), "--out", str(tmp_path / "s"),
                   "--bricks", str(tmp_path)])
    assert rc == 1
    assert not (tmp_path / "s" / "anchor_stamps").exists()
