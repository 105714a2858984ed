"""Package the job environment and code for EMR, and upload them to S3.

What goes to the cluster (see emr/README.md for the why):

* ``env.tar.gz``: a venv-pack archive of a fresh virtual environment holding the project's
  compiled dependencies (numpy, scipy, galsim, lenstronomy, pyarrow, astropy, h5py, ...), pinned
  to the versions installed here, without pyspark (EMR brings Spark 3.5's). venv-pack does not
  carry the interpreter: ``bin/python`` is rewritten to link to ``<python_prefix>/bin/python3.11``,
  which EMR 7.1+ ships on every node (the bootstrap script installs it if it is missing). Spark
  gets it with ``spark.archives=<url>#environment`` and ``PYSPARK_PYTHON=./environment/bin/python``.
  Keyed by a hash of the pinned requirements, so it is rebuilt only when the dependencies change.
* ``darkhaloscope.zip`` (``--py-files``), ``jobs/*.py``, ``run_cli.py`` and the bootstrap script,
  keyed by a hash of their bytes, so a code change uploads ~0.3 MB instead of the environment.
* the resolved config (every field, defaults included) beside the output dataset.

Nothing here talks to AWS unless :func:`upload` is called with an S3 client.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import platform
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import yaml
from packaging.requirements import Requirement

from ..config import Config, config_hash, config_to_dict
from ..errors import DataFileError, StorageError
from .layout import JOB_FILES, RunLayout, check_emr_config, run_layout

__all__ = ["REPO_ROOT", "PackagePlan", "RunLayout", "Upload", "check_emr_config", "package", "plan_package", "run_layout", "upload"]

REPO_ROOT = Path(__file__).resolve().parents[3]
# EMR provides pyspark (Spark 3.5); pandas stays (pyspark's Arrow helpers use it).
EXCLUDED_FROM_ENV = {"pyspark"}
ENV_EXTRAS = ("spark",)
PYTHON_VERSION = "3.11"
# Amazon Linux 2023 (EMR 7.x) has glibc 2.34: every compiled wheel must be manylinux <= 2.34.
MAX_GLIBC = (2, 34)
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Upload:
    """One object to upload: from a local file (``source``) or from bytes (``data``)."""

    what: str
    url: str
    size: int
    source: Path | None = None
    data: bytes | None = None


@dataclass
class PackagePlan:
    """What ``emr package`` includes and where each piece goes."""

    layout: RunLayout
    requirements: list[str]
    code_files: list[tuple[str, Path]]
    uploads: list[Upload] = field(default_factory=list)
    env_note: str = ""
    python_link: str = ""

    def describe(self) -> str:
        lines = [f"environment archive (venv-pack, Python {PYTHON_VERSION}, bin/python -> {self.python_link}):"]
        lines += [f"  {r}" for r in self.requirements]
        lines.append(f"  -> {self.layout.env_archive}   [{self.env_note}]")
        lines.append(f"code ({len(self.code_files)} files):")
        lines += [f"  {arc}" for arc, _ in self.code_files]
        lines.append("uploads:")
        for up in self.uploads:
            size = f"{up.size / 1e6:.3f} MB" if up.size >= 0 else "size known after build"
            lines.append(f"  {up.what:32s} {size:>14s}  {up.url}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Requirements
# --------------------------------------------------------------------------------------------


def project_requirements(repo: Path = REPO_ROOT) -> list[Requirement]:
    """The project's runtime dependencies (+ the ``spark`` extra) minus what EMR provides."""
    pyproject = Path(repo) / "pyproject.toml"
    try:
        meta = tomllib.loads(pyproject.read_text())["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise DataFileError(f"cannot read [project] from {pyproject}: {exc}", path=str(pyproject)) from None
    specs = list(meta.get("dependencies", []))
    for extra in ENV_EXTRAS:
        specs += meta.get("optional-dependencies", {}).get(extra, [])
    reqs, seen = [], set()
    for spec in specs:
        req = Requirement(spec)
        name = req.name.lower()
        if name in EXCLUDED_FROM_ENV or name in seen:
            continue
        seen.add(name)
        reqs.append(req)
    return reqs


def pin_requirements(reqs: list[Requirement]) -> list[str]:
    """Pin each requirement to the version installed here (what the tests ran against)."""
    pins = []
    for req in reqs:
        try:
            version = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            raise DataFileError(
                f"dependency '{req.name}' is not installed in this environment; install the project first",
                path="pyproject.toml", field=req.name,
            ) from None
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            raise DataFileError(
                f"installed {req.name} {version} does not satisfy '{req}'", path="pyproject.toml", field=req.name
            )
        pins.append(f"{req.name}=={version}")
    return sorted(pins, key=str.lower)


def env_id(pins: list[str], python_prefix: str) -> str:
    """12-hex id of an environment: requirements, Python version, platform, interpreter prefix."""
    key = "\n".join([*pins, PYTHON_VERSION, platform.machine(), python_prefix])
    return hashlib.sha256(key.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------------
# Code
# --------------------------------------------------------------------------------------------


def code_files(repo: Path = REPO_ROOT) -> list[tuple[str, Path]]:
    """(name in the code zip, local path) for the package: every .py and py.typed, sorted."""
    pkg = Path(repo) / "src" / "darkhaloscope"
    files = [
        p for p in pkg.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and (p.suffix == ".py" or p.name == "py.typed")
    ]
    return sorted((p.relative_to(pkg.parent).as_posix(), p) for p in files)


def job_files(repo: Path = REPO_ROOT) -> dict[str, Path]:
    """spark-submit entry points under jobs/ (name -> path)."""
    repo = Path(repo)
    jobs = {p.name: p for p in sorted((repo / "jobs").glob("*.py"))}
    return jobs


def build_code_zip(files: list[tuple[str, Path]]) -> bytes:
    """A deterministic zip (sorted names, fixed timestamps) of the package for ``--py-files``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, path in files:
            info = zipfile.ZipInfo(arcname, date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def code_id(payloads: dict[str, bytes]) -> str:
    """12-hex id of the code: sha256 over (name, bytes) of everything uploaded as code."""
    h = hashlib.sha256()
    for name in sorted(payloads):
        h.update(name.encode() + b"\0" + hashlib.sha256(payloads[name]).digest())
    return h.hexdigest()[:12]


def resolved_config_yaml(cfg: Config) -> bytes:
    """The resolved config (every field) as YAML, with its hash in a header comment."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=True)
    return f"# darkhaloscope resolved config, config_hash {config_hash(cfg)}\n{text}".encode()


# --------------------------------------------------------------------------------------------
# Layout and plan
# --------------------------------------------------------------------------------------------


def plan_package(cfg: Config, repo: Path = REPO_ROOT, env_archive: Path | None = None,
                 build_env: bool = True) -> PackagePlan:
    """Everything ``emr package`` includes and uploads, computed from local files only."""
    repo = Path(repo)
    pins = pin_requirements(project_requirements(repo))
    files = code_files(repo)
    payloads = {"darkhaloscope.zip": build_code_zip(files)}
    jobs = job_files(repo)
    missing = [n for n in JOB_FILES if n not in jobs]
    if missing:
        raise DataFileError(f"spark entry points missing under {repo / 'jobs'}: {missing}", path=str(repo / "jobs"))
    for name, path in jobs.items():
        payloads[f"jobs/{name}"] = path.read_bytes()
    for name, rel in (("run_cli.py", "emr/run_cli.py"), ("bootstrap/ensure-python311.sh", "emr/bootstrap/ensure-python311.sh")):
        path = repo / rel
        if not path.is_file():
            raise DataFileError(f"missing {path}", path=str(path))
        payloads[name] = path.read_bytes()
    layout = run_layout(cfg, code_id(payloads), env_id(pins, cfg.emr.python_prefix))
    code_base = layout.code_zip.rsplit("/", 1)[0]
    listed = [(f"darkhaloscope.zip:{arc}", p) for arc, p in files]
    listed += [(f"jobs/{n}", p) for n, p in jobs.items()]
    listed += [("run_cli.py", repo / "emr/run_cli.py"), ("bootstrap/ensure-python311.sh", repo / "emr/bootstrap/ensure-python311.sh")]
    uploads = []
    if env_archive is not None:
        env_archive = Path(env_archive)
        if not env_archive.is_file():
            raise DataFileError(f"environment archive not found: {env_archive}", path=str(env_archive))
        uploads.append(Upload("environment archive", layout.env_archive, env_archive.stat().st_size, source=env_archive))
        note = f"given: {env_archive}"
    elif build_env:
        uploads.append(Upload("environment archive", layout.env_archive, -1))
        note = "built by venv-pack, uploaded if absent"
    else:
        note = "not built (--skip-env): must already exist on S3"
    for name, data in payloads.items():
        uploads.append(Upload(f"code {name}", f"{code_base}/{name}", len(data), data=data))
    cfg_bytes = resolved_config_yaml(cfg)
    uploads.append(Upload("resolved config", layout.config, len(cfg_bytes), data=cfg_bytes))
    link = f"{cfg.emr.python_prefix.rstrip('/')}/bin/python{PYTHON_VERSION}"
    return PackagePlan(layout, pins, listed, uploads, note, link)


# --------------------------------------------------------------------------------------------
# Building the environment archive
# --------------------------------------------------------------------------------------------


def _base_python() -> Path:
    """The base interpreter, called as ``<prefix>/bin/python`` so venv-pack can relink it."""
    candidate = Path(sys.base_prefix) / "bin" / "python"
    if candidate.exists():
        return candidate
    raise DataFileError(
        f"no {candidate}: venv-pack relinks '<prefix>/bin/python' only; create a 'python' link there",
        path=str(candidate),
    )


def check_wheel_tags(venv: Path, max_glibc: tuple[int, int] = MAX_GLIBC) -> list[str]:
    """Every installed distribution's wheel tags; raise if one needs a newer glibc than EMR's."""
    tags, bad = [], []
    machine = platform.machine()
    for wheel in sorted(venv.glob("lib/python*/site-packages/*.dist-info/WHEEL")):
        for line in wheel.read_text().splitlines():
            if not line.startswith("Tag:"):
                continue
            tag = line.split(":", 1)[1].strip()
            tags.append(f"{wheel.parent.name}: {tag}")
            plat = tag.rsplit("-", 1)[-1]
            if plat == "any":
                continue
            ok = False
            for p in plat.split("."):
                if p.startswith("manylinux_"):
                    major, minor, arch = p[len("manylinux_"):].split("_", 2)
                    ok |= (int(major), int(minor)) <= max_glibc and arch == machine
                elif p.startswith(("manylinux1_", "manylinux2010_", "manylinux2014_")):
                    ok |= p.endswith(machine)
            if not ok:
                bad.append(f"{wheel.parent.name} ({tag})")
    if bad:
        raise DataFileError(
            f"wheels not portable to EMR 7 (Amazon Linux 2023, glibc {max_glibc[0]}.{max_glibc[1]}, {machine}): {bad}",
            path=str(venv),
        )
    return tags


def verify_archive(archive: Path, python_prefix: str) -> None:
    """The archive's bin/python must link to the nodes' interpreter, not to this machine's."""
    want = f"{python_prefix.rstrip('/')}/bin/python{PYTHON_VERSION}"
    with tarfile.open(archive) as tf:
        members = {m.name: m for m in tf.getmembers()}  # last wins, as on extraction
        link = members.get("bin/python")
        cfg = tf.extractfile(members["pyvenv.cfg"]).read().decode() if "pyvenv.cfg" in members else ""
    if link is None or not link.issym() or link.linkname != want:
        got = link.linkname if link is not None else None
        raise DataFileError(f"{archive}: bin/python links to {got!r}, expected {want!r}", path=str(archive))
    if f"home = {python_prefix.rstrip('/')}/bin" not in cfg:
        raise DataFileError(f"{archive}: pyvenv.cfg does not point at {python_prefix}/bin", path=str(archive))


def build_env_archive(pins: list[str], build_dir: Path, python_prefix: str, log=print) -> Path:
    """Create a fresh venv, pip-install the pinned requirements, venv-pack it, verify it."""
    import venv_pack

    if sys.version_info[:2] != (3, 11):
        raise DataFileError(f"the environment must be built with Python {PYTHON_VERSION}, running {sys.version.split()[0]}", path=sys.executable)
    build_dir = Path(build_dir)
    venv = build_dir / "venv"
    archive = build_dir / "env.tar.gz"
    build_dir.mkdir(parents=True, exist_ok=True)
    req_file = build_dir / "requirements.txt"
    req_file.write_text("\n".join(pins) + "\n")
    log(f"[emr package] creating {venv} from {_base_python()}")
    subprocess.run([str(_base_python()), "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    log(f"[emr package] pip install {len(pins)} pinned requirements (binary wheels preferred)")
    subprocess.run([*pip, "--prefer-binary", "-r", str(req_file)], check=True)
    check_wheel_tags(venv)
    log(f"[emr package] venv-pack -> {archive} (python prefix {python_prefix})")
    venv_pack.pack(prefix=str(venv), output=str(archive), python_prefix=python_prefix, force=True, compress_level=6)
    verify_archive(archive, python_prefix)
    return archive


# --------------------------------------------------------------------------------------------
# Upload
# --------------------------------------------------------------------------------------------


def split_s3(url: str) -> tuple[str, str]:
    """('bucket', 'key') of an s3:// URL."""
    p = urlparse(url)
    return p.netloc, p.path.lstrip("/")


def s3_exists(s3, url: str) -> bool:
    """True when the object exists (HEAD); other errors raise StorageError."""
    from botocore.exceptions import ClientError

    bucket, key = split_s3(url)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise StorageError(f"cannot check {url}: {exc}", path=url) from None


def upload(plan: PackagePlan, s3, log=print) -> list[str]:
    """Upload the plan's objects (the environment only when not already there). Returns URLs."""
    from botocore.exceptions import BotoCoreError, ClientError

    done = []
    for up in plan.uploads:
        if up.what == "environment archive" and up.source is None:
            continue  # nothing to send: build first
        if up.what == "environment archive" and s3_exists(s3, up.url):
            log(f"[emr package] {up.url} already exists (same requirements): kept")
            continue
        bucket, key = split_s3(up.url)
        try:
            if up.source is not None:
                s3.upload_file(str(up.source), bucket, key)
            else:
                s3.put_object(Bucket=bucket, Key=key, Body=up.data)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise StorageError(f"upload of {up.what} to {up.url} failed: {exc}", path=up.url) from None
        log(f"[emr package] uploaded {up.what} -> {up.url}")
        done.append(up.url)
    return done


def package(cfg: Config, *, s3=None, dry_run: bool = False, repo: Path = REPO_ROOT,
            env_archive: Path | None = None, skip_env: bool = False,
            build_dir: Path | None = None, log=print) -> PackagePlan:
    """``emr package``: plan; unless dry-run, build the environment if needed and upload."""
    plan = plan_package(cfg, repo, env_archive=env_archive, build_env=not skip_env)
    if dry_run:
        log(plan.describe())
        log("[emr package] dry run: nothing built, nothing uploaded")
        return plan
    if s3 is None:
        raise StorageError("an S3 client is required to upload", path=plan.layout.code_zip)
    if env_archive is None and not skip_env:
        if s3_exists(s3, plan.layout.env_archive):
            log(f"[emr package] {plan.layout.env_archive} exists (same requirements): not rebuilt")
        else:
            build_dir = Path(build_dir or os.environ.get("DHS_EMR_BUILD", REPO_ROOT / "build" / "emr"))
            built = build_env_archive(plan.requirements, build_dir, cfg.emr.python_prefix, log=log)
            plan.uploads[0] = Upload("environment archive", plan.layout.env_archive, built.stat().st_size, source=built)
    log(plan.describe())
    upload(plan, s3, log=log)
    return plan
