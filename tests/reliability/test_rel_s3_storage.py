"""Fault 2/3 at the storage layer: the S3 server answers 503 / 500 / resets connections for a while
(through the loopback fault proxy): shard uploads, footer reads, manifests, bank downloads and
brick reads are retried with back-off and give the same bytes; S3 failing for good gives a clear
error naming the object, and leaves no partial object behind."""

from __future__ import annotations

import hashlib

import boto3
import numpy as np
import pytest
from s3_fault_proxy import Fault, FaultProxy

from darkhaloscope.dataset import manifest as mf
from darkhaloscope.dataset.storage import StorageOptions
from darkhaloscope.dataset.writer import WriterSettings, read_footer, sha256_of, write_shard
from darkhaloscope.errors import StorageError

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(s3_server):
    with FaultProxy(s3_server) as p:
        yield p


def _rows(n=40):
    rng = np.random.default_rng(3)
    from darkhaloscope.dataset.stamp import encode_stamp

    return [{"task_id": i, "galaxy_id": f"g{i}", "brickname": "1500p100", "ra": 150.0, "dec": 10.0, "split": "train",
             "role": "control", "cutout_ok": True, "seed": 7, "config_hash": "0123456789abcdef", "code_version": "test",
             "stamp_npz": encode_stamp(rng.normal(size=(3, 16, 16)), np.ones((3, 16, 16)), np.zeros((16, 16)))} for i in range(n)]


@pytest.mark.parametrize("action", ["503", "500", "reset"])
def test_transient_faults_are_retried_with_the_same_bytes(action, proxy, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    settings = WriterSettings(row_group_rows=8)
    local = write_shard(_rows(), str(tmp_path / "part.parquet"), settings)
    opts = StorageOptions(endpoint=proxy.url)
    url = f"s3://{bucket}/ds/split=train/part-00000.parquet"

    proxy.set_fault(Fault(action, first=2))
    remote = write_shard(_rows(), url, settings, opts)  # upload + footer read-back
    assert proxy.stats()["faulted"] == 2
    assert (remote.rows, remote.bytes, remote.sha256) == (local.rows, local.bytes, local.sha256)

    proxy.set_fault(Fault(action, first=2))
    assert read_footer(url, opts).num_rows == 40 and sha256_of(url, opts) == (local.sha256, local.bytes)
    mf.put_bytes(f"s3://{bucket}/ds/_SUCCESS", b"", opts)
    assert mf.is_complete(f"s3://{bucket}/ds", opts)
    assert proxy.stats()["faulted"] == 2
    # checked behind the proxy's back: the object is whole
    body = boto3.client("s3", endpoint_url=endpoint).get_object(Bucket=bucket, Key="ds/split=train/part-00000.parquet")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == local.sha256


def test_brick_and_bank_reads_survive_a_flaky_window(world, proxy, s3_bucket, tmp_path):
    """Ranged brick reads and the bank download through a proxy that resets every connection for
    the first second and then answers 503 to the next few requests: same pixels, same bank."""
    from darkhaloscope.sources.bank import SourceBank
    from darkhaloscope.survey.brick_reader import BrickReader

    endpoint, bucket = s3_bucket
    s3 = boto3.client("s3", endpoint_url=endpoint)
    for p in world.survey.rglob("*"):
        if p.is_file() and ("coadd" in p.parts or p.name.startswith("survey-bricks")):
            s3.upload_file(str(p), bucket, f"survey/{p.relative_to(world.survey)}")
    s3.upload_file(str(world.survey.parent / "survey-bricks.fits.gz"), bucket, "survey-bricks.fits.gz")  # DR10: above the region
    s3.upload_file(str(world.bank), bucket, "bank.h5")
    opts = StorageOptions(endpoint=proxy.url)
    tasks = world.tasks[:4]  # each stamp is ~30 ranged GETs through moto: keep it short

    proxy.set_fault(Fault("reset", window=(0.0, 1.0)))
    bank = SourceBank.open(f"s3://{bucket}/bank.h5", cache_dir=str(tmp_path / "cache"), options=opts)
    proxy.set_fault(Fault("503", first=4))
    reader = BrickReader(f"s3://{bucket}/survey", options=opts)
    remote = [reader.cutout(t["ra"], t["dec"], 64, "grz", brickname=t["brickname"]) for t in tasks]
    assert proxy.stats()["faulted"] == 4
    local_reader = BrickReader(str(world.survey))
    for t, r in zip(tasks, remote, strict=True):
        ref = local_reader.cutout(t["ra"], t["dec"], 64, "grz", brickname=t["brickname"])
        assert r.ok == ref.ok
        if ref.ok:
            assert np.array_equal(r.image, ref.image) and np.array_equal(r.invvar, ref.invvar) and np.array_equal(r.maskbits, ref.maskbits)
    ref_bank = SourceBank.open(str(world.bank))
    assert np.array_equal(bank.template(0), ref_bank.template(0)) and list(bank.meta["ident"]) == list(ref_bank.meta["ident"])


def test_s3_failing_for_good_is_a_clear_error_and_leaves_nothing(proxy, s3_bucket):
    endpoint, bucket = s3_bucket
    opts = StorageOptions(endpoint=proxy.url, retry_attempts=3)
    url = f"s3://{bucket}/ds/split=val/part-00003.parquet"
    proxy.set_fault(Fault("503", from_request=1))
    with pytest.raises(StorageError) as info:
        write_shard(_rows(), url, WriterSettings(row_group_rows=8), opts)
    assert url in str(info.value) and info.value.path == url
    assert proxy.stats()["faulted"] >= 3  # it did retry, then gave up
    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket, Prefix="ds/")
    assert listed.get("KeyCount", 0) == 0  # no partial shard
    proxy.set_fault(Fault("reset", from_request=1))
    with pytest.raises(StorageError, match="_manifest.json"):
        mf.put_bytes(f"s3://{bucket}/ds/_manifest.json", b"{}", opts)
