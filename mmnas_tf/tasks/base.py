"""The Task protocol: everything that differs between VQA, ITM and VG lives in a Task object.

In the manner of Model Garden's ``base_task``: a task owns its record format (input parsing and
target construction, as a ``data.schema.RecordFormat``), its model, loss, metrics (update, result
and the aggregation of an evaluation), per-epoch hooks, serving outputs and input spec, sizes,
default recipe, typed config section, synthetic generator, the text of its served outputs and the
mapping of the original checkpoints' head. Training, search, evaluation, serving, import,
conversion and the pictures are generic and ask the task; none of them branches on its name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
from keras import ops

from mmnas_tf import inputs as names
from mmnas_tf.config import ModelConfig
from mmnas_tf.console import Progress
from mmnas_tf.data import schema
from mmnas_tf.data.pipeline import Pipeline, PipelineConfig, region_buckets
from mmnas_tf.data.writer import split_examples


def sigmoid_cross_entropy_sum(labels, logits):
    """Sum over every element of BCE-with-logits (the original's ``BCEWithLogitsLoss(sum)``)."""
    logits = ops.cast(logits, "float32")  # a bfloat16 sum over B x k terms loses the loss
    labels = ops.cast(labels, logits.dtype)
    per = ops.maximum(logits, 0) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))
    return ops.sum(per)


def replica_sum(value):
    """``value`` summed over the replicas of the running distributed step (``value`` itself on one
    device or outside a replica context). For denominators that must be the GLOBAL batch's: with
    them each replica's loss is its share of the global loss, and the SUM all-reduce of the
    gradients is the single-device gradient. The count carries no gradient."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return tf.stop_gradient(context.all_reduce(tf.distribute.ReduceOp.SUM, value))


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A task's default recipe (the original's): the paper-size experiment reads it.

    Attributes:
      epochs: retraining epochs.
      learning_rate: retraining base learning rate.
      decay_epochs: 0-based epochs from which the rate is multiplied by 0.2 (``(10, 12)``: the
        11th and 13th epochs start the lower rates; ``engine.schedules.EpochSchedule``).
      search_weight_learning_rate: the supernet weights' rate during the search.
      genotype: the published architecture, a file name in ``mmnas_tf/genotypes/`` (package data).
    """

    epochs: int = 13
    learning_rate: float = 1e-4
    decay_epochs: tuple[int, ...] = (10, 12)
    search_weight_learning_rate: float = 4e-4
    genotype: str | None = None


@dataclasses.dataclass
class TaskConfig:
    """The experiment section of what only one task reads (``ExperimentConfig.task_config``); a
    task with such settings subclasses it (ITM: ``tasks.itm.config.ITMConfig``) and names the
    subclass in ``Task.config_class``. Overrides reach its fields as ``task_config.<field>``."""

    def validate(self) -> TaskConfig:
        return self


@dataclasses.dataclass
class Annotation:
    """What a task's served outputs say about one example (:meth:`Task.annotate`).

    Attributes:
      lines: the prediction as readable lines (what ``python -m mmnas_tf.predict`` prints).
      answers: ranked (label, score) pairs to list beside the picture (VQA's top answers).
      score: one score to show (ITM's match score).
      chosen: the region slot the prediction points at (VG's chosen proposal), or None.
      box: a box to draw, x1 y1 x2 y2 pixels (VG's decoded box), or None.
    """

    lines: list[str]
    answers: list[tuple[str, float]] = dataclasses.field(default_factory=list)
    score: float | None = None
    chosen: int | None = None
    box: object = None


def text(value) -> str:
    """A served string (bytes from a SavedModel) as ``str``."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@dataclasses.dataclass
class EpochHooks:
    """What a task adds to the generic epoch loop (training and search alike).

    Attributes:
      before_epoch: ``fn(epoch)`` run at the start of a fresh epoch, not when resuming mid-epoch
        (its results must then be in ``trackables``).
      batch_fn: in-graph ``fn(inputs, targets) -> (inputs, targets)`` applied per replica batch.
      trackables: objects the checkpoint must hold to resume mid-epoch.
    """

    before_epoch: Callable[[int], None] | None = None
    batch_fn: Callable[[dict, dict], tuple[dict, dict]] | None = None
    trackables: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SourceFlag:
    """A command-line flag of ``python -m mmnas_tf.convert`` naming a task's source files.

    Attributes:
      name: the flag name.
      kind: ``string``, ``multi_string`` (repeatable), ``list`` (comma-separated) or ``integer``.
      default: the flag's default.
      help: its help text.
    """

    name: str
    kind: str
    default: object
    help: str


class SourceFlagError(ValueError):
    """A converter's source flags are missing or malformed (the message names the flag)."""


