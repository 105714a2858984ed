"""`emr launch` end to end, offline: S3 is a real S3 API server on loopback (moto), EMR and EMR
Serverless are real boto3 clients under botocore's Stubber (every request validated against the
service model and compared with the expected parameters). Create -> poll with back-off -> done."""

from __future__ import annotations

import copy
import json
import shutil
import tarfile
from datetime import datetime
from itertools import islice
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from darkhaloscope.cli import main as cli_main
from darkhaloscope.config import load_config, replace
from darkhaloscope.emr import package as pkg
from darkhaloscope.emr.launch import Clients, backoff, launch
from darkhaloscope.emr.requests import (
    ec2_request,
    serverless_application_request,
    serverless_job_request,
)
from darkhaloscope.errors import DatasetError, StorageError

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "emr-dr10.yaml"
MANIFEST = {"format_version": 1, "dataset_name": "dr10-v1", "rows": {"train": 26, "val": 39, "test": 35},
            "shards": [{"path": f"split=train/part-{i:05d}.parquet", "rows": 1} for i in range(20)]}


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "jobs").mkdir(parents=True)
    for name in ("pyproject.toml", "emr"):
        (repo / name).symlink_to(REPO / name)
    # a snapshot of the package: the shared tree may change while the test runs
    shutil.copytree(REPO / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for job in ("generate.py", "build_tasks.py", "stage.py"):
        (repo / "jobs" / job).write_text(f"# {job}\n")
    return repo


def _client(service):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="dummy", aws_secret_access_key="dummy")


@pytest.fixture
def world(tmp_path, s3_bucket):
    """A packaged project on the loopback S3 and a config pointing at it."""
    endpoint, bucket = s3_bucket
    repo = _repo(tmp_path)
    cfg = replace(load_config(CONFIG), **{
        "emr.bucket": bucket, "paths.dataset": f"s3://{bucket}/out", "paths.tasks": f"s3://{bucket}/tasks",
        "paths.bank": f"s3://{bucket}/bank.h5", "emr.catalogs": f"s3://{bucket}/sweep",
    })
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    env = tmp_path / "env.tar.gz"
    with tarfile.open(env, "w:gz") as tf:
        tf.add(REPO / "emr" / "run_cli.py", arcname="bin/placeholder")
    layout = pkg.package(cfg, s3=s3, repo=repo, env_archive=env, log=lambda *_: None).layout
    return cfg, repo, s3, layout


def _put_manifest(s3, layout):
    b, k = pkg.split_s3(layout.manifest)
    s3.put_object(Bucket=b, Key=k, Body=json.dumps(MANIFEST).encode())


def _cluster(state, code=None):
    status = {"State": state}
    if code:
        status["StateChangeReason"] = {"Code": code, "Message": code.lower()}
    return {"Cluster": {"Id": "j-TEST", "Name": "dhs", "Status": status}}


def _steps(*states):
    names = ["darkhaloscope build-tasks", "darkhaloscope stage", "darkhaloscope generate", "darkhaloscope report"]
    steps = [{"Id": f"s-{i}", "Name": n, "Status": {"State": st}} for i, (n, st) in enumerate(zip(names, states, strict=True))]
    return {"Steps": list(reversed(steps))}


def test_backoff_doubles_and_caps():
    assert list(islice(backoff(15, 300), 7)) == [15, 30, 60, 120, 240, 300, 300]


def test_ec2_launch_creates_polls_with_backoff_and_prints_the_manifest(world, capsys):
    cfg, repo, s3, layout = world
    _put_manifest(s3, layout)
    emr = _client("emr")
    sleeps: list[float] = []
    with Stubber(emr) as stub:
        stub.add_response("run_job_flow", {"JobFlowId": "j-TEST"}, expected_params=copy.deepcopy(ec2_request(cfg, layout)))
        for cluster, steps in [
            (_cluster("STARTING"), _steps("PENDING", "PENDING", "PENDING", "PENDING")),
            (_cluster("RUNNING"), _steps("COMPLETED", "RUNNING", "PENDING", "PENDING")),
            (_cluster("RUNNING"), _steps("COMPLETED", "COMPLETED", "RUNNING", "PENDING")),
            (_cluster("TERMINATING", "ALL_STEPS_COMPLETED"), _steps("COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED")),
            (_cluster("TERMINATED", "ALL_STEPS_COMPLETED"), _steps("COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED")),
        ]:
            stub.add_response("describe_cluster", cluster, expected_params={"ClusterId": "j-TEST"})
            stub.add_response("list_steps", steps, expected_params={"ClusterId": "j-TEST"})
        result = launch(cfg, Clients(s3=s3, emr=emr), repo=repo, sleep=sleeps.append, run_id="t1")
        stub.assert_no_pending_responses()
    assert sleeps == [15.0, 30.0, 60.0, 120.0]  # four waits between five polls
    assert result["id"] == "j-TEST" and result["manifest"] == MANIFEST
    out = capsys.readouterr().out
    assert "https://us-east-1.console.aws.amazon.com/emr/home?region=us-east-1#/clusterDetails/j-TEST" in out
    assert "step 'darkhaloscope generate': COMPLETED" in out
    assert '"dataset_name": "dr10-v1"' in out and "... 17 more" in out


