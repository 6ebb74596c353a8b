"""SavedModel export following the contract in the README (named inputs, dict outputs).

Uses ``tf.saved_model.save`` with explicit signatures: Keras 3's ``model.export`` writes the
variables twice. The module tracks the ``tf.Variable`` behind every Keras variable
(``ServingModule.tf_variables``): without that, the variables are saved for ``tf.saved_model.load``
but the MetaGraph's saver does not restore them, so TF1-style loaders (``tensorflow_model_server``,
``saved_model_cli run``: import the graph, run the restore op, run the init op) fail with "Could not
find variable ... uninitialized". The version directory is written under a temporary name and renamed into place,
so a server polling ``BASE`` never loads a half-written version.

Precision: the export computes in the dtype policy the model was built with (float32 by default;
``export_checkpoint(dtype_policy="mixed_bfloat16")`` builds it under bf16). Either way the
signatures take and return float32 (and int32 / string): inputs are cast inside the model, floating
outputs cast back to float32; variables are stored in float32.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import tensorflow as tf

from mmnas_tf.config import ModelConfig
from mmnas_tf.inputs import BOXES, IMAGE_FEATURES, TEXT_IDS
from mmnas_tf.serving.signatures import InputLimits
from mmnas_tf.serving.text_signature import PREDICT_TEXT, make_text_signature
from mmnas_tf.serving.warmup import warmup_requests, write_warmup_requests
from mmnas_tf.tasks import get_task


class ServingModule(tf.Module):
    """Holds the Keras model, the task's output mapping and the vocabulary assets.

    ``serving_default`` takes the contract's inputs and returns the task's serving outputs
    (relation features, masks and VG decoding run in-graph inside the model / task). By default it
    takes any number of tokens and regions up to the model's maxima (m, n): text is padded to m
    in-graph (the sentence LSTM runs over a fixed length, as the original's), regions run as sent.
    ``fixed_shapes`` keeps exactly [B, m] / [B, n, d] (static shapes for XLA / TPU). Either way the
    graph asserts the limits and the token id range, so TF Serving answers INVALID_ARGUMENT.
    """

    def __init__(
        self,
        model,
        task_name: str,
        config: ModelConfig,
        vocab_file=None,
        answers_file=None,
        fixed_shapes: bool = False,
        explain: bool = False,
    ):
        super().__init__()
        self.model = model
        self.explain = explain
        self.task = get_task(task_name)
        self.config = config
        self.fixed_shapes = fixed_shapes
        self.limits = InputLimits(config.max_tokens, config.max_regions, config.vocab_size)
        self.answer_table = None
        self.vocab_asset = None
        if answers_file:
            self.answers_asset = tf.saved_model.Asset(answers_file)
            self.answer_table = tf.lookup.StaticHashTable(
                tf.lookup.TextFileInitializer(
                    self.answers_asset,
                    key_dtype=tf.int64,
                    key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
                    value_dtype=tf.string,
                    value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
                ),
                default_value="<unk>",
            )
        if vocab_file:
            self.vocab_asset = tf.saved_model.Asset(vocab_file)
        limits = {k: tf.constant(v) for k, v in dataclasses.asdict(self.limits).items()}
        # Read by the server (InputLimits.of_saved_model) to validate before batching.
        self.input_limits = tf.function(lambda: limits, input_signature=[])

    def predict(self, inputs: dict) -> dict:
        outputs = self.model(inputs, training=False)
        return float32_outputs(self.task.serving_outputs(outputs, inputs, self.answer_table))

    def input_spec(self) -> dict:
        """serving_default's input specs: axis 1 of text and regions variable unless fixed."""
        spec = self.task.input_spec(self.config)
        if self.fixed_shapes:
            return spec
        return {
            k: tf.TensorSpec([None, None, *s.shape[2:]], s.dtype, k) if k in _VARIABLE else s
            for k, s in spec.items()
        }

    def checked_inputs(self, inputs: dict) -> dict:
        """``inputs`` after in-graph checks of the limits; text padded to m for the model."""
        ids, limits = inputs[TEXT_IDS], self.limits
        checks = [
            tf.debugging.assert_non_negative(ids, message=limits.ids_out_of_range()),
            tf.debugging.assert_less(ids, limits.vocab_size, message=limits.ids_out_of_range()),
        ]
        if not self.fixed_shapes:
            regions = tf.shape(inputs[IMAGE_FEATURES])[1]
            checks += [
                tf.debugging.assert_less_equal(
                    tf.shape(ids)[1], limits.max_tokens, message=limits.too_long(TEXT_IDS)
                ),
                tf.debugging.assert_less_equal(
                    regions, limits.max_regions, message=limits.too_long(IMAGE_FEATURES)
                ),
                tf.debugging.assert_equal(
                    tf.shape(inputs[BOXES])[1], regions, message=limits.regions_differ()
                ),
                tf.debugging.assert_positive(regions, message=limits.no_regions()),
            ]
        with tf.control_dependencies(checks):
            checked = {k: tf.identity(v) for k, v in inputs.items()}
        ids = checked[TEXT_IDS]
        padded = tf.pad(ids, [[0, 0], [0, limits.max_tokens - tf.shape(ids)[1]]])
        checked[TEXT_IDS] = tf.ensure_shape(padded, [None, limits.max_tokens])
        return checked

    def serving_function(self):
        spec = self.input_spec()
        names = list(spec)

        def serve(**kwargs):
            return self.predict(self.checked_inputs({k: kwargs[k] for k in names}))

        return tf.function(serve).get_concrete_function(**spec)

    def explain_function(self):
        """The ``explain`` signature: serving_default's inputs; its outputs plus the attention
        weights (``mmnas_tf.viz.explain_outputs``: text / image pooling weights, VG region scores,
        each GA block's region-to-word map averaged over heads)."""
        from mmnas_tf.viz.explain import explain_outputs

        spec = self.input_spec()
        names = list(spec)

        def explain(**kwargs):
            inputs = self.checked_inputs({k: kwargs[k] for k in names})
            return float32_outputs(
                explain_outputs(self.model, self.task.name, inputs, self.answer_table)
            )

        return tf.function(explain).get_concrete_function(**spec)

    def signatures(self) -> dict:
        serving_default = self.serving_function()
        # After tracing (which builds the model): the backing tf.Variables, tracked so that the
        # MetaGraph's saver restores them for the TF1 loader of TF Serving; the Keras 3 variables
        # alone are only restored by tf.saved_model.load.
        self.tf_variables = [v.value for v in self.model.variables]
        signatures = {"serving_default": serving_default}
        if self.explain:
            from mmnas_tf.viz.explain import EXPLAIN_SIGNATURE

            signatures[EXPLAIN_SIGNATURE] = self.explain_function()
        if self.vocab_asset is not None:  # raw strings in, tokenised in-graph with the asset
            # Calls the traced serving_default instead of tracing the network a second time.
            signatures[PREDICT_TEXT] = make_text_signature(
                self,
                lambda inputs: serving_default(**inputs),
                self.vocab_asset,
                self.input_spec(),
                max_len=self.config.max_tokens,
            )
        return signatures


def float32_outputs(outputs: dict) -> dict:
    """``outputs`` with every floating tensor as float32: a model built under ``mixed_bfloat16``
    exports the same signature dtypes as a float32 one (its logits already are float32; attention
    maps are not)."""
    return {
        k: tf.cast(v, tf.float32) if v.dtype.is_floating and v.dtype != tf.float32 else v
        for k, v in outputs.items()
    }


_VARIABLE = (TEXT_IDS, IMAGE_FEATURES, BOXES)  # inputs whose axis 1 may be shorter than the maxima


def next_version(export_dir: str) -> int:
    """One more than the highest numeric directory under ``export_dir`` (1 if there is none).

    Half-written versions count too: another export may be writing them.
    """
    if not tf.io.gfile.isdir(export_dir):
        return 1
    numbers = [
        int(e.rstrip("/")) for e in tf.io.gfile.listdir(export_dir) if e.rstrip("/").isdigit()
    ]
    return max(numbers, default=0) + 1


def export_saved_model(
    model,
    task_name: str,
    config: ModelConfig,
    export_dir: str,
    version: int | None = 1,
    vocab_file: str | None = None,
    answers_file: str | None = None,
    overwrite: bool = False,
    module_class=ServingModule,
    fixed_shapes: bool = False,
    explain: bool = False,
) -> str:
    """Writes ``export_dir/<version>/`` and returns its path.

    Args:
      model: the Keras task model.
      task_name: "vqa", "itm" or "vg".
      config: the model's ModelConfig (its maxima m and n, its vocabulary size).
      export_dir: the base path TF Serving watches.
      version: positive int, the version directory; None: :func:`next_version`.
      vocab_file / answers_file: vocabularies copied in as assets (answers give string outputs).
      overwrite: replace an existing version instead of refusing.
      fixed_shapes: signatures take exactly m tokens and n regions (static shapes for XLA / TPU)
        instead of any number up to them.
      explain: add the ``explain`` signature (outputs plus attention weights, docs/explain.md).
    """
    version = next_version(export_dir) if version is None else version
    if not isinstance(version, int) or version <= 0:
        raise ValueError(f"version must be a positive int, got {version!r}")
    for path in (vocab_file, answers_file):
        if path and not os.path.exists(path):
            raise FileNotFoundError(f"vocabulary file not found: {path}")
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final) and not overwrite:
        raise FileExistsError(f"{final} exists; pick another --version or pass overwrite")
    os.makedirs(export_dir, exist_ok=True)
    tmp = os.path.join(export_dir, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    module = module_class(
        model,
        task_name,
        config,
        vocab_file=vocab_file,
        answers_file=answers_file,
        fixed_shapes=fixed_shapes,
        explain=explain,
    )
    signatures = module.signatures()
    try:
        tf.saved_model.save(module, tmp, signatures=signatures)
        write_warmup_requests(tmp, warmup_requests(task_name, signatures))
    except BaseException:  # a full disk, Ctrl-C: no half-written folder stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final
