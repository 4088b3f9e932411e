"""Conditional parameters: a ``search.space`` entry that exists only when other parameters
have certain values.

Syntax
------
Beside its distribution key, an entry may have ``when:``, a mapping of parent names to what
the parent's value must be. Every parent must pass (AND)::

    search:
      space:
        optimizer: {choice: [adam, sgd]}
        momentum:  {uniform: [0.0, 0.95], when: {optimizer: sgd}}         # equality
        layers:    {randint: [1, 4]}
        units_3:   {choice: [16, 32, 64], when: {layers: {">=": 3}}}      # an operator
        units_4:   {choice: [16, 32], when: {layers: [4]}}                 # in a list
        nesterov:  {choice: [true, false], when: {optimizer: sgd, momentum: {">": 0.5}}}
        decay:     {uniform: [0, 0.1], when: {layers: {">": 1, not_in: [3]}}}

What a parent maps to:

* a plain value (string, number, bool, null): the parent equals it (``optimizer: sgd``);
* a list: the parent is one of its values (``layers: [3, 4]``);
* a mapping of one or more operators to operands, all of which must hold:
  ``==``, ``!=`` (any value), ``<``, ``<=``, ``>``, ``>=`` (a number), ``in``, ``not_in``
  (a non-empty list). Quote the operators in YAML (``{">=": 3}``): ``>`` and ``!`` start
  other YAML constructs. ``{"==": [1, 2]}`` compares with a list value itself.

A parameter whose parent does not exist in a trial does not exist either, whatever the test
(``{"!=": sgd}`` too): a child needs every parent present. Only distributions can be
conditional; a constant is in every trial (``{value: 3, when: ...}`` is an error), but a
condition may test a constant (and must then be one the constant passes).

Checks (:func:`check_conditions`, run when the spec is validated), each one line naming the
parameter: a parent that is not in the space; a test its parent can never pass, alone or with
the tests its parent's own parents impose (each parameter type decides, in
:meth:`~sweeps.config.space.Param.can_satisfy`); a comparison that does not fit the parent's
type (``>`` on a choice of strings, ``==`` on a continuous float); a cycle. As
``sweep validate`` prints them::

    search.space.momentum.when: unknown parameter 'optimiser'; parameters: optimizer, layers
    search.space.momentum.when: impossible condition: optimizer == 'rmsprop' never holds;
        optimizer is {choice: [adam, sgd]}
    search.space.units_5.when: impossible condition: layers >= 10 never holds; layers is
        {randint: [1, 4]}
    search.space.x.when: impossible condition: optimizer == 'adam' and optimizer == 'sgd'
        (for momentum to exist) never hold together; optimizer is {choice: [adam, sgd]}
    search.space.x.when: cannot compare optimizer > 1: '>' compares numbers, and 'adam' is
        not one; optimizer is {choice: [adam, sgd]}
    search.space.a.when: cycle a -> b -> a: each exists only when the next has a value

(each one line). ``when: null`` is no condition (``--set search.space.momentum.when=null``).

The searcher walks :func:`ordered` (parents first) and draws a parameter only when
``param.when is None or param.when.holds(values_so_far)``.
"""

from __future__ import annotations

import heapq
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from sweeps.config.space import Param

#: Operators comparing numbers.
ORDERING = ("<", "<=", ">", ">=")
#: Every operator, in the order messages list them.
OPERATORS = ("==", "!=", *ORDERING, "in", "not_in")


class ConditionError(ValueError):
    """A problem with a ``when``: ``problem`` is the message, ``param`` the conditional
    parameter when known (``str()`` is ``PARAM.when: PROBLEM``)."""

    def __init__(self, problem: str, param: str | None = None) -> None:
        self.problem = problem
        self.param = param
        super().__init__(f"{param + '.' if param else ''}when: {problem}")


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def same(a: Any, b: Any) -> bool:
    """``a == b``, except that a bool equals only a bool (``True == 1`` in Python)."""
    try:
        return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)
    except Exception:  # e.g. comparing arrays
        return False


class Clause(NamedTuple):
    """One test of a parent's value: ``value OP operand`` (a condition ANDs them)."""

    op: str
    operand: Any

    def holds(self, value: Any) -> bool:
        """Whether ``value`` passes (an ordering clause fails on a value that is no number)."""
        op, operand = self
        if op == "==":
            return same(value, operand)
        if op == "!=":
            return not same(value, operand)
        if op == "in":
            return any(same(value, o) for o in operand)
        if op == "not_in":
            return not any(same(value, o) for o in operand)
        if not (_real(value) and _real(operand)):
            return False
        if op == "<":
            return value < operand
        if op == "<=":
            return value <= operand
        if op == ">":
            return value > operand
        return value >= operand  # ">="

    def show(self, parent: str) -> str:
        """As in a message: ``layers >= 3``, ``optimizer == 'sgd'``."""
        return f"{parent} {self.op.replace('_', ' ')} {self.operand!r}"


