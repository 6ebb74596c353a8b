"""Original MMnas (PyTorch) checkpoints -> Keras models: size inference and weight mapping."""

from __future__ import annotations

import re

import numpy as np

from mmnas_tf.config import ModelConfig
from mmnas_tf.genotype import Genotype, get_op, op_names
from mmnas_tf.tasks import find_task, get_task

_BLOCK = re.compile(r"^backnone\.cells_(enc|dec)\.0\.dag\.(\d+)\.0\.(.+)$")


def _linear(prefix):
    return [(f"{prefix}.weight", "kernel", True), (f"{prefix}.bias", "bias", False)]


def detect_task(state_dict: dict) -> str:
    """Which registered task's head a state dict carries (``Task.matches_original``): vg
    (``proj_reg``), itm (``proj`` -> 1) or vqa (``proj`` -> k)."""
    found = find_task(lambda task: task.matches_original(state_dict))
    if found is not None:
        return found
    raise ValueError(
        "the checkpoint has no known output layer (proj, proj_reg): not an MMnas model"
    )


def infer_config(state_dict: dict, genotype: Genotype, task: str, **overrides) -> ModelConfig:
    """Every size of the network from the tensors (and the head size from the genotype's op
    names); raises ValueError on any mismatch between the checkpoint and the genotype."""
    sd = state_dict
    found = detect_task(sd)
    if found != task:
        raise ValueError(f"the checkpoint holds a {found!r} model, not a {task!r} one")
    _check_blocks(sd, genotype)
    hidden, in_features = sd["imgfeat_linear.weight"].shape
    box_size = sd["bbox_linear.weight"].shape[0] if "bbox_linear.weight" in sd else 0
    ffn = [
        v.shape[0] for k, v in sd.items() if k.endswith("mlp.fc.linear.weight") and "backnone" in k
    ]
    rsa = [v.shape[0] for k, v in sd.items() if k.endswith("mhatt.linear_r.weight")]
    heads = genotype.num_heads(hidden, 8) if genotype.head_size else None
    if rsa:
        if heads is not None and rsa[0] != heads:
            raise ValueError(
                f"RSA relation layers have {rsa[0]} heads but the genotype's head size "
                f"{genotype.head_size} gives {heads} at width {hidden}"
            )
        heads = rsa[0]
    if heads is None:
        raise ValueError(
            "cannot infer the number of heads: the genotype's op names carry no head size"
        )
    vocab, word = sd["embedding.weight"].shape
    config = dict(
        hidden_size=int(hidden),
        num_heads=int(heads),
        ffn_size=int(ffn[0]) if ffn else 4 * int(hidden),
        relation_size=int(sd["linear_y_rel.weight"].shape[0]),
        vocab_size=int(vocab),
        word_embed_size=int(word),
        feature_size=int(in_features - box_size),
        pool_mlp_size=int(sd["attflat_x.mlp.fc.linear.weight"].shape[0]),
        pool_glimpses=int(sd["attflat_x.mlp.linear.weight"].shape[0]),
        pool_output_size=int(sd["attflat_x.linear_merge.weight"].shape[0]),
        box_embedding_size=int(box_size),
        num_encoder_blocks=len(genotype.encoder),
        num_decoder_blocks=len(genotype.decoder),
        genotype=genotype,
        num_answers=get_task(task).original_num_answers(sd),
        # the original's dropout draws one uniform per element (PyTorch's): the same kind of
        # masks, and the numerics the reference tests pin (docs/original_behaviour.md)
        dropout_generator="uniform",
    )
    config.update(overrides)
    return get_task(task).model_config(**config)


def _check_blocks(sd: dict, genotype: Genotype) -> None:
    found: dict[tuple[str, int], set] = {}
    for key in sd:
        m = _BLOCK.match(key)
        if m:
            found.setdefault((m.group(1), int(m.group(2))), set()).add(m.group(3))
    for stage, ops in (("enc", genotype.encoder), ("dec", genotype.decoder)):
        present = sorted(i for s, i in found if s == stage)
        if present != list(range(len(ops))):
            raise ValueError(
                f"the checkpoint has {len(present)} {stage} blocks but the genotype has {len(ops)}"
            )
        for i, op in enumerate(ops):
            keys = found[(stage, i)]
            if keys == _layout_keys(op):
                continue
            # name the ops whose layout the block holds; any other mismatch is named key by key
            # when the weights are loaded
            pool = op_names("encoder" if stage == "enc" else "decoder")
            holders = [name for name in pool if keys == _layout_keys(name)]
            if holders:
                raise ValueError(
                    f"{stage} block {i}: the genotype says {op} but the checkpoint holds "
                    f"{'/'.join(holders)} weights"
                )


