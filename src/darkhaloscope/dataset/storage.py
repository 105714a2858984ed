"""Storage: one place that turns a local path or an ``s3://`` URL into a pyarrow filesystem.

S3 goes through ``pyarrow.fs.S3FileSystem`` (endpoint override for the loopback test server,
retries with back-off). Credentials come from the environment / instance profile and never
appear in paths, logs or errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from pyarrow import fs as pafs


@dataclass(frozen=True)
class StorageOptions:
    """Where S3 lives: ``endpoint`` (URL, empty = AWS), ``region``, retry attempts."""

    endpoint: str = ""
    region: str = "us-east-1"
    retry_attempts: int = 8


def is_s3(url: str) -> bool:
    """True for ``s3://`` URLs."""
    return str(url).startswith("s3://")


def filesystem_for(url: str, options: StorageOptions | None = None) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or an ``s3://bucket/key`` URL."""
    url = str(url)
    if not is_s3(url):
        return pafs.LocalFileSystem(), url
    options = options or StorageOptions()
    parsed = urlparse(url)
    kwargs = {
        "region": options.region,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=options.retry_attempts),
    }
    if options.endpoint:
        ep = urlparse(options.endpoint)
        kwargs["endpoint_override"] = ep.netloc or options.endpoint
        kwargs["scheme"] = ep.scheme or "https"
    return pafs.S3FileSystem(**kwargs), parsed.netloc + parsed.path


def join(url: str, *parts: str) -> str:
    """Join URL/path segments with '/'."""
    out = str(url).rstrip("/")
    for p in parts:
        out += "/" + str(p).strip("/")
    return out
