"""`emr package`: the dry run lists what it would include and upload; the code zip imports; the
environment archive relinks its interpreter to the nodes' Python 3.11; uploads reach a real S3
API (moto server on loopback)."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest

from darkhaloscope.cli import main as cli_main
from darkhaloscope.config import config_from_dict, config_hash, load_config, replace
from darkhaloscope.emr import package as pkg
from darkhaloscope.errors import DataFileError

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "emr-dr10.yaml"
COMPILED = ("numpy", "galsim", "lenstronomy", "pyarrow", "astropy", "h5py", "scipy")


def make_repo(tmp_path: Path) -> Path:
    """A checkout with this project's package, pyproject and emr/ files, and two job scripts."""
    repo = tmp_path / "repo"
    (repo / "jobs").mkdir(parents=True)
    for name in ("pyproject.toml", "emr"):
        (repo / name).symlink_to(REPO / name)
    # a snapshot of the package: the shared tree may change while the test runs
    shutil.copytree(REPO / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (repo / "jobs" / "generate.py").write_text("print('generate')\n")
    (repo / "jobs" / "build_tasks.py").write_text("print('build_tasks')\n")
    (repo / "jobs" / "stage.py").write_text("print('stage')\n")
    return repo


def test_dry_run_lists_what_it_would_include_and_upload(tmp_path, capsys):
    repo = make_repo(tmp_path)
    build = tmp_path / "build"
    rc = cli_main(["emr", "package", "--config", str(CONFIG), "--dry-run", "--repo", str(repo),
                   "--build-dir", str(build), "--requirements-out", str(tmp_path / "req.txt")])
    assert rc == 0
    out = capsys.readouterr().out
    for name in COMPILED:  # pinned to the versions the tests ran against
        assert f"  {name}=={importlib.metadata.version(name)}" in out
    assert "pyspark" not in out.split("code (")[0]  # EMR brings Spark 3.5's pyspark
    assert "bin/python -> /usr/bin/python3.11" in out
    assert "darkhaloscope.zip:darkhaloscope/config/core.py" in out
    assert "darkhaloscope.zip:darkhaloscope/emr/package.py" in out
    assert "jobs/generate.py" in out and "jobs/build_tasks.py" in out and "run_cli.py" in out
    assert "__pycache__" not in out
    assert "s3://my-dhs-bucket/darkhaloscope/emr/env/" in out and "/env.tar.gz" in out
    assert "s3://my-dhs-bucket/darkhaloscope/out/dr10-v1.config.yaml" in out
    assert "dry run: nothing built, nothing uploaded" in out
    assert not build.exists()
    reqs = (tmp_path / "req.txt").read_text().split()
    assert f"numpy=={importlib.metadata.version('numpy')}" in reqs


def test_code_zip_is_deterministic_and_importable(tmp_path):
    files = pkg.code_files(REPO)
    data = pkg.build_code_zip(files)
    assert data == pkg.build_code_zip(files)
    zpath = tmp_path / "darkhaloscope.zip"
    zpath.write_bytes(data)
    env = {**os.environ, "PYTHONPATH": str(zpath)}
    out = subprocess.run(
        [sys.executable, "-c", "import darkhaloscope.config as c, darkhaloscope.emr.sizing as s; print(c.__file__); print(round(s.DEFAULT_CORE_MS_PER_STAMP, 3))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert out[0].startswith(str(zpath))  # imported from the zip, as --py-files does
    assert float(out[1]) == pytest.approx(680 * 3.6e6 / 11_751_600, abs=1e-3)


def test_code_id_changes_with_the_code(tmp_path):
    repo = make_repo(tmp_path)
    cfg = load_config(CONFIG)
    a = pkg.plan_package(cfg, repo, build_env=False).layout
    (repo / "jobs" / "generate.py").write_text("print('generate v2')\n")
    b = pkg.plan_package(cfg, repo, build_env=False).layout
    assert a.code_zip != b.code_zip and a.env_archive == b.env_archive


def test_missing_job_is_a_clear_error(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "jobs" / "generate.py").unlink()
    with pytest.raises(DataFileError, match="generate.py"):
        pkg.plan_package(load_config(CONFIG), repo)


def _tiny_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([str(pkg._base_python()), "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv


def test_archive_links_python_to_the_nodes_interpreter(tmp_path):
    import venv_pack

    venv = _tiny_venv(tmp_path)
    good, bad = tmp_path / "good.tar.gz", tmp_path / "bad.tar.gz"
    venv_pack.pack(prefix=str(venv), output=str(good), python_prefix="/usr")
    pkg.verify_archive(good, "/usr")
    with tarfile.open(good) as tf:
        assert tf.getmember("bin/python").linkname == "/usr/bin/python3.11"
    venv_pack.pack(prefix=str(venv), output=str(bad))  # no relink: points at this machine's Python
    with pytest.raises(DataFileError, match="bin/python"):
        pkg.verify_archive(bad, "/usr")


def test_wheel_tags_must_fit_amazon_linux_2023(tmp_path):
    import platform

    arch = platform.machine()
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    for name, tag in [("pure-1.0", "py3-none-any"), ("old-1.0", f"cp311-cp311-manylinux2014_{arch}"),
                      ("new-1.0", f"cp311-cp311-manylinux_2_17_{arch}.manylinux_2_28_{arch}")]:
        (site / f"{name}.dist-info").mkdir(parents=True)
        (site / f"{name}.dist-info" / "WHEEL").write_text(f"Wheel-Version: 1.0\nTag: {tag}\n")
    assert len(pkg.check_wheel_tags(tmp_path / "venv")) == 3
    (site / "tooNew-1.0.dist-info").mkdir()
    (site / "tooNew-1.0.dist-info" / "WHEEL").write_text(f"Tag: cp311-cp311-manylinux_2_39_{arch}\n")
    with pytest.raises(DataFileError, match="tooNew"):
        pkg.check_wheel_tags(tmp_path / "venv")
    (site / "tooNew-1.0.dist-info" / "WHEEL").write_text(f"Tag: cp311-cp311-linux_{arch}\n")  # built locally
    with pytest.raises(DataFileError, match="tooNew"):
        pkg.check_wheel_tags(tmp_path / "venv")


def test_upload_to_s3_and_keep_existing_environment(tmp_path, s3_bucket):
    endpoint, bucket = s3_bucket
    repo = make_repo(tmp_path)
    cfg = replace(load_config(CONFIG), **{"emr.bucket": bucket, "paths.dataset": f"s3://{bucket}/out",
                                          "paths.tasks": f"s3://{bucket}/tasks", "paths.bank": f"s3://{bucket}/bank.h5"})
    env = tmp_path / "env.tar.gz"
    with tarfile.open(env, "w:gz") as tf:
        tf.add(REPO / "emr" / "run_cli.py", arcname="bin/placeholder")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    logs: list[str] = []
    plan = pkg.package(cfg, s3=s3, repo=repo, env_archive=env, log=logs.append)
    layout = plan.layout
    for url in [layout.env_archive, layout.code_zip, layout.run_cli, layout.bootstrap, layout.config, *layout.jobs.values()]:
        b, k = pkg.split_s3(url)
        assert b == bucket
        s3.head_object(Bucket=b, Key=k)
    b, k = pkg.split_s3(layout.config)
    uploaded = s3.get_object(Bucket=b, Key=k)["Body"].read()
    import yaml
    assert config_hash(config_from_dict(yaml.safe_load(uploaded))) == config_hash(cfg)  # resolved, round-trips
    b, k = pkg.split_s3(layout.jobs["generate.py"])
    assert s3.get_object(Bucket=b, Key=k)["Body"].read() == b"print('generate')\n"
    logs.clear()
    pkg.package(cfg, s3=s3, repo=repo, env_archive=None, log=logs.append, build_dir=tmp_path / "never")
    assert any("exists (same requirements): not rebuilt" in line for line in logs)
    assert not (tmp_path / "never").exists()