def _layout_keys(op: str) -> set[str]:
    return {key for key, _, _ in get_op(op).original_weights}


def weight_map(model, task: str) -> list[tuple[str, object, bool]]:
    """(original key, Keras variable, transpose?) for every variable of ``model``."""
    b = model.backbone
    pairs = [("embedding.weight", b.embedding.embeddings, False)]
    pairs += [
        ("lstm.weight_ih_l0", b.lstm.kernel, True),
        ("lstm.weight_hh_l0", b.lstm.recurrent_kernel, True),
        ("lstm.bias_ih_l0", b.lstm.bias_ih, False),
        ("lstm.bias_hh_l0", b.lstm.bias_hh, False),
    ]

    def dense(prefix, layer):
        return [(k, getattr(layer, attr), t) for k, attr, t in _linear(prefix)]

    def norm(prefix, layer):
        return [(f"{prefix}.a_2", layer.gamma, False), (f"{prefix}.b_2", layer.beta, False)]

    def pooling(prefix, layer):
        return (
            dense(f"{prefix}.mlp.fc.linear", layer.mlp_dense)
            + dense(f"{prefix}.mlp.linear", layer.glimpse_dense)
            + dense(f"{prefix}.linear_merge", layer.merge_dense)
        )

    pairs += dense("imgfeat_linear", b.image_projection)
    if b.box_embedding is not None:
        pairs += dense("bbox_linear", b.box_embedding)
    pairs += dense("linear_y_rel", b.relation_embedding)
    for stage, blocks in (("enc", b.encoder_blocks), ("dec", b.decoder_blocks)):
        for i, op in enumerate(blocks):
            layout = get_op(op.op_name).original_weights
            if not layout:
                raise ValueError(
                    f"{stage} block {i}: op {op.op_name} has no weight layout in the original "
                    "code (OpDef.original_weights)"
                )
            prefix = f"backnone.cells_{stage}.0.dag.{i}.0"
            pairs += [(f"{prefix}.{key}", _attribute(op, path), t) for key, path, t in layout]
    pairs += pooling("attflat_x", model.text_pooling)
    kinds = {"dense": dense, "norm": norm, "pooling": pooling}
    for prefix, kind, layer in get_task(task).original_head(model):
        pairs += kinds[kind](prefix, layer)
    return pairs


def _attribute(layer, path: str):
    for name in path.split("."):
        layer = getattr(layer, name)
    return layer


def load_original_weights(model, state_dict: dict, task: str) -> None:
    """Assigns every variable of ``model`` from the original ``state_dict`` (``module.`` already
    stripped). Refuses missing or unused keys and shape mismatches, naming them."""
    pairs = weight_map(model, task)
    mapped = {k for k, _, _ in pairs}
    missing = sorted(mapped - set(state_dict))
    if missing:
        raise ValueError(
            f"the checkpoint lacks {len(missing)} keys the model needs, e.g. {missing[:5]}"
        )
    unused = sorted(set(state_dict) - mapped)
    if unused:
        raise ValueError(
            f"the checkpoint has {len(unused)} keys the model does not use, e.g. {unused[:5]}"
        )
    variables = {id(v) for v in model.weights}
    if len(pairs) != len(variables) or variables != {id(v) for _, v, _ in pairs}:
        raise RuntimeError("internal error: the weight map does not cover every model variable")
    for key, var, transpose in pairs:
        value = np.asarray(state_dict[key], np.float32)
        if transpose:
            value = value.T
        if tuple(value.shape) != tuple(var.shape):
            raise ValueError(
                f"{key}: checkpoint shape {tuple(value.shape)} does not fit the model's "
                f"{tuple(var.shape)}"
            )
        var.assign(value)
