"""The whole config: sections assembled, YAML loading, validation, hashing, description.

:func:`load_config` rejects unknown keys and out-of-range values with a
:class:`~darkhaloscope.errors.ConfigError` naming the dotted field (``lens.theta_e_max``), before
any work starts. :func:`config_hash` is a stable hash of the resolved config (canonical JSON),
written into every output (manifest, rows, checkpoints).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .accept import AcceptConfig
from .bank import BankConfig
from .emr import EmrConfig
from .fields import HASHED_ROLES, ROLES, SPLITS, param, section
from .jobs import GenerateConfig, ReportConfig, StageConfig
from .ml import TrainConfig
from .negatives import LOOKALIKE_KINDS, NegativesConfig
from .physics import LensConfig, RenderConfig, SourceConfig
from .survey import PathsConfig, SurveyConfig, TasksConfig


@dataclass(frozen=True)
class Config:
    """The whole darkhaloscope configuration."""

    seed: int = param(12345, "Global seed: every task's random stream is seeded by (seed, task_id).", "", ge=0, le=2**63 - 1)
    paths: PathsConfig = section(PathsConfig)
    survey: SurveyConfig = section(SurveyConfig)
    tasks: TasksConfig = section(TasksConfig)
    bank: BankConfig = section(BankConfig)
    lens: LensConfig = section(LensConfig)
    source: SourceConfig = section(SourceConfig)
    render: RenderConfig = section(RenderConfig)
    negatives: NegativesConfig = section(NegativesConfig)
    stage: StageConfig = section(StageConfig)
    accept: AcceptConfig = section(AcceptConfig)
    generate: GenerateConfig = section(GenerateConfig)
    report: ReportConfig = section(ReportConfig)
    train: TrainConfig = section(TrainConfig)
    emr: EmrConfig = section(EmrConfig)


# --------------------------------------------------------------------------------------------
# Loading, validation, hashing
# --------------------------------------------------------------------------------------------


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _check_value(name: str, value: Any, f: dataclasses.Field, tp: Any) -> Any:
    meta = f.metadata
    origin = typing.get_origin(tp)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config field '{name}' must be true or false, got {value!r}", field=name)
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config field '{name}' must be an integer, got {value!r}", field=name)
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config field '{name}' must be a number, got {value!r}", field=name)
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"config field '{name}' must be finite, got {value!r}", field=name)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config field '{name}' must be a string, got {value!r}", field=name)
    elif tp is list or origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config field '{name}' must be a list, got {value!r}", field=name)
    elif tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config field '{name}' must be a mapping, got {value!r}", field=name)
    unit = f" {meta.get('unit')}" if meta.get("unit") else ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, ok, word in (
            ("ge", lambda v, b: v >= b, ">="),
            ("le", lambda v, b: v <= b, "<="),
            ("gt", lambda v, b: v > b, ">"),
            ("lt", lambda v, b: v < b, "<"),
        ):
            bound = meta.get(key)
            if bound is not None and not ok(value, bound):
                raise ConfigError(
                    f"config field '{name}' = {value}{unit} is out of range: must be {word} {bound}{unit}",
                    field=name,
                )
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"config field '{name}' = {value!r} is not one of {list(choices)}", field=name)
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix or '<root>'}' must be a mapping, got {type(data).__name__}", field=prefix or "<root>")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        names = ", ".join(f"'{prefix + k}'" for k in unknown)
        raise ConfigError(
            f"unknown config key(s) {names}; known keys here: {sorted(fields)}",
            field=prefix + str(unknown[0]),
        )
    kwargs = {}
    for name, f in fields.items():
        tp = hints[name]
        full = prefix + name
        if _is_section(tp):
            kwargs[name] = _build(tp, data.get(name), full + ".")
        elif name in data:
            kwargs[name] = _check_value(full, data[name], f, tp)
    return cls(**kwargs)


def _cross_checks(cfg: Config) -> None:
    fr = cfg.tasks.split_fractions
    if set(fr) != set(SPLITS):
        raise ConfigError(f"config field 'tasks.split_fractions' must have exactly the keys {list(SPLITS)}, got {sorted(fr)}", field="tasks.split_fractions")
    for k, v in fr.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise ConfigError(f"config field 'tasks.split_fractions.{k}' must be a fraction in [0, 1], got {v!r}", field=f"tasks.split_fractions.{k}")
    if abs(sum(fr.values()) - 1.0) > 1e-9:
        raise ConfigError(f"config field 'tasks.split_fractions' must sum to 1, sums to {sum(fr.values()):.6g}", field="tasks.split_fractions")
    rs = cfg.tasks.region_split_fractions
    if set(rs) != set(SPLITS) or not all(_is_fraction(v) for v in rs.values()) or abs(sum(rs.values()) - 1.0) > 1e-9:
        raise ConfigError(f"config field 'tasks.region_split_fractions' must give each of {list(SPLITS)} a fraction, summing to 1; got {rs}", field="tasks.region_split_fractions")
    _check_role_fractions(cfg)
    default_cf = next(f.default for f in dataclasses.fields(TasksConfig) if f.name == "control_fraction")
    if cfg.tasks.role_fractions and cfg.tasks.control_fraction != default_cf:
        # a resolved config (manifest, checkpoint) carries both at their values: only a changed
        # legacy fraction beside a role mix is a contradiction
        raise ConfigError(f"config sets 'tasks.control_fraction' = {cfg.tasks.control_fraction} (the legacy two-role mix) and 'tasks.role_fractions': keep only role_fractions", field="tasks.control_fraction")
    _check_weights("negatives.kind_weights", cfg.negatives.kind_weights, LOOKALIKE_KINDS)
    _check_weights("train.role_weights", cfg.train.role_weights, ROLES, need_positive=False)
    n = cfg.negatives
    from ..survey.maskbits import bit_mask

    bit_mask(cfg.survey.bad_maskbits)  # unknown bit names are a ConfigError naming the field
    pairs = [
        ("negatives.unlensed_sep_min", n.unlensed_sep_min, "negatives.unlensed_sep_max", n.unlensed_sep_max),
        ("negatives.radius_min", n.radius_min, "negatives.radius_max", n.radius_max),
        ("negatives.width_min", n.width_min, "negatives.width_max", n.width_max),
        ("negatives.span_min", n.span_min, "negatives.span_max", n.span_max),
        ("negatives.pitch_min", n.pitch_min, "negatives.pitch_max", n.pitch_max),
        ("lens.theta_e_min", cfg.lens.theta_e_min, "lens.theta_e_max", cfg.lens.theta_e_max),
        ("bank.hlr_min", cfg.bank.hlr_min, "bank.hlr_max", cfg.bank.hlr_max),
        ("bank.mag_min", cfg.bank.mag_min, "bank.mag_max", cfg.bank.mag_max),
        ("bank.zphot_min", cfg.bank.zphot_min, "bank.zphot_max", cfg.bank.zphot_max),
        ("source.dmag_min", cfg.source.dmag_min, "source.dmag_max", cfg.source.dmag_max),
        ("lens.sigma_v_min", cfg.lens.sigma_v_min, "lens.sigma_v_max", cfg.lens.sigma_v_max),
        ("survey.synthetic.seeing_r_min", cfg.survey.synthetic.seeing_r_min, "survey.synthetic.seeing_r_max", cfg.survey.synthetic.seeing_r_max),
        ("bank.procedural.n_knots_min", cfg.bank.procedural.n_knots_min, "bank.procedural.n_knots_max", cfg.bank.procedural.n_knots_max),
    ]
    for lo_name, lo, hi_name, hi in pairs:
        if lo > hi:
            raise ConfigError(f"config field '{lo_name}' = {lo} must not exceed '{hi_name}' = {hi}", field=lo_name)
    syn = cfg.survey.synthetic
    if 2 * syn.brick_overlap_pix >= syn.brick_size_pix:
        raise ConfigError(f"config field 'survey.synthetic.brick_overlap_pix' = {syn.brick_overlap_pix} leaves no primary area in "
                          f"bricks of {syn.brick_size_pix} px (needs 2 x overlap < brick_size_pix)", field="survey.synthetic.brick_overlap_pix")


def _is_fraction(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and 0.0 <= v <= 1.0


def _check_mix(name: str, mix: Any) -> None:
    if not isinstance(mix, dict) or not mix:
        raise ConfigError(f"config field '{name}' must be a non-empty mapping of role -> fraction, got {mix!r}", field=name)
    for role, v in mix.items():
        if role not in HASHED_ROLES:
            why = " (impostor and known_lens rows come from staged host tables, not from the role hash)" if role in ROLES else ""
            raise ConfigError(f"config field '{name}' has role {role!r}; hashed roles are {list(HASHED_ROLES)}{why}", field=f"{name}.{role}")
        if not _is_fraction(v):
            raise ConfigError(f"config field '{name}.{role}' must be a fraction in [0, 1], got {v!r}", field=f"{name}.{role}")
    if abs(sum(mix.values()) - 1.0) > 1e-9:
        raise ConfigError(f"config field '{name}' must sum to 1, sums to {sum(mix.values()):.6g}", field=name)


def _check_role_fractions(cfg: Config) -> None:
    """tasks.role_fractions: one mix ({role: f}) or {all: mix, <split>: mix}; every split covered."""
    rf = cfg.tasks.role_fractions
    if not rf:
        return
    if set(rf) <= set(ROLES):
        _check_mix("tasks.role_fractions", rf)
        return
    for key, mix in rf.items():
        if key not in ("all", *SPLITS):
            raise ConfigError(f"config field 'tasks.role_fractions' key {key!r} is neither a role {list(HASHED_ROLES)} nor 'all' / a split {list(SPLITS)}", field=f"tasks.role_fractions.{key}")
        _check_mix(f"tasks.role_fractions.{key}", mix)
    missing = [s for s in SPLITS if s not in rf and "all" not in rf]
    if missing:
        raise ConfigError(f"config field 'tasks.role_fractions' gives no mix for split(s) {missing}: add them or an 'all' entry", field="tasks.role_fractions")


def _check_weights(name: str, weights: Any, known: tuple, need_positive: bool = True) -> None:
    for key, v in weights.items():
        if key not in known:
            raise ConfigError(f"config field '{name}' has unknown key {key!r}; known: {list(known)}", field=f"{name}.{key}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or v == float("inf"):
            raise ConfigError(f"config field '{name}.{key}' must be a finite weight >= 0, got {v!r}", field=f"{name}.{key}")
    if need_positive and not sum(weights.values()) > 0:
        raise ConfigError(f"config field '{name}' needs at least one positive weight, got {weights!r}", field=name)


def config_from_dict(data: dict | None) -> Config:
    """Build and validate a :class:`Config` from a plain mapping (missing keys take defaults)."""
    cfg = _build(Config, data or {}, "")
    _cross_checks(cfg)
    return cfg


def load_config(path: str | Path, overrides: dict | None = None) -> Config:
    """Load a YAML config file, apply dotted ``overrides`` ({'lens.theta_e_max': 2.0}), validate."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", field="<file>", path=str(path))
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}", field="<file>", path=str(path)) from None
    for dotted, value in (overrides or {}).items():
        node = data
        keys = dotted.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return config_from_dict(data)


