"""``darkhaloscope report`` on a dataset in S3 (a real S3 API server on loopback, moto in server
mode): read through pyarrow's S3 filesystem, report written back to S3, same numbers as the
local run of the same files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_report_fixture import make_dataset  # noqa: E402

from darkhaloscope import cli  # noqa: E402
from darkhaloscope.config import Config  # noqa: E402
from darkhaloscope.report.build import build_report  # noqa: E402

pytestmark = pytest.mark.integration


def test_report_reads_and_writes_s3(tmp_path, s3_bucket):
    endpoint, bucket = s3_bucket
    root = make_dataset(tmp_path / "ds", "honest", n=160)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for f in sorted(root.rglob("*")):
        if f.is_file():
            s3.upload_file(str(f), bucket, f"data/ds/{f.relative_to(root).as_posix()}")

    rc = cli.main(["report", "--dataset", f"s3://{bucket}/data/ds", "--s3-endpoint", endpoint])
    assert rc == 0
    remote = json.loads(s3.get_object(Bucket=bucket, Key="data/ds/_report/report.json")["Body"].read())
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="data/ds/_report/")["Contents"]}
    assert "data/ds/_report/report.md" in keys
    for name in remote["figures"]:
        assert f"data/ds/_report/figures/{name}" in keys
    png = s3.get_object(Bucket=bucket, Key="data/ds/_report/figures/gallery.png")["Body"].read()
    assert png[:4] == b"\x89PNG"

    local = build_report(str(root), Config(), make_figures=False)
    assert remote["tables"] == json.loads(json.dumps(local.data["tables"]))
    assert {k: g["status"] for k, g in remote["gates"].items()} == {k: g["status"] for k, g in local.data["gates"].items()}
    assert remote["dataset"] == f"s3://{bucket}/data/ds"