def pinned(clauses: Sequence[Clause]) -> list[Any] | None:
    """The values an ``==`` or ``in`` clause among ``clauses`` allows (the first such clause's), or
    None when no clause pins the value down: what a type with no better knowledge checks."""
    for clause in clauses:
        if clause.op == "==":
            return [clause.operand]
        if clause.op == "in":
            return list(clause.operand)
    return None


def _parse_clauses(parent: str, raw: Any) -> tuple[Clause, ...]:
    if isinstance(raw, list):
        raw = {"in": raw}
    elif not isinstance(raw, dict):
        raw = {"==": raw}
    if not raw:
        raise ConditionError(f"{parent}: empty; give a value, a list or {{operator: value}}")
    clauses = []
    for op, operand in raw.items():
        if op not in OPERATORS:
            raise ConditionError(
                f"unknown operator {op!r} for {parent}; allowed: {', '.join(OPERATORS)}"
            )
        if op in ORDERING and not _real(operand):
            raise ConditionError(f"{parent}: {op!r} needs a number, got {operand!r}")
        if op in ("in", "not_in") and (not isinstance(operand, list) or not operand):
            raise ConditionError(
                f"{parent}: {op!r} needs a non-empty list of values, got {operand!r}"
            )
        clauses.append(Clause(op, operand))
    return tuple(clauses)


