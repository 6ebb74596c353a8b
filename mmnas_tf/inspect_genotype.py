"""Prints a genotype, its backbone's size and cost, and draws it.

    python -m mmnas_tf.inspect_genotype runs/search/genotypes.json
    python -m mmnas_tf.inspect_genotype arch/vqa_large.json --hidden_size=1024 --tokens=14 --regions=100

Reads our genotype JSON or an original architecture file (``{"epochK": {"enc", "dec"}}``, the
latest epoch unless ``--epoch``). Prints every block's op, the backbone's parameter count (built
at ``--hidden_size``: word embedding, LSTM, image projection, relation embedding and the blocks; no
task head) and its forward FLOPs per example for ``--tokens`` words and ``--regions`` regions
(matrix products, see :mod:`mmnas_tf.models.flops`), and writes the diagram (``--diagram``,
default: the JSON's name with ``.png``; needs the ``viz`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from absl import app, flags

from mmnas_tf import cli


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string(
        "epoch", None, "epochK of an original file (default: the latest).", flag_values=fv
    )
    flags.DEFINE_integer("hidden_size", 512, "Width d.", flag_values=fv)
    flags.DEFINE_integer(
        "heads", 8, "Attention heads (a head size in the file wins).", flag_values=fv
    )
    flags.DEFINE_integer("ffn_size", None, "FFN inner width (default 4d).", flag_values=fv)
    flags.DEFINE_integer("tokens", 14, "Words m (padded sentence length).", flag_values=fv)
    flags.DEFINE_integer("regions", 100, "Regions n.", flag_values=fv)
    flags.DEFINE_integer("feature_size", 2048, "Region feature width.", flag_values=fv)
    flags.DEFINE_integer("vocab_size", 20573, "Word-embedding rows.", flag_values=fv)
    flags.DEFINE_string("diagram", None, "PNG to draw (default: next to the JSON).", flag_values=fv)
    flags.DEFINE_bool("draw", True, "Draw the diagram.", flag_values=fv)


def _parse(argv: Sequence[str]) -> tuple[flags.FlagValues, str]:
    """``cli.parse`` plus the one positional argument (the file)."""
    fv, rest = cli.parse_with_arguments(define_flags, argv, __doc__)
    if len(rest) != 1:
        raise app.UsageError(
            "give one genotype file: python -m mmnas_tf.inspect_genotype genotypes.json [--flags]"
        )
    return fv, rest[0]


def describe(genotype, config, flops: dict, params: int) -> str:
    """The printed report (also returned by :func:`main`)."""
    lines = [f"genotype: {genotype}"]
    for stage, ops in (("encoder", genotype.encoder), ("decoder", genotype.decoder)):
        lines.append(
            f"{stage} ({len(ops)} blocks): " + ", ".join(f"{i}:{op}" for i, op in enumerate(ops))
        )
    lines.append(
        f"at d={config.hidden_size}, {config.heads} heads, FFN {config.ffn_size}, "
        f"{config.max_tokens} tokens, {config.max_regions} regions:"
    )
    embedding = config.vocab_size * config.word_embed_size
    lines.append(f"backbone parameters: {params:,} ({embedding:,} of them the word embedding)")
    parts = {
        "text": flops["lstm"],
        "image input": flops["image_projection"]
        + flops.get("box_embedding", 0)
        + flops.get("relation_embedding", 0),
    }
    parts["encoder"] = sum(v for k, v in flops.items() if k.startswith("encoder_"))
    parts["decoder"] = sum(v for k, v in flops.items() if k.startswith("decoder_"))
    lines.append(
        f"forward FLOPs per example: {flops['total'] / 1e9:.3f} G (matrix products; "
        + ", ".join(f"{k} {v / 1e9:.3f} G" for k, v in parts.items())
        + ")"
    )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> str:
    fv, path = _parse(argv)
    from mmnas_tf.config import ModelConfig
    from mmnas_tf.genotype import Genotype
    from mmnas_tf.models.backbone import MMnasBackbone
    from mmnas_tf.models.flops import backbone_flops

    genotype = Genotype.load(path, fv.epoch)
    config = ModelConfig(
        hidden_size=fv.hidden_size,
        num_heads=fv.heads,
        ffn_size=fv.ffn_size or 4 * fv.hidden_size,
        max_tokens=fv.tokens,
        max_regions=fv.regions,
        feature_size=fv.feature_size,
        vocab_size=fv.vocab_size,
        num_encoder_blocks=len(genotype.encoder),
        num_decoder_blocks=len(genotype.decoder),
        genotype=genotype,
    )
    backbone = MMnasBackbone(config)
    backbone.build()
    text = describe(genotype, config, backbone_flops(config), backbone.count_params())
    if fv.draw:
        from mmnas_tf import viz

        diagram = fv.diagram or os.path.splitext(path)[0] + ".png"
        viz.draw_genotype(genotype, diagram)
        text += f"\ndiagram: {diagram}"
    print(text)
    return text


if __name__ == "__main__":
    cli.run(main)
