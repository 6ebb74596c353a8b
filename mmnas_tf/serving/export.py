"""SavedModel export following the contract in the README (named inputs, dict outputs).

Uses ``tf.saved_model.save`` with explicit signatures: Keras 3's ``model.export`` writes the
variables twice. The module tracks the ``tf.Variable`` behind every Keras variable
(``ServingModule.tf_variables``): without that, the variables are saved for ``tf.saved_model.load``
but the MetaGraph's saver does not restore them, so TF1-style loaders (``tensorflow_model_server``,
``saved_model_cli run``: import the graph, run the restore op, run the init op) fail with "Could not
find variable ... uninitialized". The version directory is written under a temporary name and renamed into place,
so a server polling ``BASE`` never loads a half-written version.
"""

from __future__ import annotations

import os
import shutil

import tensorflow as tf

from mmnas_tf.config import ModelConfig
from mmnas_tf.serving.text_signature import PREDICT_TEXT, make_text_signature
from mmnas_tf.serving.warmup import warmup_requests, write_warmup_requests
from mmnas_tf.tasks import get_task

ANSWERS_ASSET = "answers.txt"
VOCAB_ASSET = "vocab.txt"


class ServingModule(tf.Module):
    """Holds the Keras model, the task's output mapping and the vocabulary assets.

    ``serving_default`` takes the contract's inputs and returns the task's serving outputs
    (relation features, masks and VG decoding run in-graph inside the model / task).
    """

    def __init__(
        self, model, task_name: str, config: ModelConfig, vocab_file=None, answers_file=None
    ):
        super().__init__()
        self.model = model
        self.task = get_task(task_name)
        self.config = config
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

    def predict(self, inputs: dict) -> dict:
        outputs = self.model(inputs, training=False)
        return self.task.serving_outputs(outputs, inputs, self.answer_table)

    def serving_function(self):
        spec = self.task.input_spec(self.config)
        names = list(spec)

        def serve(**kwargs):
            return self.predict({k: kwargs[k] for k in names})

        return tf.function(serve).get_concrete_function(**spec)

    def signatures(self) -> dict:
        serving_default = self.serving_function()
        # After tracing (which builds the model): the backing tf.Variables, tracked so that the
        # MetaGraph's saver restores them for the TF1 loader of TF Serving; the Keras 3 variables
        # alone are only restored by tf.saved_model.load.
        self.tf_variables = [v.value for v in self.model.variables]
        signatures = {"serving_default": serving_default}
        if self.vocab_asset is not None:  # raw strings in, tokenised in-graph with the asset
            spec = self.task.input_spec(self.config)
            # Calls the traced serving_default instead of tracing the network a second time.
            signatures[PREDICT_TEXT] = make_text_signature(
                self, lambda inputs: serving_default(**inputs), self.vocab_asset, spec
            )
        return signatures


def export_saved_model(
    model,
    task_name: str,
    config: ModelConfig,
    export_dir: str,
    version: int = 1,
    vocab_file: str | None = None,
    answers_file: str | None = None,
    overwrite: bool = False,
    module_class=ServingModule,
) -> str:
    """Writes ``export_dir/<version>/`` and returns its path.

    Args:
      model: the Keras task model.
      task_name: "vqa", "itm" or "vg".
      config: the model's ModelConfig (fixes the signature shapes m and n).
      export_dir: the base path TF Serving watches.
      version: positive int, the version directory.
      vocab_file / answers_file: vocabularies copied in as assets (answers give string outputs).
      overwrite: replace an existing version instead of refusing.
    """
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
        model, task_name, config, vocab_file=vocab_file, answers_file=answers_file
    )
    signatures = module.signatures()
    tf.saved_model.save(module, tmp, signatures=signatures)
    write_warmup_requests(tmp, warmup_requests(task_name, signatures))
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final
