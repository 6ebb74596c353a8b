"""Typed experiment configs and the registry of named experiments.

An experiment is everything a run needs besides its paths on the command line: the task, the
retrain and search model sizes, the data, the training recipe and the search recipe
(docs/original_behaviour.md, "Search" and "Training recipe"). Named experiments: ``vqa``, ``itm``,
``vg`` (paper sizes: search at d=256 / 4 heads, retrain at d=512 / 8 heads, M/N 12/18) and
``*_tiny`` (CI and laptops).

Every field can be overridden by a dotted path::

    config = get_experiment("vqa_tiny")
    config = apply_overrides(config, ["model.hidden_size=64", "train.epochs=1"])

``--config`` of the drivers also accepts a path to a recipe file of your own: Python defining
``get_config() -> ExperimentConfig``, e.g.::

    import dataclasses
    from mmnas_tf.experiments import get_experiment

    def get_config():
        exp = get_experiment("vqa")
        train = dataclasses.replace(exp.train, epochs=20)
        return dataclasses.replace(exp, name="vqa_long", train=train)

The published genotypes the named experiments retrain are package data (``mmnas_tf/genotypes``), so
an installed copy finds them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mmnas_tf.config import ModelConfig
from mmnas_tf.engine.schedules import ORIGINAL_WARMUP, EpochSchedule
from mmnas_tf.genotype import Genotype
from mmnas_tf.nas.choices import ARCH_PATHS, ESTIMATORS
from mmnas_tf.nas.temperature import TemperatureSchedule
from mmnas_tf.tasks import TaskConfig, get_task, task_names

HEADS_FROM = ("genotype", "config")
EVAL_PADDING = ("batch", "max")
#: The model sizes that can follow the data (``DataConfig.sizes_from_data``).
DATA_SIZES = ("max_regions", "max_tokens")
#: Override paths that moved (old path -> the paths it now sets), still accepted: the answer
#: count belongs to the model (``ModelConfig.num_answers``), retrain and search alike.
MOVED_OVERRIDES = {"data.num_answers": ("model.num_answers", "search_model.num_answers")}
#: The published genotypes (package data).
GENOTYPE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "genotypes")


@dataclass
class DataConfig:
    """Where the data is and how it is batched.

    Attributes:
      data_dir: folder written by the data converters / ``python -m mmnas_tf.synthetic``: shards,
        ``manifest.json``, ``vocab.txt``, ``answers.txt`` (VQA), ``embeddings.npy`` (optional).
        The padded sizes m and n are the model's (``ModelConfig.max_tokens`` / ``max_regions``).
      train_split / eval_split: split names in the manifest.
      batch_size: global training batch (64).
      eval_batch_size: batch of evaluation and hard-negative mining.
      bucketing: training batches are grouped by region count and padded only to their bucket's
        boundary (``bucket_boundaries``) instead of ``max_regions``. On in the named configs of a
        task whose images have variable region counts (``Task.variable_regions``: VQA, whose
        bottom-up features keep 10-100 regions per image); off for ITM (36 regions per image) and
        VG (100 per image, and its loss normalises the object scores over every slot, padding
        included, so fewer slots would change it). The
        model masks padding: an example's outputs do not depend on it (tested); a bucketed
        training differs from a padded one by its batches (formed per bucket, each bucket's
        partial window dropped) and dropout masks, not by what a step computes for an example.
      bucket_boundaries: region-count bucket edges (e.g. (20, 36, 50, 100), last = max_regions);
        empty = every tenth of max_regions (10, 20, ..., 100). Used by training when ``bucketing``
        is on and by evaluation when ``eval_padding`` is ``batch``.
      eval_padding: ``batch`` (default): evaluation batches are grouped by region count and padded
        only to their largest region count (the metrics equal padded evaluation's, tested);
        ``max``: every image padded to max_regions (the original's way).
      shuffle_buffer: examples held for shuffling.
      seed: data-order seed; epoch e uses ``seed + e`` so a resumed run sees the same order.
      search_ratio: |D_m| : |D_a| of the search split (4 : 1).
      sizes_from_data: which of ``max_regions`` / ``max_tokens`` a run not bound to a checkpoint
        takes from the data (the largest of any split in ``manifest.json``, up to
        ``mmnas_tf.runs.SIZE_CAPS``) for ``model`` and ``search_model``. Both in the tiny configs,
        none in the paper configs (100 regions / 14 tokens for VQA, as the original). A size set
        by an override (``model.max_regions=17``) is taken as given: it leaves this list.
    """

    data_dir: str = ""
    train_split: str = "train"
    eval_split: str = "val"
    batch_size: int = 64
    eval_batch_size: int = 256
    bucketing: bool = False
    bucket_boundaries: tuple[int, ...] = ()
    eval_padding: str = "batch"
    shuffle_buffer: int = 2048
    seed: int = 0
    search_ratio: tuple[int, int] = (4, 1)
    sizes_from_data: tuple[str, ...] = ()

    def validate(self) -> DataConfig:
        for name in ("batch_size", "eval_batch_size", "shuffle_buffer"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if len(self.search_ratio) != 2 or min(self.search_ratio) < 1:
            raise ValueError(
                f"data.search_ratio must be two positive ints, got {self.search_ratio}"
            )
        b = list(self.bucket_boundaries)
        if b != sorted(set(b)) or b[:1] and b[0] < 1:
            raise ValueError(
                f"data.bucket_boundaries must be positive and increase strictly, got {b}"
            )
        if not set(self.sizes_from_data) <= set(DATA_SIZES):
            raise ValueError(
                f"data.sizes_from_data={list(self.sizes_from_data)}; accepted: any of {DATA_SIZES}"
            )
        if self.eval_padding not in EVAL_PADDING:
            raise ValueError(f"data.eval_padding={self.eval_padding!r}; accepted: {EVAL_PADDING}")
        return self


@dataclass
class TrainConfig:
    """The retrain recipe (docs/original_behaviour.md, "Training recipe"; defaults are VQA's), and
    the runtime fields the search reads too (``clip_norm``, ``jit_compile``, ``steps_per_epoch``,
    ``checkpoint_every_steps``, ``max_to_keep``).

    Attributes:
      epochs: 13 (ITM 100).
      learning_rate: peak rate (VQA 1.2e-4, VG 1.4e-4, ITM 1.5e-4).
      warmup: per-epoch factors of the first epochs (1/4, 1/2, 3/4).
      decay_epochs: 0-based epochs from which the rate is multiplied by ``decay_rate``
        ((10, 12); ITM (36,)).
      decay_rate: 0.2.
      beta_1 / beta_2 / epsilon: Adam (0.9, 0.98, 1e-9).
      clip_norm: gradient clip by global norm (1.0; 0 = off).
      jit_compile: XLA-compile the training step and the search cycle (``--jit_compile`` of both
        drivers): true / false, or None (the default): the machine's choice for the training
        step (``mmnas_tf.machine.resolve_train_xla``: XLA for float32 models of d >= 256 on
        AVX2-only CPUs, graph mode elsewhere; the run's ``run.json`` records the resolved
        value) and graph mode for the search cycle. True is refused under a distribution
        strategy of more than one replica (``engine.distribute.check_jit_compile``).
      steps_per_epoch: cap on steps per epoch (None = one pass over the data).
      checkpoint_every_steps: mid-epoch checkpoints (0 = only at epoch ends).
      max_to_keep: checkpoints kept.
      log_every_steps: progress/TensorBoard interval.
    """

    epochs: int = 13
    learning_rate: float = 1.2e-4
    warmup: tuple[float, ...] = ORIGINAL_WARMUP
    decay_epochs: tuple[int, ...] = (10, 12)
    decay_rate: float = 0.2
    beta_1: float = 0.9
    beta_2: float = 0.98
    epsilon: float = 1e-9
    clip_norm: float = 1.0
    jit_compile: bool | None = None
    steps_per_epoch: int | None = None
    checkpoint_every_steps: int = 1000
    max_to_keep: int = 3
    log_every_steps: int = 50

    def schedule(self) -> EpochSchedule:
        return EpochSchedule(self.learning_rate, self.warmup, self.decay_epochs, self.decay_rate)

    def validate(self) -> TrainConfig:
        if self.epochs < 1:
            raise ValueError(f"train.epochs must be >= 1, got {self.epochs}")
        if self.clip_norm < 0:
            raise ValueError(f"train.clip_norm must be >= 0, got {self.clip_norm}")
        if not (self.jit_compile is None or isinstance(self.jit_compile, bool)):
            raise ValueError(
                "train.jit_compile must be true, false or none (none: the machine's choice), "
                f"got {self.jit_compile!r}"
            )
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(
                f"train.steps_per_epoch must be >= 1 or None, got {self.steps_per_epoch}"
            )
        for name in ("checkpoint_every_steps", "log_every_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0")
        if self.max_to_keep < 1:
            raise ValueError("train.max_to_keep must be >= 1")
        self.schedule()  # validates the rate, warm-up and decay
        return self


@dataclass
class SearchConfig:
    """The search settings. The defaults are the default search recipe
    (``mmnas_tf.nas.recipes.DEFAULT_RECIPE``, ``gumbel_selection``: a uniform start, temperature
    1, a selection step at the end; docs/search_results.md); the original's search (proxyless
    binary gates from a +1/-1 prior, the argmax) is the recipe ``original``, the default before
    2026-12-06 (gumbel from that prior, temperature 5 x 0.95^epoch) ``gumbel_prior``
    (docs/original_behaviour.md, "Search"). The weight rate and its warm-up are the original's.

    Attributes:
      weight_learning_rate: W rate (4e-4; ITM 1e-4), same warm-up as training, no decay.
      warmup: warm-up factors of the W rate.
      arch_learning_rate / arch_beta_1 / arch_beta_2: Adam on theta (0.1, 0, 0.999).
      weight_steps_per_arch_step: u (5).
      warmup_epochs: epochs updating W only (original 20, paper 50).
      search_epochs: alternating epochs after the warm-up (original 80, paper 20).
      estimator: the registered estimator (``mmnas_tf.nas.estimators``): "gumbel_selection"
        (default: gumbel, then the selection step), "gumbel", "proxyless" (the original's binary
        gates) or "uniform" (uniform paths, theta untouched, then an evolutionary selection).
      arch_paths: what a gumbel theta step computes: "all" candidates (default; the
        straight-through gradient compares the ops) or only the "sampled" one (cheaper, biased;
        see docs/search_results.md).
      temperature: Gumbel-softmax temperature per epoch (default constant 1; the former default
        5 x 0.95^epoch is ``TemperatureSchedule()``; the original has no temperature).
      early_stop_patience: stop when the genotype has not changed for this many epochs (0 = never,
        as the original).
      prior_logit: initial theta of the MCAN-like prior ops (default 0 = uniform; +1 in the
        original).
      selection_candidates: genotypes a theta search's selection step scores (``gumbel_selection``;
        0 = 5% of the space, at least the argmax).
      selection_population / selection_generations: the evolutionary selection step after a
        ``uniform`` search (16, 3).
    """

    weight_learning_rate: float = 4e-4
    warmup: tuple[float, ...] = ORIGINAL_WARMUP
    arch_learning_rate: float = 0.1
    arch_beta_1: float = 0.0
    arch_beta_2: float = 0.999
    weight_steps_per_arch_step: int = 5
    warmup_epochs: int = 20
    search_epochs: int = 80
    estimator: str = "gumbel_selection"
    arch_paths: str = "all"
    temperature: TemperatureSchedule = field(default_factory=lambda: TemperatureSchedule(1.0, 1.0))
    early_stop_patience: int = 0
    prior_logit: float = 0.0
    selection_candidates: int = 0
    selection_population: int = 16
    selection_generations: int = 3

    def weight_schedule(self) -> EpochSchedule:
        return EpochSchedule(self.weight_learning_rate, self.warmup)

    def validate(self) -> SearchConfig:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"search.estimator={self.estimator!r}; accepted: {ESTIMATORS}")
        if self.arch_paths not in ARCH_PATHS:
            raise ValueError(f"search.arch_paths={self.arch_paths!r}; accepted: {ARCH_PATHS}")
        if self.weight_steps_per_arch_step < 1:
            raise ValueError("search.weight_steps_per_arch_step (u) must be >= 1")
        if self.warmup_epochs < 0 or self.search_epochs < 0 or self.early_stop_patience < 0:
            raise ValueError("search epochs and patience must be >= 0")
        if self.warmup_epochs + self.search_epochs == 0:
            raise ValueError(
                "search.warmup_epochs + search.search_epochs is 0: a search needs at least one "
                "epoch (--warmup_epochs / --search_epochs)"
            )
        if not self.arch_learning_rate > 0:
            raise ValueError("search.arch_learning_rate must be > 0")
        if (
            self.selection_candidates < 0
            or self.selection_population < 1
            or self.selection_generations < 0
        ):
            raise ValueError(
                "search.selection_candidates >= 0 (0 = 5% of the space), selection_population >= 1 "
                f"and selection_generations >= 0 expected; got {self.selection_candidates}, "
                f"{self.selection_population}, {self.selection_generations}"
            )
        if not (0 <= self.arch_beta_1 < 1 and 0 <= self.arch_beta_2 < 1):
            raise ValueError("search.arch_beta_1/arch_beta_2 must be in [0, 1)")
        self.weight_schedule()
        return self


@dataclass
class ExperimentConfig:
    """One named experiment.

    Attributes:
      name: registry name.
      task: a registered task name (``mmnas_tf.tasks.task_names()``: vqa, itm, vg).
      model: retrain-stage sizes (paper: d=512, 8 heads, M/N 12/18).
      search_model: supernet sizes (paper: d=256, 4 heads); its ``genotype`` must be None.
      genotype: default architecture to retrain: a path (relative paths are looked up in the
        current folder, then in ``mmnas_tf/genotypes``) or a genotype dict; ``--genotype`` wins.
      heads_from: "genotype" (the genotype's head size sets the heads, as the original's
        ``self_att_64``) or "config" (``model.num_heads``; tiny models are narrower than one head).
      data / train / search: see their classes.
      task_config: what only the task reads, of its ``Task.config_class`` (ITM: the hard-negative
        mining); overrides reach it as ``task_config.<field>``.
    """

    name: str
    task: str
    model: ModelConfig
    search_model: ModelConfig
    genotype: str | dict | None = None
    heads_from: str = "genotype"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    task_config: TaskConfig = field(default_factory=TaskConfig)

    def validate(self) -> ExperimentConfig:
        if self.task not in task_names():
            raise ValueError(f"task={self.task!r}; accepted: {task_names()}")
        want = get_task(self.task).config_class
        if type(self.task_config) is not want:
            raise TypeError(
                f"task_config of task {self.task!r} must be a {want.__name__}, got "
                f"{type(self.task_config).__name__}"
            )
        if self.heads_from not in HEADS_FROM:
            raise ValueError(f"heads_from={self.heads_from!r}; accepted: {HEADS_FROM}")
        self.model.validate()
        self.search_model.validate()
        if self.search_model.genotype is not None:
            raise ValueError("search_model.genotype must be None (the supernet searches it)")
        for b in self.data.bucket_boundaries[-1:]:
            if b != self.model.max_regions:
                raise ValueError(
                    f"the last bucket boundary ({b}) must equal model.max_regions "
                    f"({self.model.max_regions})"
                )
        self.data.validate()
        self.train.validate()
        self.search.validate()
        self.task_config.validate()
        return self

    def load_genotype(self, override: str | None = None) -> Genotype:
        """The genotype to retrain (``override`` = the ``--genotype`` flag), adapted to
        ``heads_from``."""
        source = override or self.genotype
        if source is None:
            raise ValueError(f"experiment {self.name!r} has no genotype; pass --genotype=PATH")
        if isinstance(source, dict):
            genotype = Genotype.from_dict(source)
        else:
            path = source
            if not os.path.exists(path) and os.path.exists(
                os.path.join(GENOTYPE_DIR, os.path.basename(path))
            ):
                path = os.path.join(GENOTYPE_DIR, os.path.basename(path))
            genotype = Genotype.load(path)
        if self.heads_from == "config":
            genotype = Genotype(genotype.encoder, genotype.decoder, None)
        return genotype

    def model_config(self, genotype: Genotype | None = None, **changes) -> ModelConfig:
        """The retrain ModelConfig with ``genotype`` set (M and N follow the genotype)."""
        if genotype is not None:
            changes.update(
                genotype=genotype,
                num_encoder_blocks=len(genotype.encoder),
                num_decoder_blocks=len(genotype.decoder),
            )
        return self.model.replace(**changes)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["model"] = self.model.to_dict()
        out["search_model"] = self.search_model.to_dict()
        return out


# ---- overrides -------------------------------------------------------------------------------


def _parse_value(text: str, current):
    if isinstance(current, bool):
        low = text.lower()
        if low not in ("true", "false", "1", "0"):
            raise ValueError(f"expected a bool (true/false), got {text!r}")
        return low in ("true", "1")
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    if isinstance(current, tuple):
        value = json.loads(text if text.startswith("[") else f"[{text}]") if text else []
        return tuple(value)
    if isinstance(current, str):
        return text
    if current is None:
        if text.lower() == "none":
            return None
        if text.lower() in ("true", "false"):  # a bool | None field (the flags write True)
            return text.lower() == "true"
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    raise ValueError(f"cannot override a field of type {type(current).__name__} from text")


def _set(obj, path: Sequence[str], text: str, full: str):
    names = [f.name for f in dataclasses.fields(obj)]
    if path[0] not in names:
        raise ValueError(f"unknown config field {full!r}: {type(obj).__name__} has {names}")
    current = getattr(obj, path[0])
    if len(path) == 1:
        if path[0] in ("genotype", "pools") and isinstance(obj, ModelConfig):
            raise ValueError(f"{full}: set the genotype with --genotype, not an override")
        if path[0] == "sizes_from_data":  # names, not JSON: max_regions,max_tokens
            value = tuple(part.strip() for part in text.split(",") if part.strip())
        else:
            value = _parse_value(text, current)
    else:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"{full}: {path[0]!r} has no sub-fields")
        value = _set(current, path[1:], text, full)
    return dataclasses.replace(obj, **{path[0]: value})


def apply_overrides(config: ExperimentConfig, overrides: Iterable[str]) -> ExperimentConfig:
    """Applies ``section.field=value`` strings (e.g. ``model.hidden_size=64``,
    ``train.decay_epochs=10,12``, ``model.num_answers=none``) and re-validates; a path of
    :data:`MOVED_OVERRIDES` sets the paths it moved to."""
    for item in overrides:
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form section.field=value")
        key, text = item.split("=", 1)
        key = key.strip()
        for old, new in get_task(config.task).renamed_overrides.items():
            if key.startswith(old):
                key = new + key[len(old) :]
        for target in MOVED_OVERRIDES.get(key, (key,)):
            path = target.split(".")
            config = _set(config, path, text.strip(), target)
            if path[0] in ("model", "search_model") and path[1:] and path[1] in DATA_SIZES:
                follow = tuple(n for n in config.data.sizes_from_data if n != path[1])
                config = dataclasses.replace(
                    config, data=dataclasses.replace(config.data, sizes_from_data=follow)
                )
    return config.validate()


def split_overrides(flag_values: Sequence[str]) -> list[str]:
    """``--override`` values, each possibly holding several ``a=b`` separated by ``;``."""
    return [part for value in flag_values for part in value.split(";") if part.strip()]


# ---- registry --------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[[], ExperimentConfig]] = {}


def register(name: str):
    """Decorator registering a zero-argument builder of an ``ExperimentConfig`` (the tasks' own
    ``<task>`` / ``<task>_tiny`` are derived, not registered)."""

    def wrap(fn: Callable[[], ExperimentConfig]):
        if name in _REGISTRY or name in _derived():
            raise ValueError(f"experiment {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return wrap


#: The named experiments derived for every registered task: ``<task>`` and ``<task>_tiny``.
DERIVED: dict[str, Callable[[str], ExperimentConfig]] = {
    "{task}": lambda task: paper_experiment(task),
    "{task}_tiny": lambda task: tiny_experiment(task),
}


def _derived() -> dict[str, Callable[[], ExperimentConfig]]:
    """The named experiments of the tasks registered now (asked each time, so a task registered
    after this module was imported has its ``--config=<task>`` too)."""
    return {
        pattern.format(task=task): (lambda make=make, task=task: make(task))
        for task in task_names()
        for pattern, make in DERIVED.items()
    }


def experiment_names() -> list[str]:
    return sorted({**_derived(), **_REGISTRY})


def get_experiment(name: str) -> ExperimentConfig:
    """A named experiment (registered, or derived from a registered task), or the
    ``get_config()`` of a ``.py`` file path."""
    if name.endswith(".py"):
        return load_config_file(name)
    named = {**_derived(), **_REGISTRY}
    if name not in named:
        raise ValueError(
            f"unknown experiment {name!r}; accepted: {experiment_names()} or a .py file"
        )
    return named[name]().validate()


def load_config_file(path: str) -> ExperimentConfig:
    """Runs ``get_config()`` of a recipe file (a ``.py`` path)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"config file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"_mmnas_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"{path} defines no get_config()")
    config = module.get_config()
    if not isinstance(config, ExperimentConfig):
        raise TypeError(
            f"{path}: get_config() returned {type(config).__name__}, not ExperimentConfig"
        )
    return config.validate()


