"""The boto3 request dicts ``emr launch`` sends, built from the config and the S3 layout.

Pure functions: nothing here talks to AWS. :func:`validate_request` checks a request against
botocore's own service model (the same check boto3 makes before sending), so ``--dry-run`` and
the tests catch a wrong field offline.

EMR on EC2: one ``run_job_flow`` with instance fleets (on-demand primary and core, a spot task
fleet over several instance types), a bootstrap action that makes sure Python 3.11 is there,
and one ``command-runner.jar`` spark-submit step per stage (build-tasks, stage, generate, report;
generate reads the host table stage wrote, ``layout.hosts``, or the bricks),
``KeepJobFlowAliveWhenNoSteps=False`` so the cluster terminates when the last step ends (or on
the first failure: ``ActionOnFailure=TERMINATE_CLUSTER``).

EMR Serverless: ``create_application`` (when ``emr.application_id`` is empty) and one
``start_job_run`` per stage with the same spark-submit parameters.
"""

from __future__ import annotations

import platform
import shlex

from botocore.session import get_session
from botocore.validate import ParamValidator

from ..config import Config, config_hash
from ..errors import ConfigError
from ..spark.worker_memory import spark_executor_env
from .layout import RunLayout

ARCHIVE_PYTHON = "./environment/bin/python"
STEP_ENTRY = {"build-tasks": "build_tasks.py", "stage": "stage.py", "generate": "generate.py", "report": "run_cli.py"}


def _python_path(cfg: Config) -> str:
    """The interpreter the driver and executors run: the archive's, or the custom image's."""
    return ARCHIVE_PYTHON if cfg.emr.python == "archive" else "/usr/bin/python3.11"


def step_entry(cfg: Config, layout: RunLayout, step: str) -> tuple[str, list[str]]:
    """(entry-point URL, its arguments) of one stage."""
    conf = layout.config_name  # shipped with --files: the driver finds it in its working dir
    if step == "build-tasks":
        return layout.jobs["build_tasks.py"], ["--config", conf, "--catalogs", layout.catalogs, "--out", layout.tasks]
    resume = ["--resume"] if cfg.emr.resume else []
    if step == "stage":
        args = ["--config", conf, "--tasks", layout.tasks, "--bricks", layout.bricks, "--out", layout.hosts_root]
        return layout.jobs["stage.py"], args + resume
    if step == "generate":
        source = ["--hosts", layout.hosts] if layout.hosts else ["--tasks", layout.tasks, "--bricks", layout.bricks]
        args = ["--config", conf, *source, "--bank", layout.bank, "--out", layout.dataset_root]
        return layout.jobs["generate.py"], args + resume
    if step == "report":
        return layout.run_cli, ["report", "--config", conf, "--dataset", layout.dataset, "--bank", layout.bank]
    raise ConfigError(f"unknown step {step!r} in emr.steps", field="emr.steps")


def spark_confs(cfg: Config, layout: RunLayout, serverless: bool) -> list[tuple[str, str]]:
    """spark-submit --conf pairs: the environment archive, the interpreter, executor sizing."""
    emr = cfg.emr
    py = _python_path(cfg)
    confs: list[tuple[str, str]] = []
    if emr.python == "archive":
        confs.append(("spark.archives", f"{layout.env_archive}#environment"))
    if serverless:
        confs += [("spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON", py),
                  ("spark.emr-serverless.driverEnv.PYSPARK_PYTHON", py)]
    else:
        confs.append(("spark.yarn.appMasterEnv.PYSPARK_PYTHON", py))
    confs += [
        ("spark.executorEnv.PYSPARK_PYTHON", py),
        ("spark.executor.cores", str(emr.executor_cores)),
        ("spark.executor.memory", f"{emr.executor_memory_gb}g"),
        ("spark.executor.memoryOverhead", f"{emr.executor_overhead_gb}g"),
        ("spark.sql.execution.arrow.pyspark.enabled", "true"),  # as in local mode (spark/session.py)
        # shard names are deterministic: a speculative duplicate would race on the same file
        ("spark.speculation", "false"),
    ]
    confs += spark_executor_env()  # the Python workers keep freed memory (spark/worker_memory.py)
    return confs


def spark_submit_args(cfg: Config, layout: RunLayout, step: str, serverless: bool = False) -> list[str]:
    """The spark-submit options (without the entry point) for one stage."""
    args = [] if serverless else ["--deploy-mode", "cluster"]
    for key, value in spark_confs(cfg, layout, serverless):
        args += ["--conf", f"{key}={value}"]
    args += ["--py-files", layout.code_zip, "--files", layout.config]
    return args


def _tags(cfg: Config) -> dict[str, str]:
    return {"project": "darkhaloscope", "dataset": cfg.generate.dataset_name, "config_hash": config_hash(cfg)}


