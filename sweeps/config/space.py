"""The search space: one class per parameter type, each owning every rule of its type.

A type knows how it reads from YAML (:meth:`Param.from_args`), how it prints back
(:meth:`Param.to_yaml`), whether a value lies inside it (:meth:`Param.contains`), whether
some of its values pass a condition's clauses (:meth:`Param.can_satisfy`), and what it is for
Ray Tune (:meth:`Param.to_tune`) and for Optuna (:meth:`Param.to_optuna`, and
:meth:`Param.suggest` for a define-by-run objective). A new distribution is one new class,
listed in :data:`DISTRIBUTIONS`; nothing outside this module looks at a parameter's type.

A distribution may be conditional (``{uniform: [0, 0.95], when: {optimizer: sgd}}``): its
:attr:`Param.when` is a :class:`~sweeps.config.conditions.Condition` (syntax and checks in
that module), None for a parameter in every trial. Constants are never conditional.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sweeps.config.conditions import ORDERING, Clause, Condition, ConditionError, pinned


class Param(BaseModel):
    """One entry of ``search.space``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The YAML key naming the distribution (``{uniform: [0, 1]}``).
    kind: ClassVar[str] = ""
    #: Whether the searcher chooses it (a constant is passed to every trial as it is).
    searched: ClassVar[bool] = True

    #: When the parameter exists; None: in every trial.
    when: Condition | None = None

    @classmethod
    def from_args(cls, args: Any) -> Param:
        """The parameter from the YAML value under its key (``[low, high]`` for most)."""
        if not isinstance(args, list) or len(args) != 2:
            raise ValueError(f"{cls.kind} needs [low, high], got {args!r}")
        return cls(low=args[0], high=args[1])

    def to_yaml(self) -> Any:
        """As written in a spec (a conditional parameter's ``when`` is added to it by
        :meth:`__pydantic_init_subclass__`, so a type writes only its own ``{KIND: ARGS}``)."""
        return {self.kind: [self.low, self.high]}  # type: ignore[attr-defined]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        own = cls.__dict__.get("to_yaml")
        if own is not None and not getattr(own, "writes_when", False):
            cls.to_yaml = _writing_when(own)  # type: ignore[method-assign]

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one this parameter can take."""
        raise NotImplementedError

    def can_satisfy(self, clauses: Sequence[Clause]) -> bool:
        """Whether some value this parameter takes (with a chance above zero) passes every
        clause of a condition on it.

        The default knows only :meth:`contains`: an ``==`` or ``in`` clause needs a value the
        parameter takes; other clauses are taken to be possible.

        Raises:
            ValueError: the clauses do not fit this type (``>`` on strings), saying why.
        """
        values = pinned(clauses)
        if values is None:
            return True
        return any(self.contains(v) and all(t.holds(v) for t in clauses) for v in values)

    def to_tune(self) -> Any:
        """The Ray Tune domain (or plain value) for ``param_space``."""
        raise NotImplementedError

    def to_optuna(self) -> Any:
        """The Optuna distribution (searched parameters only)."""
        raise TypeError(f"{type(self).__name__} is not a searched parameter")

    def suggest(self, trial: Any, name: str) -> Any:
        """A value from an Optuna trial (define-by-run)."""
        raise NotImplementedError


def _writing_when(to_yaml: Callable[[Param], Any]) -> Callable[[Param], Any]:
    """``to_yaml`` with the parameter's ``when`` beside its ``{KIND: ARGS}``."""

    @functools.wraps(to_yaml)
    def with_when(self: Param) -> Any:
        out = to_yaml(self)
        if self.when is not None and isinstance(out, dict):
            out = {**out, "when": self.when.to_yaml()}
        return out

    with_when.writes_when = True  # type: ignore[attr-defined]
    return with_when