def predict_fn(model) -> Callable[[dict], dict]:
    """``model`` in inference mode as one ``tf.function`` (traced once per input shape)."""
    import tensorflow as tf

    return tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)


class Task(schema.RecordFormat):
    """What one task owns; the loops, drivers, serving and import code ask it.

    Class attributes: ``name`` (the registry key and the manifest's task), the record format's
    ``target_fields`` / ``uses_answer_vocabulary`` (see ``RecordFormat``), ``max_tokens`` /
    ``max_regions`` (default padded sentence length m and region count n), ``needs_image_size``,
    ``recipe`` (:class:`Recipe`), ``head_keys`` (the output layers of the original checkpoints) and
    ``prediction_output`` (the serving output holding the prediction).

    Hooks, by concern:
      data: the ``RecordFormat`` hooks; :meth:`pipeline_config` / :meth:`build_inputs`.
      model and loss: :meth:`build_model`, :meth:`compute_loss`.
      metrics: :meth:`build_metrics`, :meth:`update_metrics` (in-graph, e.g. the search's metric
        of the argmax architecture); an evaluation: :meth:`evaluate` runs :meth:`validation_step`,
        :meth:`aggregate_logs` and :meth:`reduce_aggregated_logs` over the evaluation split.
      configs: ``config_class`` and :meth:`task_config` (the experiment's ``task_config``).
      loop: :meth:`epoch_hooks`.
      serving: :meth:`input_spec`, :meth:`serving_outputs`; what served outputs say:
        :meth:`annotate`.
      conversion of real data: ``source_flags``, :meth:`convert_sources`; synthetic data:
        :meth:`synthetic_generator`.
      original checkpoints: :meth:`matches_original`, :meth:`original_num_answers`,
        :meth:`original_head`.
    """

    #: default padded sentence length m and region count n.
    max_tokens: int = 14
    max_regions: int = 100
    #: whether the model needs ``image_size`` (VG decodes and clips boxes in pixels).
    needs_image_size: bool = False
    #: the output layer names in the original checkpoints (identify the task of a state dict).
    head_keys: tuple[str, ...] = ()
    #: the serving output that carries the task's prediction (tells a task's outputs apart).
    prediction_output: str = ""
    recipe: Recipe = Recipe()
    #: the task model's outputs: name -> per-example shape ("k": one per answer, "n": one per
    #: region); ``serving_outputs`` maps them to the serving contract.
    model_outputs: dict[str, tuple] = {}
    #: the flags of the converter of real data (``convert_sources``).
    source_flags: tuple[SourceFlag, ...] = ()
    #: the typed section of what only this task reads (``ExperimentConfig.task_config``).
    config_class: type[TaskConfig] = TaskConfig
    #: override paths that moved into ``task_config`` (old prefix -> new prefix), still accepted.
    renamed_overrides: dict[str, str] = {}
    #: whether images carry a variable number of regions: the named experiments then group
    #: training batches by region count (``DataConfig.bucketing``).
    variable_regions: bool = False
    #: the serving outputs this task adds to its model's (``serving_outputs``); code outside the
    #: task reads them only through :meth:`annotate`.
    output_keys: tuple[str, ...] = ()
    #: the explain output that weighs the regions in a picture (``viz.explain``).
    region_weights: str = "image_weights"

    def __repr__(self) -> str:
        return f"<task {self.name!r}>"

    # ---- configs ---------------------------------------------------------------------------------
    def task_config(self, tiny: bool = False) -> TaskConfig:
        """This task's ``task_config`` section of the paper-size (or, ``tiny``, the CI-size)
        named experiment."""
        return self.config_class()

    # ---- model and loss --------------------------------------------------------------------------
    def model_config(self, **overrides) -> ModelConfig:
        """A ModelConfig with this task's default sizes."""
        overrides.setdefault("max_tokens", self.max_tokens)
        overrides.setdefault("max_regions", self.max_regions)
        return ModelConfig(**overrides)

    def build_model(self, config: ModelConfig) -> keras.Model:
        raise NotImplementedError

    def compute_loss(self, model, inputs: dict, targets: dict, training=None, arch=None):
        """Runs ``model`` as the task needs and returns the scalar (sum-reduced) loss."""
        raise NotImplementedError

    # ---- data ------------------------------------------------------------------------------------
    def pipeline_config(self, data, model: ModelConfig, training: bool = True, **overrides):
        """The ``PipelineConfig`` of an experiment's ``data`` section (a ``DataConfig``) and model
        sizes: training batches shuffle with ``data.seed`` and, with ``data.bucketing``, are
        grouped by region count and padded to their bucket's boundary; evaluation batches
        (``training=False``) are ``data.eval_batch_size`` in a fixed order and, with
        ``data.eval_padding == "batch"``, grouped by region count and padded only to their own
        largest count. Boundaries: ``data.bucket_boundaries`` or every tenth of
        ``model.max_regions``. ``overrides`` replace any field (e.g. ``seed``, ``subset``,
        ``repeat``; ``bucket_boundaries=None`` pads every image to ``max_regions``)."""
        grouped = data.bucketing if training else data.eval_padding == "batch"
        bounds = tuple(data.bucket_boundaries) or region_buckets(model.max_regions)
        fields = dict(
            task=self,
            batch_size=data.batch_size if training else data.eval_batch_size,
            max_tokens=model.max_tokens,
            max_regions=model.max_regions,
            training=training,
            num_answers=model.num_answers,
            shuffle_buffer=data.shuffle_buffer,
            seed=data.seed,
            deterministic=not training,
            subset_ratio=tuple(data.search_ratio),
            subset_seed=data.seed,
            bucket_boundaries=bounds if grouped else None,
            pad_to="bucket" if training else "batch",
        )
        fields.update(overrides)
        return PipelineConfig(**fields)

    def build_inputs(
        self, data, model: ModelConfig, split: str, training: bool = True, **overrides
    ):
        """The ``tf.data`` dataset of ``(inputs, targets)`` batches of one split of
        ``data.data_dir`` (arguments as :meth:`pipeline_config`)."""
        config = self.pipeline_config(data, model, training, **overrides)
        return Pipeline(data.data_dir, split, config).dataset()

    def convert_sources(self, sources: dict, out_dir: str) -> tuple[dict, dict]:
        """``(splits, extra manifest entries)`` of the real dataset named by ``sources`` (the
        values of ``source_flags`` by name): ``splits`` maps a split name to its
        ``data.converters.common.ImageItem`` s. Raises ``SourceFlagError`` naming a missing or
        malformed flag."""
        raise SourceFlagError(f"task {self.name!r} has no converter of real data")

    # ---- metrics and evaluation ------------------------------------------------------------------
    def build_metrics(self) -> list[keras.metrics.Metric]:
        """The in-graph metrics of the task (fresh objects)."""
        return []

    def update_metrics(self, metrics: list, outputs: dict, inputs: dict, targets: dict) -> None:
        """Updates :meth:`build_metrics` ' metrics from one batch's model outputs (in-graph)."""

    def validation_step(self, outputs: dict, inputs: dict, targets: dict) -> dict:
        """The logs of one evaluation batch (numpy / Python values) that the evaluation keeps."""
        return {"examples": int(inputs[names.TEXT_IDS].shape[0])}

    def aggregate_logs(self, state, logs: dict):
        """Folds one batch's logs into the evaluation's state (``None`` at the first batch)."""
        state = dict(state or {})
        for key, value in logs.items():
            state[key] = state.get(key, 0) + value
        return state

    def reduce_aggregated_logs(
        self, state, metrics: list, data, split: str, output_dir: str
    ) -> dict:
        """The evaluation's JSON-safe metrics from the aggregated state and the metrics."""
        out = dict(state or {})
        out.update({m.name: float(m.result()) for m in metrics})
        return out

    def evaluate(self, model, data, config: ModelConfig, split: str, output_dir: str) -> dict:
        """Evaluates ``model`` on ``split`` of ``data.data_dir`` (the model's sizes ``config``);
        files it writes go to ``output_dir``. The default runs the evaluation pipeline through
        :meth:`update_metrics`, :meth:`validation_step` and :meth:`aggregate_logs`, then
        :meth:`reduce_aggregated_logs`; a progress line counts the examples."""
        predict, metrics, state = predict_fn(model), self.build_metrics(), None
        total = split_examples(data.data_dir, split)
        bar = Progress(total, f"evaluate {self.name}/{split}", unit="examples")
        for inputs, targets in self.build_inputs(data, config, split, training=False):
            outputs = predict(inputs)
            self.update_metrics(metrics, outputs, inputs, targets)
            state = self.aggregate_logs(state, self.validation_step(outputs, inputs, targets))
            bar.update(int(inputs[names.TEXT_IDS].shape[0]))
        bar.close()
        return self.reduce_aggregated_logs(state, metrics, data, split, output_dir)

    # ---- the epoch loop --------------------------------------------------------------------------
    def epoch_hooks(self, experiment, config: ModelConfig, model) -> EpochHooks:
        """The hooks of training or searching ``model`` (a callable returning the task model's
        outputs in inference mode when called with ``training=False``) in ``experiment``
        (an ``ExperimentConfig``; ``config`` the model's sizes). Default: none."""
        return EpochHooks()

    # ---- serving ---------------------------------------------------------------------------------
    def serving_outputs(self, outputs: dict, inputs: dict, answer_table=None) -> dict:
        """Maps model outputs to the SavedModel contract's outputs."""
        raise NotImplementedError

    def annotate(self, outputs: dict, index: int = 0, answers=None) -> Annotation:
        """What example ``index`` of served outputs (``serving_outputs``, numpy or tensors, from
        a Keras model or a SavedModel alike) says, as text lines and picture marks. ``answers``:
        the answer list, for outputs that hold class ids instead of strings."""
        raise NotImplementedError

    def input_names(self, config: ModelConfig) -> tuple[str, ...]:
        base = (names.TEXT_IDS, names.IMAGE_FEATURES, names.BOXES)
        if self.needs_image_size or config.box_embedding_size:
            return base + (names.IMAGE_SIZE,)
        return base

    def input_spec(self, config: ModelConfig) -> dict:
        """Shapes and dtypes of the model inputs (batch dimension None)."""
        import tensorflow as tf

        spec = {
            names.TEXT_IDS: tf.TensorSpec([None, config.max_tokens], tf.int32, names.TEXT_IDS),
            names.IMAGE_FEATURES: tf.TensorSpec(
                [None, config.max_regions, config.feature_size], tf.float32, names.IMAGE_FEATURES
            ),
            names.BOXES: tf.TensorSpec([None, config.max_regions, 4], tf.float32, names.BOXES),
            names.IMAGE_SIZE: tf.TensorSpec([None, 2], tf.float32, names.IMAGE_SIZE),
        }
        return {k: spec[k] for k in self.input_names(config)}

    # ---- synthetic data --------------------------------------------------------------------------
    def synthetic_generator(self):
        """The ``synthbench.benchmark.Generator`` writing this task's synthetic texts and targets
        (``python -m mmnas_tf.synthetic``), or None."""
        return None

    # ---- original checkpoints --------------------------------------------------------------------
    def matches_original(self, state_dict: dict) -> bool:
        """Whether an original state dict carries this task's head."""
        return False

    def original_num_answers(self, state_dict: dict) -> int | None:
        """The ``ModelConfig.num_answers`` an original state dict implies."""
        return None

    def original_head(self, model) -> list[tuple[str, str, object]]:
        """The head's layers as ``(original key prefix, kind, Keras layer)``, kind one of
        ``dense``, ``norm`` (the original's LayerNorm) or ``pooling`` (attention pooling)."""
        raise NotImplementedError


def classifier_head(model) -> list[tuple[str, str, object]]:
    """:meth:`Task.original_head` of an ``MMnasClassifier`` (the VQA and ITM heads)."""
    return [
        ("attflat_y", "pooling", model.image_pooling),
        ("proj_norm", "norm", model.fusion_norm),
        ("proj", "dense", model.classifier),
    ]
