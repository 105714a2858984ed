"""Typed configuration: YAML -> frozen dataclasses, validated, hashed.

Every field is declared with :func:`param`, which records its documentation, its unit and its
allowed range. Sections map one-to-one to the pipeline's stages, one module per group
(``survey``, ``bank``, ``physics``, ``jobs``, ``ml``, ``emr``); ``core`` assembles them and loads,
validates and hashes. A YAML file only needs the keys it changes.
``python -m darkhaloscope.config`` prints every field with its unit and documentation.
"""

from .accept import AcceptConfig
from .bank import BankConfig, ProceduralBankConfig
from .core import (
    EXECUTION_ONLY_FIELDS,
    Config,
    config_from_dict,
    config_hash,
    config_to_dict,
    describe,
    load_config,
    replace,
)
from .emr import EmrConfig
from .fields import HASHED_ROLES, PAINTED_ROLES, ROLE_LABELS, ROLES, SPLITS, param, section
from .jobs import GenerateConfig, ReportConfig, StageConfig
from .ml import TrainConfig
from .negatives import LOOKALIKE_KINDS, NegativesConfig
from .physics import LensConfig, RenderConfig, SourceConfig
from .survey import LrgCutsConfig, PathsConfig, SurveyConfig, SyntheticSurveyConfig, TasksConfig

__all__ = [
    "EXECUTION_ONLY_FIELDS", "HASHED_ROLES", "LOOKALIKE_KINDS", "PAINTED_ROLES", "ROLE_LABELS", "ROLES", "NegativesConfig", "AcceptConfig", "SPLITS", "BankConfig", "Config", "EmrConfig", "GenerateConfig",
    "LensConfig", "LrgCutsConfig", "PathsConfig", "ProceduralBankConfig", "RenderConfig",
    "ReportConfig", "SourceConfig", "StageConfig", "SurveyConfig", "SyntheticSurveyConfig", "TasksConfig",
    "TrainConfig", "config_from_dict", "config_hash", "config_to_dict", "describe", "load_config",
    "param", "replace", "section",
]
