"""The sweep spec: YAML plus ``--set`` overrides, validated into typed models.

Every user error is found here, before Ray starts, and reported as one line per problem that
names the field, the bad value and what is allowed.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from sweeps.config.conditions import ConditionError, check_conditions, ordered
from sweeps.config.space import Param, parse_param
from sweeps.errors import SpecError
from trainable.contract import CATEGORICAL, NUMERIC, Column, Objective

TRAINABLE_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:(mlflow-tracking-server|mlflow-app)/[A-Za-z0-9-]+$"
)
S3_URI_PATTERN = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: ``scheme://user[:password]@``: credentials written into a URI.
CREDENTIALS_IN_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]+@")
CREDENTIALS_HELP = (
    "contains credentials (user:password@ in the URI), which would be printed and saved with "
    "the sweep; remove them and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or "
    "MLFLOW_TRACKING_TOKEN) for an MLflow server, or use the AWS credential chain for s3://"
)


def without_credentials(uri: str) -> str:
    """``uri`` if it carries no ``user:password@``; else ValueError pointing to the
    environment variables that hold credentials instead."""
    if CREDENTIALS_IN_URI.match(uri.strip()):
        raise ValueError(CREDENTIALS_HELP)
    return uri


_SUBFIELD = "\x1f"  # marks "entry name" inside a mapping field's error message


# ---------------------------------------------------------------- sections


class SplitSpec(_Strict):
    """Fractions of all rows held out for validation and test, and the shuffle seed."""

    val: float = Field(0.15, gt=0, lt=0.5)
    test: float = Field(0.15, gt=0, lt=0.5)
    seed: int = 0


def parse_feature(name: str, raw: Any) -> Column:
    """One ``data.features`` entry: ``numeric``, ``categorical`` (values from the table) or
    ``{categorical: [a, b, ...]}`` (only these values allowed)."""
    if raw in (NUMERIC, CATEGORICAL):
        return Column(name, raw)
    if isinstance(raw, dict) and list(raw) == [CATEGORICAL]:
        values = raw[CATEGORICAL]
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"categorical needs a non-empty list of allowed values, got {values!r}"
            )
        return Column(name, CATEGORICAL, tuple(str(v).strip() for v in values))
    raise ValueError(f"expected numeric, categorical or {{categorical: [values]}}, got {raw!r}")


class DataSpec(_Strict):
    """Where the table comes from and its schema; what is not given is the family's."""

    source: str | None = None
    target: str | None = Field(None, min_length=1)
    features: tuple[Column, ...] | None = None
    split: SplitSpec = SplitSpec()

    @field_validator("source")
    @classmethod
    def _source_form(cls, v: str | None) -> str | None:
        from trainable.tables import builtin_names

        if v is None:
            return None
        v = without_credentials(v.strip())
        if not v:
            raise ValueError("must be builtin:NAME, a CSV or Parquet file path or s3://bucket/key")
        if v.startswith("s3:") and (not S3_URI_PATTERN.match(v) or v.rstrip("/").count("/") < 3):
            raise ValueError(f"{v!r} is not a valid s3://bucket/key URI")
        if v.startswith("builtin:") and v not in builtin_names():
            raise ValueError(f"unknown built-in table {v!r}; allowed: {', '.join(builtin_names())}")
        return v

    @field_validator("features", mode="before")
    @classmethod
    def _parse_features(cls, raw: Any) -> tuple[Column, ...] | None:
        if raw is None or (isinstance(raw, tuple) and all(isinstance(c, Column) for c in raw)):
            return raw
        if isinstance(raw, list) and all(isinstance(c, str) for c in raw):
            raw = dict.fromkeys(raw, NUMERIC)
        if not isinstance(raw, dict) or not raw:
            raise ValueError(
                "must map column names to numeric, categorical or {categorical: [values]}"
            )
        columns = []
        for name, entry in raw.items():
            try:
                columns.append(parse_feature(str(name), entry))
            except ValueError as exc:
                raise ValueError(f"{_SUBFIELD}{name}{_SUBFIELD}{exc}") from None
        return tuple(columns)


