"""The training data stream: rows, labels, filters, shuffles, workers, local disk vs S3."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from darkhaloscope.config import Config, replace
from darkhaloscope.dataset.schema import rows_to_table
from darkhaloscope.dataset.stamp import decode_stamp
from darkhaloscope.dataset.storage import StorageOptions
from darkhaloscope.errors import DatasetError, SecurityError
from darkhaloscope.ml.data import StampStream, decode_image, scan_split
from darkhaloscope.ml.normalize import outer_mad
from darkhaloscope.ml.toydata import make_rows, write_toy_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return write_toy_dataset(tmp_path_factory.mktemp("toy"), {"train": 80, "val": 40}, seed=3, shards=2, row_group_rows=16)


def _tcfg(**kw):
    return replace(Config(), **{f"train.{k}": v for k, v in {"batch_size": 16, "num_workers": 0, **kw}.items()}).train


def _all(ds, epoch=0):
    ds.set_epoch(epoch)
    batches = list(ds)
    return {k: torch.cat([b[k] for b in batches]).numpy() for k in batches[0]}


def test_rows_labels_and_metadata_standardisation(toy):
    tcfg = _tcfg()
    info = scan_split(str(toy), "train", tcfg, seed=1)
    assert (info.n_rows, info.n_injections, info.n_controls, info.n_skipped_cutout) == (80, 40, 40, 4)
    table = pq.read_table(toy / "split=train").to_pandas()
    ok = table[table.cutout_ok]
    np.testing.assert_allclose(info.meta_mean, ok[["psf_fwhm_r", "psfdepth_r"]].mean().to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(info.meta_std, ok[["psf_fwhm_r", "psfdepth_r"]].std(ddof=0).to_numpy(), rtol=1e-5)
    got = _all(StampStream(str(toy), "train", tcfg, info.meta_stats, seed=1, shuffle=True))
    assert sorted(got["task_id"]) == sorted(ok.task_id)  # failed cutouts skipped, nothing lost or repeated
    by_id = ok.set_index("task_id")
    np.testing.assert_array_equal(got["label"], (by_id.loc[got["task_id"], "role"] == "injection").to_numpy())
    expected_meta = (by_id.loc[got["task_id"], ["psf_fwhm_r", "psfdepth_r"]].to_numpy() - info.meta_mean) / info.meta_std
    np.testing.assert_allclose(got["meta"], expected_meta, rtol=1e-4, atol=1e-5)
    i = 5
    raw = decode_stamp(by_id.loc[got["task_id"][i], "stamp_npz"])["image"]
    np.testing.assert_array_equal(got["image"][i], outer_mad(raw))


def test_shuffle_is_deterministic_per_epoch(toy):
    tcfg = _tcfg()
    info = scan_split(str(toy), "train", tcfg)
    ds = StampStream(str(toy), "train", tcfg, info.meta_stats, seed=1)
    a, b, c = _all(ds, 0)["task_id"], _all(ds, 0)["task_id"], _all(ds, 1)["task_id"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and sorted(a) == sorted(c)
    plain = _all(StampStream(str(toy), "train", tcfg, info.meta_stats, seed=1, shuffle=False))["task_id"]
    assert not np.array_equal(a, plain)


def test_filters_and_row_cap(toy):
    tcfg = _tcfg(arc_snr_min=10.0, theta_e_over_psf_min=0.8)
    info = scan_split(str(toy), "train", tcfg)
    got = _all(StampStream(str(toy), "train", tcfg, info.meta_stats, extra_columns=["arc_snr", "theta_e"]))
    table = pq.read_table(toy / "split=train").to_pandas().set_index("task_id")
    inj = got["label"] == 1
    assert 0 < inj.sum() == info.n_injections < 40 and (~inj).sum() == 40  # controls untouched
    assert np.all(got["arc_snr"][inj] >= 10.0)
    psf = table.loc[got["task_id"][inj], "psf_fwhm_r"].to_numpy()
    assert np.all(got["theta_e"][inj] / psf >= 0.8 - 1e-6)
    capped = _tcfg(max_rows_per_split=25)
    info = scan_split(str(toy), "train", capped, seed=9)
    ds = StampStream(str(toy), "train", capped, info.meta_stats, seed=9, hash_max=info.hash_max)
    ids0, ids1 = _all(ds, 0)["task_id"], _all(ds, 1)["task_id"]
    assert info.n_rows == len(ids0) == 25 and set(ids0) == set(ids1)  # the same rows each epoch


def test_multiworker_loader_reads_each_row_once(toy):
    tcfg = _tcfg(num_workers=2)
    info = scan_split(str(toy), "train", tcfg)
    ds = StampStream(str(toy), "train", tcfg, info.meta_stats)
    assert len(ds.units) == 6  # 2 shards x 3 row groups of <= 16 rows
    assert set(ds.worker_units(0, 2)).isdisjoint(ds.worker_units(1, 2))
    ids = torch.cat([b["task_id"] for b in DataLoader(ds, batch_size=None, num_workers=2)]).numpy()
    assert sorted(ids) == sorted(_all(ds)["task_id"]) and len(set(ids)) == 80


def test_local_and_s3_give_the_same_rows(toy, s3_bucket):
    import boto3

    endpoint, bucket = s3_bucket
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for f in sorted(toy.rglob("*.parquet")):
        s3.upload_file(str(f), bucket, f"ds/{f.relative_to(toy).as_posix()}")
    opts = StorageOptions(endpoint=endpoint)
    tcfg = _tcfg(max_rows_per_split=30)
    li, si = scan_split(str(toy), "val", tcfg, seed=2), scan_split(f"s3://{bucket}/ds", "val", tcfg, seed=2, options=opts)
    assert li.to_dict() == si.to_dict()
    local = _all(StampStream(str(toy), "val", tcfg, li.meta_stats, seed=2, hash_max=li.hash_max))
    remote = _all(StampStream(f"s3://{bucket}/ds", "val", tcfg, si.meta_stats, seed=2, hash_max=si.hash_max, options=opts))
    for key in local:
        np.testing.assert_array_equal(local[key], remote[key])


def test_bad_rows_fail_clearly(tmp_path):
    rows = make_rows("train", 6, seed=1)
    rows[3]["psfdepth_r"] = None
    (tmp_path / "split=train").mkdir()
    pq.write_table(rows_to_table(rows), tmp_path / "split=train" / "part-00000.parquet")
    with pytest.raises(DatasetError, match="psfdepth_r") as err:
        scan_split(str(tmp_path), "train", _tcfg())
    assert err.value.row == rows[3]["task_id"]
    with pytest.raises(DatasetError, match="no Parquet|cannot"):
        StampStream(str(tmp_path), "test", _tcfg(), {"features": []})
    buf = io.BytesIO()
    np.savez(buf, image=np.array([{"a": 1}], dtype=object))
    with pytest.raises(SecurityError):
        decode_image(buf.getvalue())
    blob = rows[0]["stamp_npz"]
    np.testing.assert_array_equal(decode_image(blob), decode_stamp(blob)["image"])


def _np_load_image(blob: bytes) -> np.ndarray:
    """Reference: np.load the members, then the stamp format's own decoding."""
    from darkhaloscope.dataset.stamp import _stamp_arrays

    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return _stamp_arrays({k: npz[k] for k in npz.files}, ("image",))["image"]


