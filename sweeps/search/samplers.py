"""``search.algorithm`` as an Optuna sampler, seeded by ``search.seed``.

Every algorithm is Optuna's own: ``tpe`` (TPESampler, the default), ``random``
(RandomSampler), ``grid`` (GridSampler over a finite space), ``cmaes`` (CmaEsSampler) and
``gp`` (GPSampler, which needs PyTorch). :func:`check_algorithm` is what preflight asks
before anything starts, so a space or objective an algorithm cannot handle is one clear line.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sweeps.config.space import Param

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

    from sweeps.config.spec import SearchSpec

#: Algorithms that handle a single objective only.
SINGLE_OBJECTIVE = frozenset({"cmaes"})


def grid_values(name: str, param: Param) -> list[Any]:
    """Every value of a finite parameter, for ``grid``.

    Raises:
        ValueError: the parameter is continuous.
    """
    from optuna.distributions import CategoricalDistribution, IntDistribution

    dist = param.to_optuna()
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution) and not dist.log:
        return list(range(dist.low, dist.high + 1, dist.step))
    raise ValueError(
        f"search.space.{name}: {param.kind} is continuous and search.algorithm grid needs "
        f"finite parameters; use choice (e.g. {{choice: [...]}}) or randint"
    )


def grid_space(space: Mapping[str, Param]) -> dict[str, list[Any]]:
    """The grid of a finite space: each searched parameter's values.

    Raises:
        ValueError: a parameter is continuous, or conditional (a grid has no conditions).
    """
    grid = {}
    for name, param in space.items():
        if not param.searched:
            continue
        if param.when is not None:
            raise ValueError(
                f"search.space.{name}: search.algorithm grid does not take conditional "
                "parameters (a grid point holds every parameter); use tpe or random"
            )
        grid[name] = grid_values(name, param)
    return grid


def grid_size(space: Mapping[str, Param]) -> int:
    """How many points the grid of ``space`` has."""
    return math.prod(len(values) for values in grid_space(space).values())


def check_algorithm(search: SearchSpec, objectives: int = 1) -> None:
    """Whether ``search.algorithm`` can search this space for this many objectives.

    Raises:
        ValueError: one line naming the field and what to change.
    """
    algorithm = search.algorithm
    if algorithm in SINGLE_OBJECTIVE and objectives > 1:
        raise ValueError(
            f"search.algorithm = {algorithm!r} handles one objective and search.metrics names "
            f"{objectives}; use tpe, random, grid or gp"
        )
    if algorithm == "grid":
        size = grid_size(search.space)
        if search.num_samples > size:
            raise ValueError(
                f"search.num_samples = {search.num_samples} exceeds the grid's {size} points; "
                f"set it to at most {size}"
            )
    if algorithm == "gp" and importlib.util.find_spec("torch") is None:
        raise ValueError(
            "search.algorithm = 'gp' needs PyTorch (Optuna's GPSampler): "
            "pip install 'ray-sweeps[gp]', or choose tpe"
        )
    if algorithm == "cmaes" and importlib.util.find_spec("cmaes") is None:
        raise ValueError("search.algorithm = 'cmaes' needs the cmaes package: pip install cmaes")


def make_sampler(search: SearchSpec) -> BaseSampler:
    """The seeded Optuna sampler ``search.algorithm`` names."""
    import optuna

    seed, algorithm = search.seed, search.algorithm
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if algorithm == "grid":
        return optuna.samplers.GridSampler(grid_space(search.space), seed=seed)
    if algorithm == "cmaes":
        # Categorical parameters are sampled independently (CMA-ES is for numbers).
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if algorithm == "gp":
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed)
