"""Config section of AWS EMR runs."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import param


@dataclass(frozen=True)
class EmrConfig:
    """AWS EMR launch settings (see emr/README.md)."""

    mode: str = param("ec2", "EMR on EC2 cluster or EMR Serverless.", "", choices=("ec2", "serverless"))
    release_label: str = param("emr-7.5.0", "EMR release (7.x ships Spark 3.5).", "")
    region: str = param("us-east-1", "AWS region.", "")
    bucket: str = param("", "S3 bucket for code, environment archive, logs and output.", "")
    prefix: str = param("darkhaloscope", "Key prefix in the bucket.", "")
    instance_type: str = param("m5.2xlarge", "Core/task instance type.", "")
    master_instance_type: str = param("m5.xlarge", "Primary node instance type.", "")
    core_instances: int = param(10, "Core instances (on-demand capacity units).", "count", ge=0)
    spot_instances: int = param(24, "Task instances on spot.", "count", ge=0)
    vcpus_per_instance: int = param(8, "vCPUs per instance of instance_type.", "count", ge=1)
    hourly_price_usd: float = param(0.384, "On-demand hourly price of instance_type.", "USD/hour", ge=0.0)
    spot_discount: float = param(0.6, "Spot price discount fraction.", "fraction", ge=0.0, le=1.0)
    service_role: str = param("EMR_DefaultRole", "EMR service role.", "")
    job_flow_role: str = param("EMR_EC2_DefaultRole", "EC2 instance profile.", "")
    execution_role_arn: str = param("", "EMR Serverless job execution role ARN.", "")
    application_id: str = param("", "Existing EMR Serverless application id (empty = create).", "")
    subnet_ids: list = param([], "Subnets for the instance fleets.", "")
    spot_instance_types: list = param(["m5.2xlarge", "m5a.2xlarge", "m5d.2xlarge", "m6i.2xlarge"], "Spot task-fleet instance types (same vCPU count as instance_type; diversified for capacity).", "")
    master_hourly_price_usd: float = param(0.192, "On-demand hourly price of master_instance_type.", "USD/hour", ge=0.0)
    emr_fee_fraction: float = param(0.25, "EMR service fee as a fraction of the on-demand EC2 price (m5 family: 0.25).", "fraction", ge=0.0, le=1.0)
    executor_cores: int = param(4, "Cores per Spark executor (one Python worker per core).", "count", ge=1, le=64)
    executor_memory_gb: int = param(7, "Spark executor JVM heap.", "GiB", ge=1, le=512)
    executor_overhead_gb: int = param(4, "Executor memory overhead (holds the Python workers: bank, bricks, rendering).", "GiB", ge=1, le=512)
    parallel_efficiency: float = param(0.8, "Fraction of cluster vCPU time spent on stamps (stragglers, S3 I/O, scheduling).", "fraction", gt=0.0, le=1.0)
    startup_minutes: float = param(12.0, "Cluster provisioning + bootstrap + step start-up time added to the wall-time estimate.", "minute", ge=0.0)
    target_shard_mb: float = param(128.0, "Target Parquet shard (= partition) size used by `emr plan`.", "MB", gt=0.0)
    python: str = param("archive", "Python runtime on the cluster: venv-pack 'archive' (spark.archives) or a Serverless custom 'image'.", "", choices=("archive", "image"))
    python_prefix: str = param("/usr", "Prefix of the Python 3.11 interpreter on the nodes (EMR 7.1+: /usr/bin/python3.11); the archive's bin/python links there.", "path")
    serverless_image_uri: str = param("", "ECR image for EMR Serverless when python = 'image' (see emr/serverless/Dockerfile).", "")
    serverless_max_vcpu: int = param(400, "EMR Serverless application maximum capacity.", "vCPU", ge=1)
    catalogs: str = param("", "Sweep/tractor catalogs root read by the build-tasks step (s3://).", "URL")
    steps: list = param(["build-tasks", "generate", "report"], "Steps run by `emr launch`, in order (subset of build-tasks, stage, generate, report).", "")
    generate_from: str = param("auto", "What the generate step reads: 'hosts' (the host table at paths.hosts/<stage.name>), 'bricks' (tasks + survey), 'auto' = hosts when stage is one of emr.steps.", "", choices=("auto", "hosts", "bricks"))
    resume: bool = param(True, "Pass --resume to generate (a retried run keeps finished shards).", "")
    poll_initial_seconds: float = param(15.0, "First wait between status polls (doubles each poll).", "s", gt=0.0)
    poll_max_seconds: float = param(300.0, "Longest wait between status polls.", "s", gt=0.0)
