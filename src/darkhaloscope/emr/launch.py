"""``emr launch``: send the requests, wait with exponential back-off, print the final manifest.

The flow: check that ``emr package`` uploaded the environment and code for this very code and
requirement set (HEAD on S3), upload the resolved config beside the output, then either

* EMR on EC2: ``run_job_flow`` -> poll ``describe_cluster`` + ``list_steps`` until the cluster
  terminates (success = every step COMPLETED and ``ALL_STEPS_COMPLETED``), or
* EMR Serverless: ``create_application`` (unless ``emr.application_id``) -> wait until CREATED ->
  per stage ``start_job_run`` -> poll ``get_job_run`` until SUCCESS,

and finally read ``<out>/<dataset>/_manifest.json`` and print it. ``dry_run`` validates every
request against botocore's service models and prints it without sending anything.
Clients and ``sleep`` are injected, so the whole flow runs offline against botocore's Stubber.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from ..config import Config
from ..errors import ConfigError, DatasetError, StorageError
from . import package as pkg
from .requests import (
    console_link,
    ec2_request,
    serverless_application_request,
    serverless_job_request,
    validate_request,
)

EC2_DONE = {"TERMINATED", "TERMINATED_WITH_ERRORS"}
JOB_DONE = {"SUCCESS", "FAILED", "CANCELLED"}
APP_READY = {"CREATED", "STARTED"}
APP_BAD = {"TERMINATED", "STOPPED"}


@dataclass
class Clients:
    """boto3 clients used by the launch (any may be None in a dry run)."""

    s3: object = None
    emr: object = None
    serverless: object = None


def make_clients(cfg: Config, s3_endpoint: str = "") -> Clients:
    """Real boto3 clients for the config's region (credentials from the usual AWS chain)."""
    import boto3

    region = cfg.emr.region
    return Clients(
        s3=boto3.client("s3", region_name=region, endpoint_url=s3_endpoint or None),
        emr=boto3.client("emr", region_name=region),
        serverless=boto3.client("emr-serverless", region_name=region),
    )


def backoff(initial: float, maximum: float, factor: float = 2.0) -> Iterator[float]:
    """Delays initial, initial*factor, ... capped at maximum (seconds)."""
    delay = initial
    while True:
        yield min(delay, maximum)
        delay = min(delay * factor, maximum)


def _summarise(obj, max_items: int = 8):
    """Shorten long lists (a 4000-shard manifest) for printing."""
    if isinstance(obj, dict):
        return {k: _summarise(v, max_items) for k, v in obj.items()}
    if isinstance(obj, list) and len(obj) > max_items:
        return [_summarise(v, max_items) for v in obj[:3]] + [f"... {len(obj) - 3} more"]
    return obj


def planned_requests(cfg: Config, layout: pkg.RunLayout, run_id: str) -> list[tuple[str, str, dict]]:
    """(service, operation, params) of every request the launch sends, validated offline."""
    out = []
    if cfg.emr.mode == "ec2":
        out.append(("emr", "RunJobFlow", ec2_request(cfg, layout)))
    else:
        app = cfg.emr.application_id or "<application-id from CreateApplication>"
        if not cfg.emr.application_id:
            out.append(("emr-serverless", "CreateApplication", serverless_application_request(cfg)))
        for step in cfg.emr.steps:
            out.append(("emr-serverless", "StartJobRun", serverless_job_request(cfg, layout, app, step, run_id)))
    for service, op, params in out:
        validate_request(service, op, params)
    return out


def _preflight(s3, layout: pkg.RunLayout, cfg: Config) -> None:
    needed = [layout.code_zip, layout.run_cli, layout.bootstrap]
    needed += list(layout.jobs.values())
    if cfg.emr.python == "archive":
        needed.append(layout.env_archive)
    missing = [u for u in needed if not pkg.s3_exists(s3, u)]
    if missing:
        raise StorageError(
            f"not on S3 for this code/requirements: {missing}; run `darkhaloscope emr package` first",
            path=missing[0],
        )
    if layout.hosts and "stage" not in cfg.emr.steps and not pkg.s3_exists(s3, f"{layout.hosts}/_SUCCESS"):
        raise StorageError(f"generate reads the host table {layout.hosts} (emr.generate_from = {cfg.emr.generate_from!r}) but it has no "
                           "_SUCCESS: add 'stage' to emr.steps or stage it first", path=layout.hosts, field="emr.generate_from")


def read_manifest(s3, url: str) -> dict:
    """The dataset manifest written by generate (``<out>/<dataset>/_manifest.json``)."""
    bucket, key = pkg.split_s3(url)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return json.loads(body)
    except ValueError as exc:
        raise DatasetError(f"manifest {url} is not valid JSON: {exc}", path=url) from None
    except Exception as exc:  # botocore ClientError and friends
        raise DatasetError(f"cannot read the manifest {url}: {exc}", path=url) from None


