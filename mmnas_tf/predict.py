"""Asks a served model (TF Serving or ``mmnas_tf.serve``) about one image and prints the answer.

    python -m mmnas_tf.predict --server=127.0.0.1:8500 --model_name=vqa \
        --question="What colour is the cat?" --features=COCO_val2014_000000000042.jpg.npz
    python -m mmnas_tf.predict --server=127.0.0.1:8501 --rest --model_name=vg \
        --question="man on the left" --features=img.npz

``--features`` is a bottom-up-attention ``.npz`` (``x`` 2048 x n or n x 2048, ``bbox``, ``image_h``,
``image_w``); regions are zero-padded to the model's n. Exits 1 with the server's error on failure.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from absl import flags

from mmnas_tf import cli


def define_flags(fv: flags.FlagValues) -> None:
    for name, default, help_text in (
        ("server", "127.0.0.1:8500", "host:port of the gRPC (with --rest: REST) API."),
        ("model_name", "vqa", "Served model name."),
        ("question", None, "The question / caption / referring expression."),
        ("features", None, "Region-feature .npz of the image."),
        ("version_label", None, "Model version label, e.g. stable or canary."),
        ("vocab", None, "Token vocabulary, only for models without predict_text."),
    ):
        flags.DEFINE_string(name, default, help_text, flag_values=fv)
    flags.DEFINE_integer("version", None, "Model version (default: newest).", flag_values=fv)
    flags.DEFINE_bool("rest", False, "Use the REST API instead of gRPC.", flag_values=fv)
    flags.DEFINE_bool(
        "truncate_regions", False, "Keep the first n regions if the file has more.", flag_values=fv
    )
    flags.DEFINE_float("timeout", 30.0, "Seconds per call.", flag_values=fv)
    flags.mark_flags_as_required(["question", "features"], flag_values=fv)


def main(argv: Sequence[str]) -> str:
    """Prints and returns the answer; exits 1 (message on stderr) if the request fails."""
    fv = cli.parse(define_flags, argv)
    from mmnas_tf.devserver.client import ServingClient, ServingClientError
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
        signature, inputs = build_request(client, fv.question, fv.features, fv.vocab)
        outputs = client.predict(inputs, signature_name=signature, truncate=fv.truncate_regions)
    except (ServingClientError, ValueError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        client.close()
    text = describe_outputs(outputs)
    print(text)
    return text


if __name__ == "__main__":
    cli.run(main)
