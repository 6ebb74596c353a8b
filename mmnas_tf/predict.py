"""Asks a served model (TF Serving or ``mmnas_tf.serve``) about one image and prints the answer.

    python -m mmnas_tf.predict --server=127.0.0.1:8500 --model_name=vqa \
        --question="What colour is the cat?" --features=COCO_val2014_000000000042.jpg.npz
    python -m mmnas_tf.predict --server=127.0.0.1:8501 --rest --model_name=vg \
        --question="man on the left" --features=img.npz

``--features`` is a bottom-up-attention ``.npz`` (``x`` 2048 x n or n x 2048, ``bbox``, ``image_h``,
``image_w``). Its regions are sent as they are (an export takes any number up to its n), and
zero-padded to n only for a ``--fixed_shapes`` export; more than n is an error unless
``--truncate_regions``. A failed request ends with the server's error (``mmnas_tf.cli``).

Where the model looked, drawn (needs the ``viz`` extra), from a model directory of
``python -m mmnas_tf.train`` (no server)::

    python -m mmnas_tf.predict --checkpoint=runs/vqa --question="what colour is the square?" \
        --features=img.npz --explain=out.png [--image=photo.jpg]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from absl import flags

from mmnas_tf import cli, precision


def define_flags(fv: flags.FlagValues) -> None:
    for name, default, help_text in (
        ("server", "127.0.0.1:8500", "host:port of the gRPC (with --rest: REST) API."),
        ("model_name", "vqa", "Served model name."),
        ("question", None, "The question / caption / referring expression."),
        ("features", None, "Region-feature .npz of the image."),
        ("version_label", None, "Model version label, e.g. stable or canary."),
        ("vocab", None, "Token vocabulary, only for models without predict_text."),
        ("checkpoint", None, "A model directory of mmnas_tf.train: answer locally, no server."),
        ("explain", None, "PNG: draw the attention (regions, words, answers)."),
        ("image", None, "The photo to draw the regions on (default: a blank canvas)."),
    ):
        flags.DEFINE_string(name, default, help_text, flag_values=fv)
    flags.DEFINE_integer("version", None, "Model version (default: newest).", flag_values=fv)
    flags.DEFINE_bool("rest", False, "Use the REST API instead of gRPC.", flag_values=fv)
    flags.DEFINE_bool(
        "truncate_regions", False, "Keep the first n regions if the file has more.", flag_values=fv
    )
    flags.DEFINE_float("timeout", 30.0, "Seconds per call.", flag_values=fv)
    cli.define_dtype_policy_flag(fv)  # --checkpoint only: a server's model has its own
    flags.mark_flags_as_required(["question", "features"], flag_values=fv)


def main(argv: Sequence[str]) -> str:
    """Prints and returns the answer; a failed request raises ``ServingClientError``."""
    fv = cli.parse(define_flags, argv)
    if fv.checkpoint:
        return _local(fv)
    from mmnas_tf.devserver.client import ServingClient
    from mmnas_tf.devserver.one_image import build_request, describe_outputs

    client = ServingClient(
        fv.server,
        fv.model_name,
        rest=fv.rest,
        version=fv.version,
        version_label=fv.version_label,
        timeout=fv.timeout,
    )
    try:
        if fv.explain:
            return _served_explain(client, fv)
        signature, inputs = build_request(client, fv.question, fv.features, fv.vocab)
        outputs = client.predict(inputs, signature_name=signature, truncate=fv.truncate_regions)
    finally:
        client.close()
    text = describe_outputs(outputs)
    print(text)
    return text


def _served_explain(client, fv) -> str:
    """Asks the served model's ``explain`` signature and draws its answer to --explain."""
    import numpy as np

    from mmnas_tf import viz
    from mmnas_tf.data.converters.region_features import load_regions
    from mmnas_tf.devserver.client import pad_to_signature
    from mmnas_tf.devserver.one_image import question_cut_line
    from mmnas_tf.inputs import BOXES, IMAGE_FEATURES, IMAGE_SIZE, TEXT_IDS
    from mmnas_tf.tasks import task_of_outputs
    from mmnas_tf.text import Vocabulary, encode, tokenize
    from mmnas_tf.viz.explain import EXPLAIN_SIGNATURE, describe, explanation_from_outputs

    if EXPLAIN_SIGNATURE not in client.signatures():
        raise ValueError(
            f"model '{client.model_name}' has no '{EXPLAIN_SIGNATURE}' signature (exported before "
            "it existed?): re-export it, or explain from the training run with --checkpoint"
        )
    if not fv.vocab:
        raise ValueError(
            f"the '{EXPLAIN_SIGNATURE}' signature takes token ids: pass --vocab=<the export's "
            "assets/vocab.txt>"
        )
    spec = client.signature(EXPLAIN_SIGNATURE)
    regions = load_regions(fv.features, spec.inputs[IMAGE_FEATURES].shape[-1])
    max_len = spec.inputs[TEXT_IDS].shape[1]  # None: any length up to the model's m
    words = tokenize(fv.question)[:max_len]
    inputs = {
        TEXT_IDS: encode(words, Vocabulary.load(fv.vocab), max_len or len(words))[None],
        IMAGE_FEATURES: regions["features"][None],
        BOXES: regions["boxes"][None],
    }
    if IMAGE_SIZE in spec.inputs:
        inputs[IMAGE_SIZE] = np.float32([regions["image_size"]])
    inputs = pad_to_signature(inputs, spec, truncate=fv.truncate_regions)
    outputs = client.predict(inputs, EXPLAIN_SIGNATURE, pad=False)
    inputs[IMAGE_SIZE] = np.float32([regions["image_size"]])  # the canvas, needed or not
    explanation = explanation_from_outputs(task_of_outputs(outputs), outputs, inputs, words)
    viz.draw_explanation(explanation, fv.explain, image=fv.image)
    text = describe(explanation) + f"\nexplanation: {fv.explain}"
    if max_len and len(tokenize(fv.question)) > max_len:
        text += "\n" + question_cut_line(len(tokenize(fv.question)) - max_len)
    print(text)
    return text


def _local(fv) -> str:
    """Answers (and with --explain draws) with the model restored from --checkpoint."""
    from mmnas_tf.devserver.one_image import question_cut_line
    from mmnas_tf.explain_run import explain_checkpoint
    from mmnas_tf.runs import find_run
    from mmnas_tf.text import tokenize
    from mmnas_tf.viz.explain import describe

    print(precision.apply(fv.dtype_policy), file=sys.stderr, flush=True)  # stdout: the answer
    explanation = explain_checkpoint(
        fv.checkpoint, fv.question, fv.features, fv.vocab, fv.truncate_regions
    )
    text = describe(explanation)
    cut = len(tokenize(fv.question)) - find_run(fv.checkpoint)["model"].max_tokens
    if cut > 0:
        text += "\n" + question_cut_line(cut)
    if fv.explain:
        from mmnas_tf import viz

        viz.draw_explanation(explanation, fv.explain, image=fv.image)
        text += f"\nexplanation: {fv.explain}"
    print(text)
    return text


if __name__ == "__main__":
    cli.run(main)