def ec2_request(cfg: Config, layout: RunLayout) -> dict:
    """``emr.run_job_flow`` parameters for the whole run."""
    emr = cfg.emr
    if emr.core_instances < 1:
        raise ConfigError("config field 'emr.core_instances' must be >= 1 on EMR on EC2 (the driver runs on core nodes)", field="emr.core_instances")
    fleets = [
        {"Name": "primary", "InstanceFleetType": "MASTER", "TargetOnDemandCapacity": 1,
         "InstanceTypeConfigs": [{"InstanceType": emr.master_instance_type}]},
        {"Name": "core-on-demand", "InstanceFleetType": "CORE", "TargetOnDemandCapacity": emr.core_instances,
         "InstanceTypeConfigs": [{"InstanceType": emr.instance_type, "WeightedCapacity": 1}]},
    ]
    if emr.spot_instances > 0:
        types = list(dict.fromkeys([emr.instance_type, *emr.spot_instance_types]))
        fleets.append({
            "Name": "task-spot", "InstanceFleetType": "TASK", "TargetSpotCapacity": emr.spot_instances,
            "InstanceTypeConfigs": [
                {"InstanceType": t, "WeightedCapacity": 1, "BidPriceAsPercentageOfOnDemandPrice": 100.0} for t in types
            ],
            "LaunchSpecifications": {"SpotSpecification": {
                "TimeoutDurationMinutes": 20, "TimeoutAction": "SWITCH_TO_ON_DEMAND",
                "AllocationStrategy": "price-capacity-optimized",
            }},
        })
    instances = {"InstanceFleets": fleets, "KeepJobFlowAliveWhenNoSteps": False, "TerminationProtected": False}
    if emr.subnet_ids:
        instances["Ec2SubnetIds"] = list(emr.subnet_ids)
    steps = []
    for step in emr.steps:
        entry, entry_args = step_entry(cfg, layout, step)
        steps.append({
            "Name": f"darkhaloscope {step}",
            "ActionOnFailure": "TERMINATE_CLUSTER",
            "HadoopJarStep": {"Jar": "command-runner.jar",
                              "Args": ["spark-submit", *spark_submit_args(cfg, layout, step), entry, *entry_args]},
        })
    return {
        "Name": f"darkhaloscope-{cfg.generate.dataset_name}-{config_hash(cfg)[:8]}",
        "LogUri": layout.logs,
        "ReleaseLabel": emr.release_label,
        "Applications": [{"Name": "Spark"}],
        "Instances": instances,
        "Steps": steps,
        "BootstrapActions": [{"Name": "ensure python3.11", "ScriptBootstrapAction": {"Path": layout.bootstrap, "Args": []}}],
        "Configurations": [{"Classification": "spark-defaults", "Properties": {"spark.speculation": "false"}}],
        "VisibleToAllUsers": True,
        "JobFlowRole": emr.job_flow_role,
        "ServiceRole": emr.service_role,
        "StepConcurrencyLevel": 1,
        "Tags": [{"Key": k, "Value": v} for k, v in _tags(cfg).items()],
    }


def serverless_application_request(cfg: Config) -> dict:
    """``emr-serverless.create_application`` parameters."""
    emr = cfg.emr
    req = {
        "name": f"darkhaloscope-{cfg.generate.dataset_name}",
        "releaseLabel": emr.release_label,
        "type": "SPARK",
        "clientToken": f"dhs-app-{config_hash(cfg)}",
        "maximumCapacity": {"cpu": f"{emr.serverless_max_vcpu} vCPU", "memory": f"{emr.serverless_max_vcpu * 4} GB"},
        "autoStartConfiguration": {"enabled": True},
        "autoStopConfiguration": {"enabled": True, "idleTimeoutMinutes": 15},
        "architecture": "ARM64" if platform.machine() == "aarch64" else "X86_64",
        "tags": _tags(cfg),
    }
    if emr.python == "image":
        req["imageConfiguration"] = {"imageUri": emr.serverless_image_uri}
    if emr.subnet_ids:
        req["networkConfiguration"] = {"subnetIds": list(emr.subnet_ids)}
    return req


def serverless_job_request(cfg: Config, layout: RunLayout, application_id: str, step: str, run_id: str) -> dict:
    """``emr-serverless.start_job_run`` parameters for one stage."""
    entry, entry_args = step_entry(cfg, layout, step)
    return {
        "applicationId": application_id,
        "clientToken": f"dhs-{config_hash(cfg)}-{step}-{run_id}"[:64],
        "executionRoleArn": cfg.emr.execution_role_arn,
        "name": f"darkhaloscope {step} {cfg.generate.dataset_name}",
        "jobDriver": {"sparkSubmit": {
            "entryPoint": entry,
            "entryPointArguments": entry_args,
            "sparkSubmitParameters": shlex.join(spark_submit_args(cfg, layout, step, serverless=True)),
        }},
        "configurationOverrides": {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": layout.logs}}},
        "executionTimeoutMinutes": 24 * 60,
        "tags": _tags(cfg),
    }


def validate_request(service: str, operation: str, params: dict) -> None:
    """Check ``params`` against botocore's model of ``service.operation``; ConfigError if invalid."""
    model = get_session().get_service_model(service).operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    if report.has_errors():
        raise ConfigError(f"{service} {operation} request does not match the AWS API: {report.generate_report()}",
                          field=f"{service}.{operation}")


def console_link(cfg: Config, kind: str, ident: str) -> str:
    """AWS console URL of a cluster (``kind='cluster'``) or a Serverless application."""
    region = cfg.emr.region
    base = f"https://{region}.console.aws.amazon.com/emr/home?region={region}"
    if kind == "cluster":
        return f"{base}#/clusterDetails/{ident}"
    return f"{base}#/serverless-applications/{ident}"