Param.to_yaml = _writing_when(Param.to_yaml)  # type: ignore[method-assign]


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

    def can_satisfy(self, clauses: Sequence[Clause]) -> bool:
        # A continuous draw equals a given value with probability zero; != never excludes.
        low, high = self.low, self.high
        for clause in clauses:
            if clause.op in ("==", "in"):
                raise ValueError(
                    "a float drawn from a continuous range almost never equals a given "
                    "value; compare it with <, <=, > or >="
                )
            if clause.op in ("<", "<="):
                high = min(high, clause.operand)
            elif clause.op in (">", ">="):
                low = max(low, clause.operand)
        return low < high

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

    def can_satisfy(self, clauses: Sequence[Clause]) -> bool:
        low, high = self.low, self.high  # narrowed by the ordering clauses
        for clause in clauses:
            bound = clause.operand
            if clause.op == "<":
                high = min(high, math.ceil(bound) - 1)
            elif clause.op == "<=":
                high = min(high, math.floor(bound))
            elif clause.op == ">":
                low = max(low, math.floor(bound) + 1)
            elif clause.op == ">=":
                low = max(low, math.ceil(bound))
        values = pinned(clauses)
        if values is not None:
            return any(self.contains(v) and all(t.holds(v) for t in clauses) for v in values)
        excluded = {
            int(v)
            for t in clauses
            if t.op in ("!=", "not_in")
            for v in ([t.operand] if t.op == "!=" else t.operand)
            if self.contains(v) and low <= v <= high
        }
        return high - low + 1 > len(excluded)

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

    def can_satisfy(self, clauses: Sequence[Clause]) -> bool:
        return _some_passes(self.values, clauses)

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

    @model_validator(mode="after")
    def _unconditional(self) -> Constant:
        if self.when is not None:
            raise ValueError("a constant is in every trial; it cannot have a condition (when)")
        return self

    def to_yaml(self) -> Any:
        return self.value

    def contains(self, value: Any) -> bool:
        return value == self.value

    def can_satisfy(self, clauses: Sequence[Clause]) -> bool:
        return _some_passes([self.value], clauses)

    def to_tune(self) -> Any:
        return self.value

    def suggest(self, trial: Any, name: str) -> Any:
        return self.value


def _some_passes(values: list[Any], clauses: Sequence[Clause]) -> bool:
    """Whether one of finitely many values passes every clause; ordering clauses need numbers."""
    for clause in clauses:
        if clause.op in ORDERING:
            odd = [v for v in values if not _real(v)]
            if odd:
                raise ValueError(f"{clause.op!r} compares numbers, and {odd[0]!r} is not one")
    return any(all(t.holds(v) for t in clauses) for v in values)


#: The distributions a spec can name, by their YAML key.
DISTRIBUTIONS: dict[str, type[Param]] = {
    cls.kind: cls for cls in (Uniform, LogUniform, RandInt, Choice)
}


def parse_param(raw: Any) -> Param:
    """One YAML space entry as a typed parameter: ``{KIND: ARGS}`` for a distribution of
    :data:`DISTRIBUTIONS`, with an optional ``when: CONDITION`` beside it; any other value a
    constant.

    Raises:
        ConditionError: the ``when`` is malformed, or stands beside no distribution.
        ValueError: naming the distribution, its arguments and what is wrong.
    """
    if not isinstance(raw, dict):
        return Constant(value=raw)
    dist = {k: v for k, v in raw.items() if k != "when"}
    if len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        keys = ", ".join(map(str, raw)) or "nothing"
        if "when" in raw:
            raise ConditionError(
                f"needs exactly one of {', '.join(DISTRIBUTIONS)} beside it (a constant is "
                f"in every trial and cannot have a condition), got {keys}"
            )
        raise ValueError(
            f"expected exactly one of {', '.join(DISTRIBUTIONS)} or a constant value, got {keys}"
        )
    kind, args = next(iter(dist.items()))
    try:
        param = DISTRIBUTIONS[kind].from_args(args)
    except ValidationError as exc:
        raise ValueError(f"{kind} {args}: {_first_message(exc)}") from None
    if raw.get("when") is None:  # `when: null` (e.g. from --set): no condition
        return param
    return param.model_copy(update={"when": Condition.from_yaml(raw["when"])})


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