# ---- named experiments -----------------------------------------------------------------------


def paper_experiment(task: str) -> ExperimentConfig:
    """The paper-size experiment of ``task``: retrain d=512/8 heads, search d=256/4 heads, M/N
    12/18, the task's sizes and recipe (``Task.recipe``, the original's)."""
    t = get_task(task)
    recipe = t.recipe
    model = t.model_config()
    # The original search config (ATTFLAT_MLP_SIZE 512, ATTFLAT_OUT_SIZE 512): reproduces its supernet count.
    search_model = model.replace(
        hidden_size=256, num_heads=4, ffn_size=1024, pool_mlp_size=512, pool_output_size=512
    )
    train = TrainConfig(
        epochs=recipe.epochs,
        learning_rate=recipe.learning_rate,
        decay_epochs=tuple(recipe.decay_epochs),
    )
    search = SearchConfig(weight_learning_rate=recipe.search_weight_learning_rate)
    return ExperimentConfig(
        name=task,
        task=task,
        model=model,
        search_model=search_model,
        genotype=os.path.join(GENOTYPE_DIR, recipe.genotype) if recipe.genotype else None,
        data=DataConfig(bucketing=t.variable_regions),
        train=train,
        search=search,
        task_config=t.task_config(),
    )


#: The tiny genotype: exercises every decoder op (RSA, GA, FFN) and both encoder ops.
TINY_GENOTYPE = {
    "format": "mmnas_tf.genotype/1",
    "encoder": ["SA", "FFN"],
    "decoder": ["RSA", "GA", "FFN"],
}


