"""Where a run lives on S3 (:class:`RunLayout`) and the EMR settings it needs, checked before
anything is packaged or launched (split out of ``package.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..dataset.storage import is_s3, join
from ..errors import ConfigError

STEPS = ("build-tasks", "stage", "generate", "report")
JOB_FILES = ("build_tasks.py", "stage.py", "generate.py")


@dataclass(frozen=True)
class RunLayout:
    """Every S3 location a run uses (all ``s3://`` URLs)."""

    env_archive: str
    code_zip: str
    jobs: dict
    run_cli: str
    bootstrap: str
    config: str
    config_name: str
    logs: str
    dataset_root: str
    dataset: str
    manifest: str
    tasks: str
    bank: str
    bricks: str
    catalogs: str
    hosts_root: str = ""  # stage --out (paths.hosts)
    hosts: str = ""  # the host table: <hosts_root>/<stage.name>; generate --hosts reads it when non-empty


def _require_s3(name: str, value: str) -> str:
    if not is_s3(value):
        raise ConfigError(f"config field '{name}' must be an s3:// URL for EMR, got {value!r}", field=name)
    return value.rstrip("/")


def check_emr_config(cfg: Config) -> None:
    """Reject settings EMR cannot run with, naming the field."""
    emr = cfg.emr
    if not emr.bucket:
        raise ConfigError("config field 'emr.bucket' must name the S3 bucket for code, logs and output", field="emr.bucket")
    label = emr.release_label
    try:
        major, minor = (int(x) for x in label.removeprefix("emr-").split(".")[:2])
    except ValueError:
        raise ConfigError(f"config field 'emr.release_label' = {label!r} is not of the form emr-7.X.Y", field="emr.release_label") from None
    if (major, minor) < (7, 1):
        raise ConfigError(
            f"config field 'emr.release_label' = {label!r}: needs emr-7.1.0 or later (Spark 3.5 with Python 3.11 on the nodes)",
            field="emr.release_label",
        )
    unknown = [s for s in emr.steps if s not in STEPS]
    if unknown or not emr.steps:
        raise ConfigError(f"config field 'emr.steps' = {emr.steps!r}: each must be one of {', '.join(STEPS)}", field="emr.steps")
    if [s for s in STEPS if s in emr.steps] != list(emr.steps):
        raise ConfigError(f"config field 'emr.steps' = {emr.steps!r}: steps run in the order {', '.join(STEPS)}", field="emr.steps")
    if emr.mode == "ec2" and emr.python == "image":
        raise ConfigError("config field 'emr.python' = 'image' is for EMR Serverless; EMR on EC2 uses the archive", field="emr.python")
    if emr.mode == "serverless" and emr.python == "image" and not emr.serverless_image_uri:
        raise ConfigError("config field 'emr.serverless_image_uri' is required when emr.python = 'image'", field="emr.serverless_image_uri")
    if emr.mode == "serverless" and not emr.execution_role_arn:
        raise ConfigError("config field 'emr.execution_role_arn' is required for EMR Serverless", field="emr.execution_role_arn")
    if emr.executor_cores > emr.vcpus_per_instance:
        raise ConfigError("config field 'emr.executor_cores' exceeds emr.vcpus_per_instance", field="emr.executor_cores")
    if "build-tasks" in emr.steps:
        _require_s3("emr.catalogs", emr.catalogs)
    for name in ("dataset", "tasks", "bank"):
        _require_s3(f"paths.{name}", getattr(cfg.paths, name))
    if "stage" in emr.steps or uses_hosts(cfg):
        _require_s3("paths.hosts", cfg.paths.hosts)
    if emr.generate_from == "hosts" and "generate" not in emr.steps:
        raise ConfigError("config field 'emr.generate_from' = 'hosts' needs the generate step in emr.steps", field="emr.generate_from")
    if not (is_s3(cfg.paths.survey_root) or cfg.paths.survey_root.startswith("https://")):
        raise ConfigError("config field 'paths.survey_root' must be s3:// or https:// for EMR", field="paths.survey_root")


def uses_hosts(cfg: Config) -> bool:
    """Does the generate step read a host table? ``emr.generate_from``: 'hosts', 'bricks', or
    'auto' = hosts exactly when stage is one of the steps (stage then generate)."""
    mode = cfg.emr.generate_from
    return mode == "hosts" or (mode == "auto" and "stage" in cfg.emr.steps)


def run_layout(cfg: Config, code_ids: str, env_ids: str) -> RunLayout:
    """Where everything lives on S3 for this config, code and environment."""
    check_emr_config(cfg)
    base = f"s3://{cfg.emr.bucket}/{cfg.emr.prefix.strip('/')}".rstrip("/")
    code = f"{base}/code/{code_ids}"
    dataset_root = cfg.paths.dataset.rstrip("/")
    name = cfg.generate.dataset_name
    jobs = {n: f"{code}/jobs/{n}" for n in JOB_FILES}
    hosts_root = cfg.paths.hosts.rstrip("/")
    return RunLayout(
        env_archive=f"{base}/env/{env_ids}/env.tar.gz",
        code_zip=f"{code}/darkhaloscope.zip",
        jobs=jobs,
        run_cli=f"{code}/run_cli.py",
        bootstrap=f"{code}/bootstrap/ensure-python311.sh",
        config=join(dataset_root, f"{name}.config.yaml"),
        config_name=f"{name}.config.yaml",
        logs=f"{base}/logs/",
        dataset_root=dataset_root,
        dataset=join(dataset_root, name),
        manifest=join(dataset_root, name, "_manifest.json"),
        tasks=cfg.paths.tasks.rstrip("/"),
        bank=cfg.paths.bank,
        bricks=cfg.paths.survey_root.rstrip("/"),
        catalogs=cfg.emr.catalogs.rstrip("/"),
        hosts_root=hosts_root,
        hosts=join(hosts_root, cfg.stage.name) if uses_hosts(cfg) else "",
    )


