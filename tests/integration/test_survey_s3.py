"""Cutouts from bricks on a real S3 API (moto server on loopback) and an HTTP Range mirror on
loopback equal the local cutouts, bit for bit."""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
import survey_helpers  # noqa: E402
from http_mirror import HttpMirror  # noqa: E402

from darkhaloscope.dataset.storage import StorageOptions  # noqa: E402
from darkhaloscope.survey.brick_reader import BrickReader  # noqa: E402
from darkhaloscope.survey.synth_geometry import SynthGrid  # noqa: E402

pytestmark = pytest.mark.integration
small_survey = survey_helpers.small_survey  # session fixture

POINTS = [(0.0, 0.0), (150.0, 10.0), (300.3, -90.2)]  # global pixels: inside brick 0, across the edge, inside brick 1


def _upload(root: Path, endpoint: str, bucket: str, prefix: str) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for p in root.rglob("*"):
        if p.is_file() and "tractor" not in p.parts:
            s3.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(root).as_posix()}")
    # DR10 layout: survey-bricks.fits.gz sits one level above the region folder
    s3.upload_file(str(root.parent / "survey-bricks.fits.gz"), bucket, "/".join([*prefix.split("/")[:-1], "survey-bricks.fits.gz"]))


def _compare(cfg, local: BrickReader, remote: BrickReader) -> None:
    grid = SynthGrid(cfg)
    for gx, gy in POINTS:
        ra, dec = (float(v[0]) for v in grid.pix2world([gx], [gy]))
        a = local.cutout(ra, dec, 64, "grz")
        b = remote.cutout(ra, dec, 64, "grz")
        assert a.ok and b.ok, (a.reason, b.reason)
        assert a.brickname == b.brickname
        assert np.array_equal(a.image, b.image) and np.array_equal(a.invvar, b.invvar) and np.array_equal(a.maskbits, b.maskbits)


def test_cutout_from_s3_equals_local(small_survey, s3_bucket):
    cfg, root = small_survey
    endpoint, bucket = s3_bucket
    _upload(root, endpoint, bucket, "dr10")
    remote = BrickReader(f"s3://{bucket}/dr10", options=StorageOptions(endpoint=endpoint))
    _compare(cfg, BrickReader(str(root)), remote)
    # a missing object on S3 is a "missing file" reason naming the s3 URL
    c = remote.cutout(150.0, 10.0, 64, "g", brickname="1234p567")
    assert not c.ok and f"s3://{bucket}/dr10/coadd/123/1234p567/legacysurvey-1234p567-image-g.fits.fz" in c.reason


def test_cutout_from_https_mirror_equals_local(small_survey):
    cfg, root = small_survey
    with HttpMirror(root.parent) as mirror:  # the DR10 release layout: survey-bricks above south/
        _compare(cfg, BrickReader(str(root)), BrickReader(f"{mirror.url}/south"))
        assert mirror.log, "no ranged GET reached the mirror"
