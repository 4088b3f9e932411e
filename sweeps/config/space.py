"""The search space: one class per parameter type, each owning every rule of its type.

A type knows how it reads from YAML (:meth:`Param.from_args`), how it prints back
(:meth:`Param.to_yaml`), whether a value lies inside it (:meth:`Param.contains`), and what it
is for Ray Tune (:meth:`Param.to_tune`) and for Optuna (:meth:`Param.to_optuna`, and
:meth:`Param.suggest` for a define-by-run objective). A new distribution is one new class,
listed in :data:`DISTRIBUTIONS`; nothing outside this module looks at a parameter's type.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Param(BaseModel):
    """One entry of ``search.space``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The YAML key naming the distribution (``{uniform: [0, 1]}``).
    kind: ClassVar[str] = ""
    #: Whether the searcher chooses it (a constant is passed to every trial as it is).
    searched: ClassVar[bool] = True

    @classmethod
    def from_args(cls, args: Any) -> Param:
        """The parameter from the YAML value under its key (``[low, high]`` for most)."""
        if not isinstance(args, list) or len(args) != 2:
            raise ValueError(f"{cls.kind} needs [low, high], got {args!r}")
        return cls(low=args[0], high=args[1])

    def to_yaml(self) -> Any:
        """As written in a spec."""
        return {self.kind: [self.low, self.high]}  # type: ignore[attr-defined]

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one this parameter can take."""
        raise NotImplementedError

    def to_tune(self) -> Any:
        """The Ray Tune domain (or plain value) for ``param_space``."""
        raise NotImplementedError

    def to_optuna(self) -> Any:
        """The Optuna distribution (searched parameters only)."""
        raise TypeError(f"{type(self).__name__} is not a searched parameter")

    def suggest(self, trial: Any, name: str) -> Any:
        """A value from an Optuna trial (define-by-run)."""
        raise NotImplementedError


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Uniform(Param):
    """A float drawn uniformly from ``[low, high]``."""

    kind: ClassVar[str] = "uniform"
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self

    def contains(self, value: Any) -> bool:
        return _real(value) and self.low <= value <= self.high

    def to_tune(self) -> Any:
        from ray import tune

        return tune.uniform(self.low, self.high)

    def to_optuna(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high)

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_float(name, self.low, self.high)


class LogUniform(Uniform):
    """A float drawn log-uniformly from ``[low, high]``; both bounds positive."""

    kind: ClassVar[str] = "loguniform"

    @model_validator(mode="after")
    def _positive(self) -> LogUniform:
        if self.low <= 0:
            raise ValueError(f"loguniform bounds must be positive, got low={self.low}")
        return self

    def to_tune(self) -> Any:
        from ray import tune

        return tune.loguniform(self.low, self.high)

    def to_optuna(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=True)

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_float(name, self.low, self.high, log=True)


class RandInt(Param):
    """An integer drawn uniformly from ``low..high``, both ends included."""

    kind: ClassVar[str] = "randint"
    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self) -> RandInt:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self

    def contains(self, value: Any) -> bool:
        return _real(value) and value == int(value) and self.low <= value <= self.high

    def to_tune(self) -> Any:
        from ray import tune

        return tune.randint(self.low, self.high + 1)  # Tune's upper bound is exclusive

    def to_optuna(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high)

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_int(name, self.low, self.high)


class Choice(Param):
    """One of a list of values."""

    kind: ClassVar[str] = "choice"
    values: list[Any] = Field(min_length=1)

    @classmethod
    def from_args(cls, args: Any) -> Param:
        if not isinstance(args, list) or not args:
            raise ValueError(f"choice needs a non-empty list of values, got {args!r}")
        return cls(values=args)

    def to_yaml(self) -> Any:
        return {self.kind: list(self.values)}

    def contains(self, value: Any) -> bool:
        # True == 1 in Python; a choice of [1, 2] does not contain True.
        return any(
            value == v and isinstance(value, bool) == isinstance(v, bool) for v in self.values
        )

    def to_tune(self) -> Any:
        from ray import tune

        return tune.choice(self.values)

    def to_optuna(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.values)

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, self.values)


class Constant(Param):
    """A fixed value passed to every trial."""

    searched: ClassVar[bool] = False
    value: Any

    def to_yaml(self) -> Any:
        return self.value

    def contains(self, value: Any) -> bool:
        return value == self.value

    def to_tune(self) -> Any:
        return self.value

    def suggest(self, trial: Any, name: str) -> Any:
        return self.value


#: The distributions a spec can name, by their YAML key.
DISTRIBUTIONS: dict[str, type[Param]] = {
    cls.kind: cls for cls in (Uniform, LogUniform, RandInt, Choice)
}


def parse_param(raw: Any) -> Param:
    """One YAML space entry as a typed parameter: ``{KIND: ARGS}`` for a distribution of
    :data:`DISTRIBUTIONS`, any other value a constant.

    Raises:
        ValueError: naming the distribution, its arguments and what is wrong.
    """
    if not isinstance(raw, dict):
        return Constant(value=raw)
    if len(raw) != 1 or next(iter(raw)) not in DISTRIBUTIONS:
        keys = ", ".join(map(str, raw)) or "nothing"
        raise ValueError(
            f"expected exactly one of {', '.join(DISTRIBUTIONS)} or a constant value, got {keys}"
        )
    kind, args = next(iter(raw.items()))
    try:
        return DISTRIBUTIONS[kind].from_args(args)
    except ValidationError as exc:
        raise ValueError(f"{kind} {args}: {_first_message(exc)}") from None


def _first_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


__all__ = [
    "DISTRIBUTIONS",
    "Choice",
    "Constant",
    "LogUniform",
    "Param",
    "RandInt",
    "Uniform",
    "parse_param",
]