def config_to_dict(cfg: Any) -> dict:
    """The resolved config as plain JSON-able data (every field, defaults included)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


# Where and how fast a run executes, not what it makes: left out of the hash, so the same data
# config run on 2 or 7 partitions, or against another endpoint, gives identical rows.
EXECUTION_ONLY_FIELDS = (
    "paths",
    "generate.n_partitions",
    "generate.s3_endpoint",
    "generate.s3_region",
    "stage",
    "emr.generate_from",
    "survey.brick_cache_size",
    "survey.decoded_cache_mb",
    "train.num_workers",
)


def config_hash(cfg: Config) -> str:
    """Stable 16-hex-digit hash of the resolved config (sha256 of canonical JSON), without
    :data:`EXECUTION_ONLY_FIELDS`. The full resolved config is still written beside every output."""
    data = config_to_dict(cfg)
    for dotted in EXECUTION_ONLY_FIELDS:
        *parents, leaf = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        node.pop(leaf, None)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def replace(cfg: Any, **changes: Any) -> Any:
    """Return a copy of a config (or section) with fields changed; dotted names reach into sections."""
    nested: dict[str, dict] = {}
    flat = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    for head, sub in nested.items():
        flat[head] = replace(getattr(cfg, head), **sub)
    data = config_to_dict(dataclasses.replace(cfg, **flat))
    if isinstance(cfg, Config):
        return config_from_dict(data)
    return dataclasses.replace(cfg, **flat)


def describe(cls: type = Config, prefix: str = "") -> list[tuple[str, str, str, Any]]:
    """(dotted name, unit, documentation, default) for every field, for docs and ``--help``."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if _is_section(tp):
            rows.extend(describe(tp, prefix + f.name + "."))
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append((prefix + f.name, f.metadata.get("unit", ""), f.metadata.get("doc", ""), default))
    return rows
