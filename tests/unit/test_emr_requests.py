"""The EMR requests are valid for the real AWS APIs: checked by botocore's Stubber on real boto3
clients (which validate parameters against the service models before the stub answers), with
the exact expected parameters. A wrong field fails (negative tests below). Nothing is sent."""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber

from darkhaloscope.config import config_hash, load_config, replace
from darkhaloscope.emr import package as pkg
from darkhaloscope.emr.requests import (
    ec2_request,
    serverless_application_request,
    serverless_job_request,
    validate_request,
)
from darkhaloscope.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "emr-dr10.yaml"


def _client(service):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="dummy", aws_secret_access_key="dummy")


@pytest.fixture(scope="module")
def cfg():
    return load_config(CONFIG)


@pytest.fixture(scope="module")
def layout(cfg):
    return pkg.run_layout(cfg, "c0de00000000", "e0e000000000")


def test_run_job_flow_matches_the_emr_model(cfg, layout):
    req = ec2_request(cfg, layout)
    emr = _client("emr")
    with Stubber(emr) as stub:
        stub.add_response("run_job_flow", {"JobFlowId": "j-TEST", "ClusterArn": "arn:aws:elasticmapreduce:us-east-1:1:cluster/j-TEST"},
                          expected_params=copy.deepcopy(req))
        assert emr.run_job_flow(**req)["JobFlowId"] == "j-TEST"
        stub.assert_no_pending_responses()

    inst = req["Instances"]
    assert inst["KeepJobFlowAliveWhenNoSteps"] is False and inst["TerminationProtected"] is False
    fleets = {f["InstanceFleetType"]: f for f in inst["InstanceFleets"]}
    assert fleets["MASTER"]["TargetOnDemandCapacity"] == 1
    assert fleets["CORE"]["TargetOnDemandCapacity"] == cfg.emr.core_instances == 10
    assert fleets["TASK"]["TargetSpotCapacity"] == cfg.emr.spot_instances == 24
    assert "TargetOnDemandCapacity" not in fleets["TASK"]
    assert {c["InstanceType"] for c in fleets["TASK"]["InstanceTypeConfigs"]} >= {"m5.2xlarge", "m6i.2xlarge"}
    assert req["LogUri"] == "s3://my-dhs-bucket/darkhaloscope/emr/logs/"
    assert req["ReleaseLabel"] == "emr-7.5.0" and req["Applications"] == [{"Name": "Spark"}]
    assert [s["Name"] for s in req["Steps"]] == ["darkhaloscope build-tasks", "darkhaloscope stage", "darkhaloscope generate", "darkhaloscope report"]
    assert req["BootstrapActions"][0]["ScriptBootstrapAction"]["Path"] == layout.bootstrap
    for step in req["Steps"]:
        assert step["ActionOnFailure"] == "TERMINATE_CLUSTER"
        hj = step["HadoopJarStep"]
        assert hj["Jar"] == "command-runner.jar"
        args = hj["Args"]
        assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
        assert f"spark.archives={layout.env_archive}#environment" in args
        assert "spark.yarn.appMasterEnv.PYSPARK_PYTHON=./environment/bin/python" in args
        assert "spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python" in args
        assert "spark.executorEnv.MIMALLOC_PURGE_DELAY=-1" in args  # workers keep freed memory (spark/worker_memory.py)
        assert args[args.index("--py-files") + 1] == layout.code_zip
        assert args[args.index("--files") + 1] == layout.config
        # the job reads the config shipped with --files from its working directory
        assert args[args.index("--config") + 1] == "dr10-v1.config.yaml" == Path(layout.config).name
    stage = req["Steps"][1]["HadoopJarStep"]["Args"]
    entry = stage.index(layout.jobs["stage.py"])
    assert stage[entry + 1:] == ["--config", "dr10-v1.config.yaml", "--tasks", cfg.paths.tasks, "--bricks", cfg.paths.survey_root,
                                 "--out", cfg.paths.hosts, "--resume"]
    gen = req["Steps"][2]["HadoopJarStep"]["Args"]
    entry = gen.index(layout.jobs["generate.py"])
    # stage then generate: generate reads the host table, never the bricks
    assert layout.hosts == f"{cfg.paths.hosts}/{cfg.stage.name}"
    assert gen[entry + 1:] == ["--config", "dr10-v1.config.yaml", "--hosts", layout.hosts, "--bank", cfg.paths.bank,
                               "--out", cfg.paths.dataset, "--resume"]
    assert {"Key": "config_hash", "Value": config_hash(cfg)} in req["Tags"]


def test_serverless_requests_match_the_emr_serverless_model(cfg, layout):
    scfg = replace(cfg, **{"emr.mode": "serverless", "emr.execution_role_arn": "arn:aws:iam::123456789012:role/dhs-job"})
    app_req = serverless_application_request(scfg)
    job_req = serverless_job_request(scfg, layout, "00fabcdef0123456", "generate", "run1")
    sls = _client("emr-serverless")
    with Stubber(sls) as stub:
        stub.add_response("create_application", {"applicationId": "00fabcdef0123456", "name": app_req["name"],
                                                 "arn": "arn:aws:emr-serverless:us-east-1:1:/applications/00fabcdef0123456"},
                          expected_params=copy.deepcopy(app_req))
        stub.add_response("start_job_run", {"applicationId": "00fabcdef0123456", "jobRunId": "00jr",
                                            "arn": "arn:aws:emr-serverless:us-east-1:1:/applications/00fabcdef0123456/jobruns/00jr"},
                          expected_params=copy.deepcopy(job_req))
        assert sls.create_application(**app_req)["applicationId"] == "00fabcdef0123456"
        assert sls.start_job_run(**job_req)["jobRunId"] == "00jr"
        stub.assert_no_pending_responses()
    assert app_req["type"] == "SPARK" and app_req["releaseLabel"] == "emr-7.5.0"
    submit = job_req["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"] == layout.jobs["generate.py"]
    params = shlex.split(submit["sparkSubmitParameters"])
    assert f"spark.archives={layout.env_archive}#environment" in params
    assert "spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python" in params
    assert "spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python" in params
    assert "--deploy-mode" not in params
    logs = job_req["configurationOverrides"]["monitoringConfiguration"]["s3MonitoringConfiguration"]["logUri"]
    assert logs == layout.logs


