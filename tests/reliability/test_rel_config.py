"""Fault 6: bad configs and missing inputs. ``darkhaloscope generate`` (and the spark-submit entry
point ``jobs/generate.py``) must exit non-zero with an error naming the field, before any Spark
work: the child process runs with SPARK_HOME and JAVA_HOME pointing nowhere, so any attempt to
start a SparkSession would fail with a different error, and it reports whether pyspark was even
imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHILD = (
    "import sys\n"
    "from darkhaloscope import cli\n"
    "rc = cli.main(sys.argv[1:])\n"
    "print('DHS_PYSPARK_IMPORTED=%s' % ('pyspark' in sys.modules), file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def _env() -> dict:
    env = dict(os.environ)
    env.update(SPARK_HOME="/nonexistent/dhs-no-spark", JAVA_HOME="/nonexistent/dhs-no-java", PYSPARK_GATEWAY_PORT="")
    env.pop("PYSPARK_GATEWAY_PORT")
    return env


def run_cli(*args: str) -> subprocess.CompletedProcess:
    # timeout only guards against a hang; speed is not asserted (benchmarks measure it)
    return subprocess.run([sys.executable, "-c", CHILD, "generate", *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=180)


def write_config(path: Path, data: dict) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _assert_named_before_spark(proc: subprocess.CompletedProcess, field_words: tuple[str, ...]) -> None:
    err = proc.stderr
    assert proc.returncode != 0, err
    assert "darkhaloscope generate: error:" in err, err
    assert any(w in err for w in field_words), err
    assert "DHS_PYSPARK_IMPORTED=False" in err, err  # no Spark at all, not even the module
    assert "Traceback" not in err and "spark-submit" not in err, err


BAD_CONFIGS = {
    "unknown-key": ({"generate": {"n_partitons": 3}}, ("generate.n_partitons",)),
    "unknown-section": ({"lenses": {"theta_e_min": 1.0}}, ("lenses",)),
    "negative-theta-e-min": ({"lens": {"theta_e_min": -0.5}}, ("lens.theta_e_min",)),
    "negative-theta-e-max": ({"lens": {"theta_e_max": -1.0}}, ("lens.theta_e_max",)),
    "theta-e-min-above-max": ({"lens": {"theta_e_min": 2.0, "theta_e_max": 1.0}}, ("lens.theta_e_min",)),
    "split-fractions-sum": ({"tasks": {"split_fractions": {"train": 0.5, "val": 0.3, "test": 0.3}}}, ("tasks.split_fractions",)),
    "split-fractions-keys": ({"tasks": {"split_fractions": {"train": 0.5, "test": 0.5}}}, ("tasks.split_fractions",)),
    "wrong-type": ({"generate": {"n_partitions": "four"}}, ("generate.n_partitions",)),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_named_before_spark(case, tmp_path):
    data, words = BAD_CONFIGS[case]
    cfg = write_config(tmp_path / "bad.yaml", data)
    proc = run_cli("--config", cfg, "--tasks", str(tmp_path), "--bricks", str(tmp_path), "--bank", str(tmp_path / "b.h5"), "--out", str(tmp_path / "o"))
    _assert_named_before_spark(proc, words)


def test_missing_config_file_is_named(tmp_path):
    proc = run_cli("--config", str(tmp_path / "nope.yaml"))
    _assert_named_before_spark(proc, ("config file not found", "nope.yaml"))


@pytest.mark.parametrize("missing", ["tasks", "bricks", "bank"])
def test_missing_input_path_is_named_before_spark(missing, world, tmp_path):
    """An input that does not exist: the error names the option / config field, no Spark started."""
    args = {"tasks": str(world.tasks_dir), "bricks": str(world.survey), "bank": str(world.bank)}
    args[missing] = str(tmp_path / f"no-such-{missing}")
    cfg = write_config(tmp_path / "ok.yaml", {"generate": {"n_partitions": 2}})
    proc = run_cli("--config", cfg, "--tasks", args["tasks"], "--bricks", args["bricks"], "--bank", args["bank"], "--out", str(tmp_path / "o"))
    field = {"tasks": "paths.tasks", "bricks": "paths.survey_root", "bank": "paths.bank"}[missing]
    _assert_named_before_spark(proc, (field,))
    assert f"no-such-{missing}" in proc.stderr


def test_empty_path_in_config_is_named(world, tmp_path):
    cfg = write_config(tmp_path / "ok.yaml", {"paths": {"bank": ""}})
    proc = run_cli("--config", cfg, "--tasks", str(world.tasks_dir), "--bricks", str(world.survey), "--out", str(tmp_path / "o"))
    _assert_named_before_spark(proc, ("paths.bank",))


def test_spark_submit_entry_point_names_the_field(tmp_path):
    """``jobs/generate.py`` (what spark-submit runs) fails the same way, with the field named."""
    cfg = write_config(tmp_path / "bad.yaml", {"lens": {"theta_e_min": -0.5}})
    proc = subprocess.run([sys.executable, str(REPO / "jobs" / "generate.py"), "--config", cfg], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0 and "lens.theta_e_min" in proc.stderr, proc.stderr
    assert "spark-submit" not in proc.stderr and "JAVA_HOME" not in proc.stderr