def _as_format_2(blob: bytes) -> bytes:
    """The same stamp re-encoded in format 2 (an NPZ), grids kept."""
    from darkhaloscope.dataset.stamp import decode_stamp_grids, encode_stamp

    a = decode_stamp(blob)
    return encode_stamp(a["image"], a["invvar"], a["maskbits"], grids=decode_stamp_grids(blob), stamp_format=2)


def test_fast_decode_equals_np_load_on_stamps_and_edge_cases():
    from darkhaloscope.dataset.stamp import (
        _member_views,
        decode_image_readonly,
        encode_npz,
        encode_stamp,
    )

    rows = make_rows("train", 8, seed=4)
    v3 = [r["stamp_npz"] for r in rows if r["stamp_npz"] is not None]
    for blob in v3:  # format 3 (written now): its own decoder, the same image as decode_stamp
        np.testing.assert_array_equal(decode_image(blob), decode_stamp(blob)["image"])
        np.testing.assert_array_equal(decode_image_readonly(blob), decode_stamp(blob)["image"])
    blobs = [_as_format_2(b) for b in v3]  # the NPZ fast path below is format 1 and 2's
    img = decode_stamp(blobs[0])["image"]
    nan = img.copy()
    nan[1, 5, 7] = np.nan
    nan[2, 0, :] = np.inf
    flat = np.full_like(img, 0.25)  # every pixel equal: MAD 0
    inv, mb = np.ones_like(img), np.zeros(img.shape[1:], np.int32)
    blobs += [encode_stamp(nan, inv, mb, stamp_format=2), encode_stamp(flat, inv, mb, stamp_format=2),
              encode_npz(image=img, invvar=inv, maskbits=mb)]  # last: format 1
    for blob in blobs:
        assert _member_views(blob) is not None  # the project's own blobs take the fast path
        ref = _np_load_image(blob)
        for got in (decode_image(blob), decode_image_readonly(blob)):
            assert got.dtype == ref.dtype and got.shape == ref.shape
            np.testing.assert_array_equal(got, ref)  # NaN == NaN here, bit-equal values
        assert decode_image(blob).flags.writeable
    # numpy's own writer (ZIP64 local headers), other dtypes/orders: same values whichever path runs
    for arr in (img, img.astype(">f4"), img.astype(np.float64), np.asfortranarray(img), img[:, :3, :3]):
        buf = io.BytesIO()
        np.savez(buf, invvar=inv, image=arr)
        np.testing.assert_array_equal(decode_image(buf.getvalue()), _np_load_image(buf.getvalue()))
    assert _member_views(encode_stamp(img, inv, mb, stamp_format=2)[:-1]) is None  # truncated: left to np.load