def wait_cluster(emr, cfg: Config, cluster_id: str, sleep: Callable[[float], None], log, logs: str = "") -> None:
    """Poll the cluster and its steps with back-off until it terminates; raise unless all done."""
    delays = backoff(cfg.emr.poll_initial_seconds, cfg.emr.poll_max_seconds)
    seen: dict[str, str] = {}
    while True:
        status = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]
        steps = emr.list_steps(ClusterId=cluster_id)["Steps"]
        for step in reversed(steps):  # list_steps is newest first
            state = step["Status"]["State"]
            if seen.get(step["Id"]) != state:
                seen[step["Id"]] = state
                log(f"[emr launch] step {step['Name']!r}: {state}")
        state = status["State"]
        if seen.get("cluster") != state:
            seen["cluster"] = state
            log(f"[emr launch] cluster {cluster_id}: {state}")
        if state in EC2_DONE:
            reason = status.get("StateChangeReason", {})
            ok = state == "TERMINATED" and reason.get("Code") == "ALL_STEPS_COMPLETED"
            ok = ok and all(s["Status"]["State"] == "COMPLETED" for s in steps)
            if not ok:
                raise DatasetError(
                    f"EMR cluster {cluster_id} ended {state}: {reason.get('Code', '')} {reason.get('Message', '')}; "
                    f"step logs under {logs}{cluster_id}/steps/",
                    path=cluster_id, reason=reason.get("Code", state),
                )
            return
        sleep(next(delays))


def wait_application(sls, cfg: Config, app_id: str, sleep, log) -> None:
    """Wait until a new Serverless application can take job runs."""
    delays = backoff(cfg.emr.poll_initial_seconds, cfg.emr.poll_max_seconds)
    while True:
        state = sls.get_application(applicationId=app_id)["application"]["state"]
        if state in APP_READY:
            log(f"[emr launch] application {app_id}: {state}")
            return
        if state in APP_BAD:
            raise DatasetError(f"EMR Serverless application {app_id} is {state}", path=app_id, reason=state)
        sleep(next(delays))


def wait_job(sls, cfg: Config, app_id: str, job_id: str, step: str, sleep, log) -> None:
    """Poll one Serverless job run with back-off until it ends; raise unless SUCCESS."""
    delays = backoff(cfg.emr.poll_initial_seconds, cfg.emr.poll_max_seconds)
    last = None
    while True:
        run = sls.get_job_run(applicationId=app_id, jobRunId=job_id)["jobRun"]
        state = run["state"]
        if state != last:
            log(f"[emr launch] {step} job run {job_id}: {state}")
            last = state
        if state in JOB_DONE:
            if state != "SUCCESS":
                raise DatasetError(f"EMR Serverless {step} job run {job_id} ended {state}: {run.get('stateDetails', '')}",
                                   path=job_id, reason=state)
            return
        sleep(next(delays))


def launch(cfg: Config, clients: Clients | None = None, *, dry_run: bool = False, wait: bool = True,
           repo=pkg.REPO_ROOT, run_id: str | None = None, sleep: Callable[[float], None] = time.sleep,
           log=print) -> dict:
    """Run the configured stages on EMR. Returns {'id': cluster/application id, 'manifest': dict}."""
    run_id = run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    plan = pkg.plan_package(cfg, repo, build_env=False)
    layout = plan.layout
    requests = planned_requests(cfg, layout, run_id)
    config_upload = next(u for u in plan.uploads if u.what == "resolved config")
    if dry_run:
        log(f"[emr launch] dry run ({cfg.emr.mode}): would upload the resolved config to {config_upload.url}")
        for service, op, params in requests:
            log(f"[emr launch] would send {service} {op} (validated against botocore's model):")
            log(json.dumps(params, indent=2))
        log(f"[emr launch] then poll with back-off from {cfg.emr.poll_initial_seconds:g} s to "
            f"{cfg.emr.poll_max_seconds:g} s and print {layout.manifest}")
        return {"id": None, "manifest": None, "requests": requests}
    if cfg.emr.mode == "serverless" and not wait and len(cfg.emr.steps) > 1:
        raise ConfigError("EMR Serverless runs the stages one after another: --no-wait needs emr.steps with one stage",
                          field="emr.steps")
    clients = clients or make_clients(cfg)
    _preflight(clients.s3, layout, cfg)
    pkg.upload(pkg.PackagePlan(layout, plan.requirements, [], [config_upload]), clients.s3, log=log)
    if cfg.emr.mode == "ec2":
        resp = clients.emr.run_job_flow(**requests[0][2])
        ident = resp["JobFlowId"]
        log(f"[emr launch] cluster {ident}: {console_link(cfg, 'cluster', ident)}")
        log(f"[emr launch] logs: {layout.logs}{ident}/")
        if not wait:
            return {"id": ident, "manifest": None}
        wait_cluster(clients.emr, cfg, ident, sleep, log, logs=layout.logs)
    else:
        sls = clients.serverless
        ident = cfg.emr.application_id
        jobs = requests
        if not ident:
            ident = sls.create_application(**requests[0][2])["applicationId"]
            jobs = requests[1:]
            wait_application(sls, cfg, ident, sleep, log)
        log(f"[emr launch] application {ident}: {console_link(cfg, 'serverless', ident)}")
        for (_, _, params), step in zip(jobs, cfg.emr.steps, strict=True):
            params = {**params, "applicationId": ident}
            job_id = sls.start_job_run(**params)["jobRunId"]
            log(f"[emr launch] {step}: job run {job_id} (logs under {layout.logs})")
            if not wait:
                return {"id": ident, "job_run": job_id, "manifest": None}
            wait_job(sls, cfg, ident, job_id, step, sleep, log)
    manifest = read_manifest(clients.s3, layout.manifest)
    log(f"[emr launch] done. manifest {layout.manifest}:")
    log(json.dumps(_summarise(manifest), indent=2, default=str))
    return {"id": ident, "manifest": manifest}