class SchedulerSpec(_Strict):
    """Early stopping of unpromising trials (ASHA)."""

    type: Literal["asha"] = "asha"
    max_t: int = Field(100, gt=0, description="most epochs a trial may run")
    grace_period: int = Field(5, gt=0, description="epochs every trial runs before it may stop")
    reduction_factor: float = Field(3.0, gt=1)

    @model_validator(mode="after")
    def _grace_within_max(self) -> SchedulerSpec:
        if self.grace_period > self.max_t:
            raise ValueError(
                f"grace_period ({self.grace_period}) must not exceed max_t ({self.max_t})"
            )
        return self


#: The searchers a spec can name (``search.algorithm``), each an Optuna sampler.
ALGORITHMS = ("tpe", "random", "grid", "cmaes", "gp")


class StopSpec(_Strict):
    """When a sweep ends before ``num_samples`` trials: a target value of the search metric,
    or no improvement in ``patience`` finished trials (``search.time_budget_s`` besides)."""

    target: float | None = Field(
        None, description="stop once a trial reaches this value of search.metric"
    )
    patience: int | None = Field(
        None, gt=0, description="stop after this many finished trials without improvement"
    )
    min_delta: float = Field(
        0.0, ge=0, description="an improvement smaller than this does not count (patience)"
    )

    @model_validator(mode="after")
    def _some_rule(self) -> StopSpec:
        if self.target is None and self.patience is None:
            raise ValueError("give target, patience (with min_delta), or both")
        if self.min_delta and self.patience is None:
            raise ValueError("min_delta applies to patience; give patience too")
        return self


class SearchSpec(_Strict):
    """What to optimise, how many trials, and the hyperparameter space."""

    metric: str = Field(min_length=1, description="a metric the family reports every epoch")
    mode: Literal["min", "max"] = "min"
    metrics: dict[str, Literal["min", "max"]] | None = Field(
        None,
        description="several objectives, each with its mode (e.g. {val_loss: min, params: "
        "min}); the first is the primary metric (search.metric) that early stopping, "
        "checkpoints and the scheduler use",
    )
    num_samples: int = Field(16, gt=0, description="number of trials")
    max_concurrent: int = Field(2, gt=0, description="trials running at once")
    seed: int = 0
    algorithm: Literal[ALGORITHMS] = Field(  # type: ignore[valid-type]
        "tpe", description="the Optuna sampler: tpe, random, grid, cmaes or gp"
    )
    scheduler: SchedulerSpec | None = None
    time_budget_s: float | None = Field(None, gt=0)
    stop: StopSpec | None = None
    warm_start: str | None = Field(
        None,
        min_length=1,
        description="learn from earlier sweeps: a sweep (run) name, a parent run id, "
        "or 'experiment' (every compatible finished sweep of the experiment)",
    )
    max_failures: int = Field(1, ge=0, description="retries of a failing trial")
    space: dict[str, Param]
    initial_points: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("space", mode="before")
    @classmethod
    def _parse_space(cls, raw: Any) -> dict[str, Param]:
        if not isinstance(raw, dict):
            raise ValueError(f"must be a mapping of parameter names to distributions, got {raw!r}")
        if not raw:
            raise ValueError("is empty; give at least one parameter to search")
        parsed = {}
        for name, entry in raw.items():
            try:
                parsed[str(name)] = parse_param(entry)
            except ConditionError as exc:
                raise ValueError(f"{_SUBFIELD}{name}.when{_SUBFIELD}{exc.problem}") from None
            except ValueError as exc:
                raise ValueError(f"{_SUBFIELD}{name}{_SUBFIELD}{exc}") from None
        if not any(p.searched for p in parsed.values()):
            raise ValueError("has only constants; give at least one distribution to search")
        return parsed

    @model_validator(mode="before")
    @classmethod
    def _primary_of_metrics(cls, raw: Any) -> Any:
        """With ``metrics``, ``metric`` and ``mode`` default to its first entry."""
        if isinstance(raw, dict) and isinstance(raw.get("metrics"), dict) and raw["metrics"]:
            first, mode = next(iter(raw["metrics"].items()))
            raw = {"metric": first, "mode": mode, **raw}
        return raw

    @model_validator(mode="after")
    def _primary_first(self) -> SearchSpec:
        if self.metrics is None:
            return self
        if len(self.metrics) < 2:
            raise ValueError("metrics needs at least two objectives; for one use metric and mode")
        first, mode = next(iter(self.metrics.items()))
        if (self.metric, self.mode) != (first, mode):
            raise ValueError(
                f"metric ({self.metric}, {self.mode}) must be the first entry of metrics "
                f"({first}: {mode}); leave metric and mode out, or list it first"
            )
        return self

    @property
    def objectives(self) -> list[Objective]:
        """Every objective, the primary first (one unless ``metrics`` names several)."""
        if self.metrics is None:
            return [self.objective]
        return [Objective(name, mode) for name, mode in self.metrics.items()]

    @model_validator(mode="after")
    def _conditions_can_hold(self) -> SearchSpec:
        try:
            check_conditions(self.space)
        except ConditionError as exc:
            raise ValueError(f"{_SUBFIELD}space.{exc.param}.when{_SUBFIELD}{exc.problem}") from None
        return self

    @model_validator(mode="after")
    def _points_inside_space(self) -> SearchSpec:
        """Each initial point gives exactly the searched parameters that exist given its own
        values (all of them in a space without conditions), each inside its distribution."""
        searchable = {k: p for k, p in self.space.items() if p.searched}
        for i, point in enumerate(self.initial_points):
            where = f"{_SUBFIELD}initial_points[{i}]"
            unknown = sorted(set(point) - set(searchable))
            if unknown:
                raise ValueError(
                    f"{where}{_SUBFIELD}{', '.join(unknown)} not searched; "
                    f"searched parameters: {', '.join(searchable)}"
                )
            values: dict[str, Any] = {}  # what exists in this point so far, constants too
            for name in ordered(self.space):
                param = self.space[name]
                exists = param.when is None or param.when.holds(values)
                if not param.searched:
                    values[name] = param.to_tune()
                elif exists and name not in point:
                    because = f" (it exists when {param.when.show()})" if param.when else ""
                    raise ValueError(f"{where}{_SUBFIELD}missing {name}{because}")
                elif exists and not param.contains(point[name]):
                    raise ValueError(
                        f"{where}.{name}{_SUBFIELD}{point[name]!r} is outside the space"
                    )
                elif exists:
                    values[name] = point[name]
                elif name in point:
                    raise ValueError(
                        f"{where}.{name}{_SUBFIELD}does not exist in this point (it needs "
                        f"{param.when.show()}); remove it"
                    )
        return self

    @property
    def objective(self) -> Objective:
        """What the sweep optimises: the one place ``metric`` and ``mode`` are read."""
        return Objective(self.metric, self.mode)


