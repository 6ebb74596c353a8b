"""Named search recipes: everything about HOW a search runs that is not the data, the model sizes or
the task (pure Python: the flags and the benchmarks read them without importing TensorFlow).

A recipe fixes the estimator, the warm-up mode and prior, the temperature schedule, the theta
learning rate and betas, u, the selection step's size and, where it says so, the weight learning
rate and its warm-up. The budget (epochs, cycles per epoch) is the caller's: the experiment's for
``python -m mmnas_tf.search``, 600 + 200 cycles for the benchmark. ``python -m mmnas_tf.search`` runs :data:`DEFAULT_RECIPE` unless told ``--recipe``;
its flags override single fields afterwards. ``bench/search_quality.py`` scores recipes by name,
the default among them, through the same search function.

No recipe sets the weight learning rate or its warm-up: they belong to the experiment (they
depend on the task: ITM searches at 1e-4; the benchmark's own data and model search at 1e-3,
constant, set by the benchmark's experiment).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from mmnas_tf.nas.temperature import TemperatureSchedule


@dataclasses.dataclass(frozen=True)
class SearchRecipe:
    """A named search recipe.

    Args:
      name: str, the registry name (``--recipe``).
      description: str, one line for ``--help`` and the benchmark's JSON.
      search: mapping of ``SearchConfig`` field -> value (``temperature`` a
        ``TemperatureSchedule``); fields left out keep the experiment's value.
    """

    name: str
    description: str
    search: Mapping = dataclasses.field(default_factory=dict)

    def apply(self, exp):
        """``exp`` (an ``ExperimentConfig``) with the recipe's search fields, validated."""
        fields = {f.name for f in dataclasses.fields(exp.search)}
        unknown = sorted(set(self.search) - fields)
        if unknown:
            raise ValueError(
                f"recipe {self.name!r}: unknown search fields {unknown}; accepted: {sorted(fields)}"
            )
        search = dataclasses.replace(exp.search, **self.search)
        return dataclasses.replace(exp, search=search).validate()

    def to_json(self) -> dict:
        """``{"name", "description", "search": {field: value}}`` (the temperature as a dict)."""
        search = {
            k: dataclasses.asdict(v)
            if dataclasses.is_dataclass(v)
            else (list(v) if isinstance(v, tuple) else v)
            for k, v in self.search.items()
        }
        return {"name": self.name, "description": self.description, "search": search}


_RECIPES: dict[str, SearchRecipe] = {}


def register_recipe(recipe: SearchRecipe) -> SearchRecipe:
    """Adds ``recipe`` to the registry (ValueError when its name is taken)."""
    if recipe.name in _RECIPES:
        raise ValueError(f"search recipe {recipe.name!r} is already registered")
    _RECIPES[recipe.name] = recipe
    return recipe


def recipe_names() -> list[str]:
    return list(_RECIPES)


def get_recipe(name: str) -> SearchRecipe:
    """The recipe registered as ``name``; ValueError naming the accepted names otherwise."""
    if name not in _RECIPES:
        raise ValueError(f"unknown search recipe {name!r}; accepted: {', '.join(_RECIPES)}")
    return _RECIPES[name]


#: The search that ``python -m mmnas_tf.search`` runs without flags (chosen before the 10-seed
#: scoreboards, docs/search_results.md "The default recipe").
DEFAULT_RECIPE = "gumbel_selection"

register_recipe(
    SearchRecipe(
        "original",
        "the original's search: proxyless binary gates from a +1/-1 prior theta on the MCAN-like "
        "genotype, the argmax, theta Adam(0.1, betas 0/0.999), u=5",
        {
            "estimator": "proxyless",
            "arch_paths": "all",
            "prior_logit": 1.0,
            "arch_learning_rate": 0.1,
            "arch_beta_1": 0.0,
            "arch_beta_2": 0.999,
            "weight_steps_per_arch_step": 5,
        },
    )
)

register_recipe(
    SearchRecipe(
        "gumbel_prior",
        "the default before 2026-12-06: gumbel straight-through from the original's +1/-1 prior "
        "theta on the MCAN-like genotype, temperature 5 x 0.95^epoch, the argmax, theta Adam(0.1, "
        "betas 0/0.999), u=5",
        {
            "estimator": "gumbel",
            "arch_paths": "all",
            "prior_logit": 1.0,
            "temperature": TemperatureSchedule(5.0, 0.95, 0.1),
            "arch_learning_rate": 0.1,
            "arch_beta_1": 0.0,
            "arch_beta_2": 0.999,
            "weight_steps_per_arch_step": 5,
        },
    )
)

#: The benchmark's search (docs/search_results.md, run 3): uniform warm-up and constant
#: temperature 1, every recipe below differing only in its estimator.
_BENCH = {
    "arch_paths": "all",
    "prior_logit": 0.0,
    "temperature": TemperatureSchedule(1.0, 1.0, 0.1),
    "arch_learning_rate": 0.1,
    "arch_beta_1": 0.0,
    "arch_beta_2": 0.999,
    "weight_steps_per_arch_step": 5,
    "selection_candidates": 0,
    "selection_population": 16,
    "selection_generations": 3,
}

for _name, _estimator, _paths, _text in (
    ("gumbel", "gumbel", "all", "gumbel straight-through, every candidate in the theta step"),
    ("gumbel_sampled", "gumbel", "sampled", "gumbel, only the sampled candidate in the theta step"),
    ("proxyless", "proxyless", "all", "the original's binary gates"),
    ("uniform", "uniform", "all", "uniform paths, weights only, then the evolutionary selection"),
    ("gumbel_selection", "gumbel_selection", "all",
     "gumbel, then a selection among the argmax and draws from softmax(theta) (5% of the space)"),
):  # fmt: skip
    register_recipe(
        SearchRecipe(
            _name,
            f"{_text}; uniform warm-up, temperature 1, theta Adam 0.1, u=5",
            {**_BENCH, "estimator": _estimator, "arch_paths": _paths},
        )
    )
