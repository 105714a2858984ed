"""Shared test fixtures: the real data in ../shared/data, a Spark local[2] session, an S3 API
server on loopback (moto in server mode)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DARKHALOSCOPE_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real public data (never copied into the project)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA} (set DARKHALOSCOPE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def spark():
    """A Spark local[2] session for the whole test run."""
    from darkhaloscope.spark.session import get_spark

    # Python workers inherit the JVM's environment at launch: the loopback S3 server's dummy
    # credentials must be there before the session starts, or executors sign no S3 request.
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(key, value)
    session = get_spark("darkhaloscope-tests", master="local[2]")
    yield session
    session.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API server (moto, server mode) on 127.0.0.1; yields its endpoint URL.

    Credentials are dummies set in the environment, so boto3 and pyarrow both sign requests.
    """
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.pop("AWS_PROFILE", None)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket on the loopback S3 server; yields (endpoint, bucket name)."""
    import uuid

    import boto3

    name = f"dhs-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return s3_server, name