class ResourcesSpec(_Strict):
    """Resources per trial; ``gpu`` may be fractional to pack trials on a GPU."""

    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


class TrackingSpec(_Strict):
    """MLflow tracking URI; null means ``MLFLOW_TRACKING_URI`` or a local store."""

    uri: str | None = None

    @field_validator("uri")
    @classmethod
    def _uri_form(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = without_credentials(v.strip())
        if v.startswith("arn:") and not ARN_PATTERN.match(v):
            raise ValueError(
                f"{v!r} is not a SageMaker MLflow ARN; expected "
                "arn:aws:sagemaker:REGION:ACCOUNT:mlflow-tracking-server/NAME "
                "(or .../mlflow-app/NAME)"
            )
        if re.match(r"^https?:/?/?$", v) or (v.startswith("http") and "://" not in v):
            raise ValueError(f"{v!r} is not a URL; expected http(s)://HOST:PORT")
        return v


#: The comparisons ``register.select.where`` takes.
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")


class SelectSpec(_Strict):
    """Which trial to register: the best by ``best`` (a search metric, in its mode; default:
    ``search.metric``) among the complete trials whose values satisfy every ``where`` bound,
    e.g. ``{best: val_loss, where: {params: {"<": 20000}}}`` (see
    :mod:`sweeps.registration.selection`)."""

    best: str | None = Field(None, min_length=1, description="default: search.metric")
    where: dict[str, dict[str, float]] = Field(
        default_factory=dict, description='bounds on search metrics, e.g. {params: {"<": 2e4}}'
    )

    @field_validator("where")
    @classmethod
    def _known_comparisons(cls, where: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        allowed = ", ".join(COMPARISONS)
        for metric, bounds in where.items():
            if not bounds:
                raise ValueError(f"{_SUBFIELD}{metric}{_SUBFIELD}give a comparison ({allowed})")
            for op in bounds:
                if op not in COMPARISONS:
                    raise ValueError(
                        f"{_SUBFIELD}{metric}{_SUBFIELD}unknown comparison {op!r}; "
                        f"allowed: {allowed}"
                    )
        return where


class RegisterSpec(_Strict):
    """Registered model name, the alias moved to a better version, and what "better" means:
    ``metric`` on the test split (default: the search metric's test value, ``val_NAME`` ->
    ``test_NAME``), compared in the search's mode. ``select``: which trial is registered
    (default: the best by the search metric). ``enabled: false``: an exploratory sweep that
    records its trials and its best trial on the parent run and registers nothing."""

    enabled: bool = Field(True, description="false: register nothing (an exploratory sweep)")
    model_name: str | None = Field(None, min_length=1, description="default: the sweep name")
    alias: str = Field("champion", pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    metric: str | None = Field(None, pattern=r"^test_\w+$")
    ensemble: int | None = Field(
        None,
        ge=2,
        le=20,
        description="register the average of the best K trials' models as one model",
    )
    select: SelectSpec | None = None


# ``register`` is the spec's field name; it shadows only ABCMeta.register, which we never use.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class SweepSpec(_Strict):
    """A whole sweep: what to train, on what data, how to search, where to record it."""

    name: str = Field(pattern=NAME_PATTERN)
    experiment: str | None = Field(None, min_length=1, description="default: the sweep name")
    trainable: str = Field(pattern=TRAINABLE_PATTERN)
    data: DataSpec = DataSpec()
    search: SearchSpec
    resources: ResourcesSpec = ResourcesSpec()
    tracking: TrackingSpec = TrackingSpec()
    storage: str = Field("./sweep-results", min_length=1)
    register: RegisterSpec = RegisterSpec()
    #: The folder of the spec file: a trainable module there is importable (not a field).
    _folder: str | None = PrivateAttr(None)

    @field_validator("storage")
    @classmethod
    def _storage_form(cls, v: str) -> str:
        return without_credentials(v)

    @model_validator(mode="after")
    def _select_on_search_metrics(self) -> SweepSpec:
        """``register.select`` names only metrics the search optimises (their modes known)."""
        select = self.register.select
        if select is None:
            return self
        names = [o.metric for o in self.search.objectives]
        for where, metric in [("best", select.best), *(("where", m) for m in select.where)]:
            if metric is not None and metric not in names:
                raise ValueError(
                    f"{_SUBFIELD}register.select.{where}{_SUBFIELD}{metric!r} is not a search "
                    f"metric; allowed: {', '.join(names)} (search.metric or search.metrics)"
                )
        return self

    def to_yaml(self) -> str:
        """The resolved spec (defaults and overrides applied) as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_dict(self) -> dict[str, Any]:
        raw = self.model_dump(mode="json")
        raw["search"]["space"] = {k: p.to_yaml() for k, p in self.search.space.items()}
        if self.data.features is not None:
            raw["data"]["features"] = {c.name: _feature_to_yaml(c) for c in self.data.features}
        return raw

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_yaml().encode()).hexdigest()

    @property
    def folder(self) -> str | None:
        """Where the spec file is (None for a spec not read from a file)."""
        return self._folder

    def at(self, folder: str | Path | None) -> SweepSpec:
        """This spec, read from ``folder`` (trainable modules there are importable)."""
        self._folder = str(Path(folder).resolve()) if folder else None
        return self

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.name

    @property
    def model_name(self) -> str:
        return self.register.model_name or self.name

    @property
    def objective(self) -> Objective:
        return self.search.objective

    @property
    def champion_objective(self) -> Objective:
        """How registered versions are compared: ``register.metric`` or the search metric on
        the test split, in the search's mode."""
        return self.objective.on(self.register.metric or self.objective.test_metric)

    @property
    def searched(self) -> dict[str, Param]:
        return {k: p for k, p in self.search.space.items() if p.searched}

    @property
    def constants(self) -> dict[str, Any]:
        return {k: p.to_tune() for k, p in self.search.space.items() if not p.searched}


def _feature_to_yaml(column: Column) -> Any:
    if column.categorical and column.values:
        return {CATEGORICAL: list(column.values)}
    return column.kind


# ---------------------------------------------------------------- loading


def default_spec_path() -> Path:
    """The packaged default spec (the first shipped model family's)."""
    from trainable.families import default_spec

    return default_spec()


def default_experiment() -> str:
    """The MLflow experiment of the packaged default spec (what ``sweep ls`` looks at)."""
    raw = read_yaml(default_spec_path())
    return str(raw.get("experiment") or raw.get("name"))


def find_spec_file(name: str | Path) -> Path:
    """``name`` as a path, or, when no such file exists and it is a bare name, the shipped
    family spec of that name (``sweep run breast_cancer``)."""
    from trainable.families import shipped_specs

    path = Path(name)
    if not path.exists() and path.suffix == "" and len(path.parts) == 1:
        return shipped_specs().get(str(name), path)
    return path


def load_spec(path: str | Path | None = None, overrides: list[str] | None = None) -> SweepSpec:
    """Read a YAML spec, apply ``key.path=value`` overrides, validate.

    Raises:
        SpecError: one line per problem, naming the field, the bad value and what is allowed.
    """
    path = find_spec_file(path) if path else default_spec_path()
    raw = read_yaml(path)
    for override in overrides or []:
        apply_override(raw, override)
    return validate_spec(raw, source=str(path)).at(path.parent)


def read_yaml(path: Path) -> dict[str, Any]:
    """The YAML mapping at ``path``, or a SpecError saying why it cannot be read."""
    if not path.exists():
        raise SpecError(f"spec: file not found: {path}")
    if path.is_dir():
        raise SpecError(f"spec: {path} is a folder; expected a YAML file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"spec: {path} is not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"spec: cannot read {path}: {exc}") from None
    if raw is None:
        raise SpecError(f"spec: {path} is empty")
    if not isinstance(raw, dict):
        raise SpecError(f"spec: {path} must be a YAML mapping of fields, got {type(raw).__name__}")
    return raw


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Set ``a.b.c=value`` in ``raw`` (value parsed as YAML, so ``8`` is an int, ``null`` None)."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise SpecError(f"--set {override!r}: expected KEY.PATH=VALUE, e.g. search.num_samples=8")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise SpecError(f"--set {override!r}: {where} is {child!r}, not a section")
        node = child
    node[parts[-1]] = value


def validate_spec(raw: dict[str, Any], source: str = "spec") -> SweepSpec:
    """Validate a raw mapping into a SweepSpec, or raise SpecError listing every problem."""
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(*(_describe(err) for err in exc.errors())) from None


def _describe(err: dict[str, Any]) -> str:
    loc = _field_path(err["loc"])
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_fields(err["loc"][:-1])
        return f"{loc}: unknown field; allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{loc}: required field is missing"
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "literal_error":
        return f"{loc} = {value!r}: {msg.replace('Input should be', 'must be')}"
    if kind == "string_pattern_mismatch":
        return f"{loc} = {value!r}: {_PATTERN_HELP.get(str(err['loc'][-1]), msg)}"
    if kind == "value_error":
        if msg.startswith(_SUBFIELD):  # an error inside one entry of a mapping field
            _, sub, msg = msg.split(_SUBFIELD, 2)
            loc = f"{loc}.{sub}" if err["loc"] else sub  # a whole-spec check names its field
        return f"{loc}: {msg}"
    return f"{loc} = {value!r}: {msg.replace('Input should be', 'must be')}"


_PATTERN_HELP = {
    "trainable": "expected an import path MODULE:ATTR naming a model family, e.g. my_model:family",
    "metric": "expected test_NAME, a metric the family's evaluation reports",
    "name": "expected letters, digits, '-', '_' or '.', at most 64 characters",
    "alias": "expected letters, digits, '-' or '_', starting with a letter",
}


def _field_path(loc: tuple[Any, ...]) -> str:
    # pydantic puts the union member's class name in the location of a union error; drop it.
    parts = [str(p) for p in loc if not (isinstance(p, str) and p[:1].isupper())]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "spec"


def _allowed_fields(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] | None = SweepSpec
    for part in loc:
        if model is None or not isinstance(part, str):
            return []
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
    return list(model.model_fields) if model else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found:
            return found
    return None


__all__ = [
    "SweepSpec",
    "apply_override",
    "default_spec_path",
    "load_spec",
    "validate_spec",
]