def test_fast_decode_refuses_what_np_load_refuses():
    from darkhaloscope.dataset.stamp import _member_views, encode_npz

    blob = _as_format_2(make_rows("train", 1, seed=5)[0]["stamp_npz"])
    corrupt = bytearray(blob)
    corrupt[2000] ^= 0xFF  # a byte of an image member: the CRC no longer matches
    assert _member_views(bytes(corrupt)) is None
    with pytest.raises(Exception) as fast_err:
        decode_image(bytes(corrupt))
    with pytest.raises(Exception) as ref_err:
        _np_load_image(bytes(corrupt))
    assert type(fast_err.value) is type(ref_err.value)
    pickled = encode_npz(image=np.array([{"a": 1}], dtype=object))
    assert _member_views(pickled) is None
    with pytest.raises(SecurityError):
        decode_image(pickled)
    with pytest.raises(KeyError):
        decode_image(encode_npz(arc=np.zeros((3, 4, 4), np.float32)))


def test_unaccepted_injections_and_matched_controls_are_dropped(tmp_path):
    rows = make_rows("train", 200, seed=4)
    rng = np.random.default_rng(0)
    for r in rows:
        if r["role"] == "injection":
            r["accepted"] = bool(rng.random() < (0.9 if r["psf_fwhm_r"] < np.median([x["psf_fwhm_r"] for x in rows]) else 0.5))
    (tmp_path / "split=train").mkdir()
    pq.write_table(rows_to_table(rows), tmp_path / "split=train" / "part-00000.parquet", row_group_size=32)
    tcfg = _tcfg(selection_bins=2)
    info = scan_split(str(tmp_path), "train", tcfg)
    got = _all(StampStream(str(tmp_path), "train", tcfg, info.meta_stats, shuffle=False))
    ids = set(got["task_id"].tolist())
    unaccepted = {r["task_id"] for r in rows if r["role"] == "injection" and not r["accepted"]}
    controls = {r["task_id"] for r in rows if r["role"] == "control"}
    assert not ids & unaccepted and len(unaccepted) > 20
    kept_ctl = len(ids & controls) / len(controls)
    kept_inj = 1 - len(unaccepted) / (len(rows) - len(controls))
    assert abs(kept_ctl - kept_inj) < 0.12  # the same share of controls leaves (per bin, by hash)
    assert info.n_rows == len(ids) and info.selection["drop_share"]
    off = _all(StampStream(str(tmp_path), "train", _tcfg(accepted_only=False), info.meta_stats, shuffle=False))
    assert len(off["task_id"]) == len(rows)  # without the selection every row is read