def test_serverless_custom_image_uses_its_python(cfg, layout):
    scfg = replace(cfg, **{"emr.mode": "serverless", "emr.python": "image", "emr.execution_role_arn": "arn:aws:iam::1:role/r",
                           "emr.serverless_image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/dhs:1"})
    app_req = serverless_application_request(scfg)
    validate_request("emr-serverless", "CreateApplication", app_req)
    assert app_req["imageConfiguration"]["imageUri"].endswith("/dhs:1")
    params = shlex.split(serverless_job_request(scfg, layout, "app", "report", "r")["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"])
    assert not any(p.startswith("spark.archives=") for p in params)
    assert "spark.executorEnv.PYSPARK_PYTHON=/usr/bin/python3.11" in params


@pytest.mark.parametrize("mutate", [
    lambda r: r["Instances"].__setitem__("KeepAlive", False),                       # unknown field
    lambda r: r["Instances"]["InstanceFleets"][2].__setitem__("TargetSpotCapacity", "24"),  # wrong type
    lambda r: r["Steps"][0]["HadoopJarStep"].pop("Jar"),                            # missing required
    lambda r: r.__setitem__("Step", r.pop("Steps")),                                # misspelt top-level key
])
def test_a_wrong_field_fails_against_the_model(cfg, layout, mutate):
    bad = ec2_request(cfg, layout)
    mutate(bad)
    emr = _client("emr")
    with Stubber(emr) as stub:
        stub.add_response("run_job_flow", {"JobFlowId": "j-X"})
        with pytest.raises(ParamValidationError):
            emr.run_job_flow(**bad)
    with pytest.raises(ConfigError, match="RunJobFlow"):
        validate_request("emr", "RunJobFlow", bad)


def test_a_wrong_serverless_field_fails(cfg, layout):
    scfg = replace(cfg, **{"emr.mode": "serverless", "emr.execution_role_arn": "arn:aws:iam::1:role/r"})
    bad = serverless_job_request(scfg, layout, "app", "generate", "r")
    bad["jobDriver"]["sparkSubmitJobDriver"] = bad["jobDriver"].pop("sparkSubmit")  # the EMR-on-EKS name
    with pytest.raises(ParamValidationError):
        _client("emr-serverless").start_job_run(**bad)


@pytest.mark.parametrize("changes, field", [
    ({"emr.bucket": ""}, "emr.bucket"),
    ({"emr.release_label": "emr-6.15.0"}, "emr.release_label"),
    ({"emr.release_label": "seven"}, "emr.release_label"),
    ({"paths.dataset": "out/dataset"}, "paths.dataset"),
    ({"paths.survey_root": "/data/dr10"}, "paths.survey_root"),
    ({"emr.steps": ["generate", "train"]}, "emr.steps"),
    ({"emr.mode": "serverless"}, "emr.execution_role_arn"),
    ({"emr.python": "image"}, "emr.python"),
])
def test_unrunnable_config_names_the_field(cfg, changes, field):
    with pytest.raises(ConfigError) as err:
        pkg.run_layout(replace(cfg, **changes), "c", "e")
    assert err.value.field == field


def test_generate_alone_on_bricks_or_on_an_existing_host_table(cfg):
    bricks = replace(cfg, **{"emr.steps": ["generate", "report"]})
    lay = pkg.run_layout(bricks, "c", "e")
    args = ec2_request(bricks, lay)["Steps"][0]["HadoopJarStep"]["Args"]
    assert lay.hosts == "" and "--bricks" in args and "--hosts" not in args
    hosts = replace(cfg, **{"emr.steps": ["generate"], "emr.generate_from": "hosts"})
    lay = pkg.run_layout(hosts, "c", "e")
    args = ec2_request(hosts, lay)["Steps"][0]["HadoopJarStep"]["Args"]
    assert args[args.index("--hosts") + 1] == lay.hosts and "--bricks" not in args
    with pytest.raises(ConfigError) as err:
        pkg.run_layout(replace(cfg, **{"emr.steps": ["generate", "stage"]}), "c", "e")
    assert err.value.field == "emr.steps"
    with pytest.raises(ConfigError) as err:
        pkg.run_layout(replace(cfg, **{"paths.hosts": "out/hosts"}), "c", "e")
    assert err.value.field == "paths.hosts"
    assert config_hash(hosts) == config_hash(replace(hosts, **{"emr.generate_from": "bricks"}))  # execution only


def test_requests_are_deterministic(cfg, layout):
    a = json.dumps(ec2_request(cfg, layout), sort_keys=True)
    b = json.dumps(ec2_request(load_config(CONFIG), layout), sort_keys=True)
    assert a == b


def test_emr_config_keeps_the_production_physics():
    """configs/emr-dr10.yaml differs from configs/dr10.yaml only in paths, emr and S3 settings."""
    from darkhaloscope.config import config_to_dict

    prod = config_to_dict(load_config(REPO / "configs" / "dr10.yaml"))
    emr = config_to_dict(load_config(CONFIG))
    for d in (prod, emr):
        d.pop("paths"), d.pop("emr")
        d["generate"].pop("s3_region"), d["generate"].pop("s3_endpoint")
    assert emr == prod