class Condition(BaseModel):
    """When a parameter exists: for each parent, clauses its value must pass (all ANDed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clauses: dict[str, tuple[Clause, ...]]

    @classmethod
    def from_yaml(cls, raw: Any) -> Condition:
        """The condition written under ``when:`` (see the module's docstring).

        Raises:
            ConditionError: naming the parent and what is wrong.
        """
        if not isinstance(raw, dict) or not raw:
            raise ConditionError(
                "expected a mapping of parameter names to a value, a list or "
                f"{{operator: value}}, e.g. {{optimizer: sgd}}; got {raw!r}"
            )
        return cls(clauses={str(p): _parse_clauses(str(p), v) for p, v in raw.items()})

    def to_yaml(self) -> dict[str, Any]:
        """As written in a spec: a plain value for one equality, a list for one ``in``."""
        out: dict[str, Any] = {}
        for parent, clauses in self.clauses.items():
            if len(clauses) == 1 and clauses[0].op == "in":
                out[parent] = list(clauses[0].operand)
            elif len(clauses) == 1 and clauses[0].op == "==" and not _container(clauses[0].operand):
                out[parent] = clauses[0].operand
            else:
                out[parent] = {t.op: _plain(t.operand) for t in clauses}
        return out

    @property
    def parents(self) -> frozenset[str]:
        """The parameters this condition tests."""
        return frozenset(self.clauses)

    def holds(self, values: Mapping[str, Any]) -> bool:
        """Whether every parent is in ``values`` and passes its clauses (a parent missing from
        ``values`` does not exist in the trial, so neither does the child)."""
        return all(
            parent in values and all(t.holds(values[parent]) for t in clauses)
            for parent, clauses in self.clauses.items()
        )

    def show(self) -> str:
        """As in a message: ``optimizer == 'sgd' and momentum > 0.5``."""
        return " and ".join(t.show(p) for p, clauses in self.clauses.items() for t in clauses)

    def __hash__(self) -> int:
        return hash(frozenset(self.clauses))


def _container(value: Any) -> bool:
    return isinstance(value, (list, tuple, dict))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# ---------------------------------------------------------------- the space as a whole


def ordered(space: Mapping[str, Param]) -> list[str]:
    """The parameter names with every parent before its children, otherwise in spec order
    (the spec's own order when it already has parents first).

    Raises:
        ConditionError: on a cycle (``a -> b -> a``).
    """
    _check_cycles(space)
    index = {name: i for i, name in enumerate(space)}
    waiting = {name: set(_parents(space, name)) for name in space}
    children: dict[str, list[str]] = {name: [] for name in space}
    for name, parents in waiting.items():
        for parent in parents:
            children[parent].append(name)
    ready = [index[n] for n, parents in waiting.items() if not parents]
    heapq.heapify(ready)
    names = list(space)
    out = []
    while ready:
        name = names[heapq.heappop(ready)]
        out.append(name)
        for child in children[name]:
            waiting[child].discard(name)
            if not waiting[child]:
                heapq.heappush(ready, index[child])
    return out


def active(space: Mapping[str, Param], values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` whose parameter exists given the others, in
    :func:`ordered` order: a conditional parameter's entry is dropped when its condition
    fails on what is kept so far. Parameters not in ``space`` are dropped too."""
    out: dict[str, Any] = {}
    for name in ordered(space):
        when = space[name].when
        if name in values and (when is None or when.holds(out)):
            out[name] = values[name]
    return out


def check_conditions(space: Mapping[str, Param]) -> None:
    """Every ``when`` in ``space`` can hold and the parameters can be put in order.

    Raises:
        ConditionError: the first problem, naming the conditional parameter (``param``).
    """
    names = list(space)
    for name in space:
        for parent in _parents(space, name, known_only=False):
            if parent not in space:
                others = ", ".join(n for n in names if n != name)
                raise ConditionError(f"unknown parameter {parent!r}; parameters: {others}", name)
    order = ordered(space)  # raises on a cycle
    # Every clause a parameter needs to exist: its own, and its parents' needs, transitively;
    # as (tested parameter, clause, whose condition it is).
    needs: dict[str, list[tuple[str, Clause, str]]] = {}
    for name in order:
        when = space[name].when
        own = [] if when is None else [(p, t, name) for p, ts in when.clauses.items() for t in ts]
        needs[name] = own
        for parent in _parents(space, name):
            needs[name] += [need for need in needs[parent] if need not in needs[name]]
        if when is not None:
            _check_needs(space, name, when, needs[name])


def _check_needs(
    space: Mapping[str, Param], name: str, when: Condition, needs: list[tuple[str, Clause, str]]
) -> None:
    for parent, clauses in when.clauses.items():
        try:
            possible = space[parent].can_satisfy(clauses)
        except ValueError as exc:
            shown = " and ".join(t.show(parent) for t in clauses)
            raise ConditionError(
                f"cannot compare {shown}: {exc}; {parent} is {_shown(space[parent])}", name
            ) from None
        if not possible:
            raise ConditionError(
                _impossible(space, parent, [(t, name) for t in clauses], name), name
            )
    tested = dict.fromkeys(p for p, _, _ in needs)
    for parent in tested:
        group = [(t, whose) for p, t, whose in needs if p == parent]
        if not space[parent].can_satisfy([t for t, _ in group]):
            raise ConditionError(_impossible(space, parent, group, name), name)


def _impossible(
    space: Mapping[str, Param], parent: str, group: list[tuple[Clause, str]], name: str
) -> str:
    shown = " and ".join(
        t.show(parent) + ("" if whose == name else f" (for {whose} to exist)") for t, whose in group
    )
    verb = "never holds" if len(group) == 1 else "never hold together"
    return f"impossible condition: {shown} {verb}; {parent} is {_shown(space[parent])}"


def _shown(param: Param) -> str:
    """A parameter as written in the spec, without its ``when``: ``{choice: [adam, sgd]}``."""
    import yaml

    raw = param.to_yaml()
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k != "when"}
        return yaml.safe_dump(raw, default_flow_style=True, width=10**6).strip()
    return f"the constant {raw!r}"


def _parents(space: Mapping[str, Param], name: str, known_only: bool = True) -> list[str]:
    when = space[name].when
    if when is None:
        return []
    return [p for p in when.clauses if p in space or not known_only]


def _check_cycles(space: Mapping[str, Param]) -> None:
    """A depth-first walk from each parameter to its parents; a parent met again on the
    current path closes a cycle, named from where the walk (in spec order) enters it."""
    done: set[str] = set()
    for start in space:
        if start in done:
            continue
        path = [start]
        stack = [iter(_parents(space, start))]
        while stack:
            parent = next(stack[-1], None)
            if parent is None:
                stack.pop()
                done.add(path.pop())
            elif parent in path:
                cycle = path[path.index(parent) :] + [parent]
                raise ConditionError(
                    f"cycle {' -> '.join(cycle)}: each exists only when the next has a value",
                    cycle[0],
                )
            elif parent not in done:
                path.append(parent)
                stack.append(iter(_parents(space, parent)))


__all__ = [
    "OPERATORS",
    "ORDERING",
    "Condition",
    "ConditionError",
    "Clause",
    "active",
    "check_conditions",
    "ordered",
    "pinned",
    "same",
]