def tiny_experiment(task: str) -> ExperimentConfig:
    """A CI-size variant: d=32 / 4 heads (search d=16 / 2 heads), M/N 2/3, 8 tokens and 6 regions
    until a run reads data (then the data's: ``data.sizes_from_data``), 3 epochs at lr 1e-3
    (decay from the third), batch 8; the recipe's shape otherwise."""
    paper = paper_experiment(task)
    model = ModelConfig(
        hidden_size=32,
        num_heads=4,
        ffn_size=64,
        relation_size=8,
        dropout=0.1,
        vocab_size=64,
        word_embed_size=300,
        feature_size=32,
        max_tokens=8,
        max_regions=6,
        pool_mlp_size=32,
        pool_output_size=64,
        num_encoder_blocks=2,
        num_decoder_blocks=3,
    )
    search_model = model.replace(
        hidden_size=16, num_heads=2, ffn_size=32, pool_mlp_size=16, pool_output_size=32
    )
    return dataclasses.replace(
        paper,
        name=f"{task}_tiny",
        model=model,
        search_model=search_model,
        genotype=dict(TINY_GENOTYPE),
        heads_from="config",
        data=dataclasses.replace(
            paper.data,
            batch_size=8,
            eval_batch_size=32,
            shuffle_buffer=256,
            sizes_from_data=DATA_SIZES,
        ),
        train=dataclasses.replace(
            paper.train,
            epochs=3,
            learning_rate=1e-3,
            decay_epochs=(2,),
            checkpoint_every_steps=50,
            log_every_steps=10,
        ),
        search=dataclasses.replace(paper.search, warmup_epochs=1, search_epochs=2),
        task_config=get_task(task).task_config(tiny=True),
    )