def test_ec2_failed_step_raises_with_the_reason(world):
    cfg, repo, s3, layout = world
    emr = _client("emr")
    with Stubber(emr) as stub:
        stub.add_response("run_job_flow", {"JobFlowId": "j-TEST"})
        stub.add_response("describe_cluster", _cluster("TERMINATED_WITH_ERRORS", "STEP_FAILURE"))
        stub.add_response("list_steps", _steps("COMPLETED", "COMPLETED", "FAILED", "CANCELLED"))
        with pytest.raises(DatasetError) as err:
            launch(cfg, Clients(s3=s3, emr=emr), repo=repo, sleep=lambda s: None, log=lambda *_: None)
    assert err.value.reason == "STEP_FAILURE" and "j-TEST" in str(err.value)


def test_serverless_launch_creates_application_and_runs_each_stage(world, capsys):
    cfg, repo, s3, layout = world
    cfg = replace(cfg, **{"emr.mode": "serverless", "emr.execution_role_arn": "arn:aws:iam::123456789012:role/dhs"})
    _put_manifest(s3, layout)
    sls = _client("emr-serverless")
    app = "00f0000000000001"
    now = datetime(2026, 1, 1)
    sleeps: list[float] = []
    app_arn = f"arn:aws:emr-serverless:us-east-1:123456789012:/applications/{app}"

    def job_arn(job):
        return f"{app_arn}/jobruns/{job}0000000000000"

    def app_state(state):
        return {"application": {"applicationId": app, "arn": app_arn, "releaseLabel": "emr-7.5.0", "type": "SPARK",
                                "state": state, "createdAt": now, "updatedAt": now}}

    def run_state(state, job):
        return {"jobRun": {"applicationId": app, "jobRunId": job, "arn": job_arn(job), "createdBy": "arn:aws:iam::123456789012:user/me", "createdAt": now,
                           "updatedAt": now, "executionRole": cfg.emr.execution_role_arn, "state": state,
                           "stateDetails": state.lower(), "releaseLabel": "emr-7.5.0", "jobDriver": {"sparkSubmit": {"entryPoint": "x"}}}}

    with Stubber(sls) as stub:
        stub.add_response("create_application", {"applicationId": app, "arn": app_arn, "name": "n"},
                          expected_params=copy.deepcopy(serverless_application_request(cfg)))
        stub.add_response("get_application", app_state("CREATING"), expected_params={"applicationId": app})
        stub.add_response("get_application", app_state("CREATED"), expected_params={"applicationId": app})
        for i, step in enumerate(cfg.emr.steps):
            job = f"jr{i}"
            stub.add_response("start_job_run", {"applicationId": app, "jobRunId": job, "arn": job_arn(job)},
                              expected_params=copy.deepcopy(serverless_job_request(cfg, layout, app, step, "t2")))
            for state in ("SCHEDULED", "RUNNING", "SUCCESS"):
                stub.add_response("get_job_run", run_state(state, job), expected_params={"applicationId": app, "jobRunId": job})
        result = launch(cfg, Clients(s3=s3, serverless=sls), repo=repo, sleep=sleeps.append, run_id="t2")
        stub.assert_no_pending_responses()
    assert sleeps == [15.0] + [15.0, 30.0] * len(cfg.emr.steps)  # back-off restarts for each wait
    assert result["id"] == app and result["manifest"]["rows"] == MANIFEST["rows"]
    assert f"report job run jr{len(cfg.emr.steps) - 1}: SUCCESS" in capsys.readouterr().out


def test_launch_refuses_when_not_packaged(tmp_path, s3_bucket):
    endpoint, bucket = s3_bucket
    cfg = replace(load_config(CONFIG), **{"emr.bucket": bucket})
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    with pytest.raises(StorageError, match="emr package"):
        launch(cfg, Clients(s3=s3, emr=_client("emr")), repo=_repo(tmp_path), log=lambda *_: None)


def test_dry_run_prints_every_request_and_sends_nothing(tmp_path, capsys):
    repo = _repo(tmp_path)
    assert cli_main(["emr", "launch", "--config", str(CONFIG), "--dry-run", "--repo", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "would send emr RunJobFlow" in out and '"KeepJobFlowAliveWhenNoSteps": false' in out
    assert "command-runner.jar" in out and "s3://my-dhs-bucket/darkhaloscope/out/dr10-v1.config.yaml" in out
    assert cli_main(["emr", "launch", "--config", str(CONFIG), "--dry-run", "--repo", str(repo), "--mode", "serverless"]) == 1
    assert "execution_role_arn" in capsys.readouterr().err
