"""config: YAML -> typed config, unknown keys and bad values name the field, stable hash."""

from __future__ import annotations

import pickle

import pytest

from darkhaloscope.config import (
    Config,
    config_from_dict,
    config_hash,
    config_to_dict,
    load_config,
    replace,
)
from darkhaloscope.errors import ConfigError


def test_demo_config_loads_with_survey_and_tasks_values():
    cfg = load_config("configs/demo.yaml")
    assert isinstance(cfg, Config)
    assert cfg.survey.bands == "grz"
    assert cfg.survey.synthetic.n_bricks_ra == 6 and cfg.survey.synthetic.brick_size_pix == 1800
    assert cfg.survey.synthetic.sky_sigma_r == 0.0025 and cfg.survey.synthetic.lrg_min_separation_pix == 64
    assert cfg.tasks.split_fractions == {"train": 0.26, "val": 0.39, "test": 0.35}
    assert cfg.tasks.lrg.zfiber_max == 21.6 and cfg.tasks.lrg.zfibertot_min == 17.5


def test_unknown_key_names_the_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("survey:\n  synthetic:\n    n_bricks_raa: 3\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert ei.value.field == "survey.synthetic.n_bricks_raa"
    assert "survey.synthetic.n_bricks_raa" in str(ei.value)


def test_out_of_range_and_wrong_type_name_the_field():
    with pytest.raises(ConfigError) as ei:
        config_from_dict({"survey": {"synthetic": {"brick_size_pix": 10}}})
    assert ei.value.field == "survey.synthetic.brick_size_pix" and ">= 128" in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        config_from_dict({"tasks": {"lrg": {"require_nobs": "yes"}}})
    assert ei.value.field == "tasks.lrg.require_nobs"
    with pytest.raises(ConfigError) as ei:
        config_from_dict({"tasks": {"split_fractions": {"train": 0.5, "val": 0.5, "test": 0.5}}})
    assert ei.value.field == "tasks.split_fractions"


def test_seeing_range_cross_check():
    with pytest.raises(ConfigError) as ei:
        config_from_dict({"survey": {"synthetic": {"seeing_r_min": 1.5, "seeing_r_max": 1.0}}})
    assert ei.value.field == "survey.synthetic.seeing_r_min"


def test_hash_is_stable_and_sensitive():
    a = config_from_dict({})
    b = config_from_dict(config_to_dict(a))
    assert config_hash(a) == config_hash(b)
    c = replace(a, **{"tasks.lrg.zfiber_max": 21.5})
    assert c.tasks.lrg.zfiber_max == 21.5
    assert config_hash(c) != config_hash(a)
    assert pickle.loads(pickle.dumps(a)) == a


def test_replace_validates():
    with pytest.raises(ConfigError):
        replace(config_from_dict({}), **{"survey.brick_cache_size": 0})


def test_hash_ignores_execution_only_fields_but_not_data_fields():
    from darkhaloscope.config import config_from_dict, config_hash

    base = config_hash(config_from_dict({}))
    assert config_hash(config_from_dict({"generate": {"n_partitions": 7, "s3_endpoint": "http://127.0.0.1:9"}})) == base
    assert config_hash(config_from_dict({"paths": {"dataset": "s3://elsewhere/x"}})) == base
    assert config_hash(config_from_dict({"lens": {"theta_e_max": 2.0}})) != base
    assert config_hash(config_from_dict({"seed": 1})) != base
