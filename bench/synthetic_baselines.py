"""Baselines on the synthetic VQA benchmark: answer priors, an MCAN-like net with RSA, and a net
without SA/RSA in the decoder. The relational questions (furthest / near) need box geometry,
which only RSA sees (the box embedding is off, as in every original config).

    python -m bench.synthetic_baselines --out=baselines.json [--minutes=3] [--smoke]

Writes the data to a temporary folder, trains each architecture with Adam for a fixed wall-clock
budget and reports val accuracy overall and per question family (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ARCHITECTURES = {
    # (ii) MCAN-like, with the decoder's self-attention made relational (RSA sees the boxes)
    "mcan_rsa": (("SA", "FFN"), ("RSA", "GA", "RSA", "FFN")),
    # the original MCAN pattern: SA over regions, no geometry anywhere
    "mcan_sa": (("SA", "FFN"), ("SA", "GA", "SA", "FFN")),
    # (iii) no SA / RSA in the decoder: regions never attend to each other
    "no_sa_rsa": (("SA", "FFN"), ("GA", "FFN", "GA", "FFN")),
}


def _families(question_id):
    return (question_id // 100) % 10


def priors(train, val) -> dict:
    """Accuracy of the most frequent train answer, globally and per question family."""
    import collections

    from mmnas_tf.synthbench import questions

    fam_train, ans_train = train
    fam_val, ans_val = val
    overall = collections.Counter(ans_train).most_common(1)[0][0]
    per_family = {
        f: collections.Counter(ans_train[fam_train == f]).most_common(1)[0][0]
        for f in set(fam_train)
    }
    pred_family = [per_family.get(f, overall) for f in fam_val]
    out = {
        "global_prior": float((ans_val == overall).mean()),
        "family_prior": float((ans_val == pred_family).mean()),
    }
    out["family_prior_per_family"] = {
        questions.FAMILIES[f][0]: float((ans_val[fam_val == f] == per_family[f]).mean())
        for f in sorted(set(fam_val))
    }
    return out


def _answers(ds):
    import numpy as np

    fams, answers = [], []
    for _, t in ds:
        fams.append(_families(t["question_id"].numpy()))
        answers.append(np.argmax(t["answer_scores"].numpy(), 1))
    return np.concatenate(fams), np.concatenate(answers)


def model_config(data_dir, width, genotype):
    """The benchmark's model sizes at width d around ``genotype`` (None: a supernet over the
    paper's op pools with the default M/N 2/4)."""
    from mmnas_tf.config import ModelConfig
    from mmnas_tf.data import writer

    manifest = writer.load_manifest(data_dir)
    vocab = len(open(os.path.join(data_dir, writer.VOCAB_FILE)).read().split())
    blocks = (len(genotype.encoder), len(genotype.decoder)) if genotype else (2, 4)
    return ModelConfig(
        hidden_size=width,
        num_heads=4,
        ffn_size=4 * width,
        relation_size=32,
        vocab_size=vocab,
        word_embed_size=64,
        feature_size=manifest["feature_dim"],
        max_tokens=14,
        max_regions=manifest["max_regions"],
        pool_mlp_size=width,
        pool_output_size=2 * width,
        num_encoder_blocks=blocks[0],
        num_decoder_blocks=blocks[1],
        genotype=genotype,
        # pinned: the figures of docs/search_results.md and docs/explain.md were made with it
        dropout_generator="uniform",
    )


def train_and_score(data_dir, config, seed=0, minutes=None, steps=None, keep=None) -> dict:
    """Trains a fixed network from scratch (Adam 1e-3, clip 1, batch 64) for a wall-clock budget
    or a number of steps, then scores val accuracy overall and per question family. The trained
    model is left in ``keep["model"]`` when a dict is given."""
    import keras
    import tensorflow as tf

    from mmnas_tf.data import pipeline
    from mmnas_tf.synthbench import questions
    from mmnas_tf.tasks import get_task

    keras.utils.set_random_seed(seed)
    task = get_task("vqa")
    model = task.build_model(config.replace(num_answers=len(questions.ANSWERS)))
    optimizer = keras.optimizers.Adam(1e-3, clipnorm=1.0)
    cfg = dict(batch_size=64, max_regions=config.max_regions, max_tokens=14, seed=seed, repeat=True)
    train = pipeline.Pipeline(data_dir, "train", pipeline.PipelineConfig(task, **cfg)).dataset()

    @tf.function(jit_compile=False)
    def step(inputs, targets):
        with tf.GradientTape() as tape:
            loss = task.compute_loss(model, inputs, targets, training=True)
        grads = tape.gradient(loss, model.trainable_variables)
        # a genotype without RSA leaves the relation embedding unused: no gradient, no warning
        present = [(g, v) for g, v in zip(grads, model.trainable_variables) if g is not None]
        optimizer.apply([g for g, _ in present], [v for _, v in present])
        return loss

    start, done = time.perf_counter(), 0
    for inputs, targets in train:
        step(inputs, targets)
        done += 1
        if (steps and done >= steps) or (minutes and time.perf_counter() - start > minutes * 60):
            break
    train_s = time.perf_counter() - start
    if keep is not None:
        keep["model"] = model
    return {
        "genotype": str(config.genotype),
        "steps": done,
        "train_seconds": round(train_s, 1),
        "examples_seen": done * 64,
        "params": int(model.count_params()),
        **score(model, data_dir, config.max_regions),
    }


def score(model, data_dir, max_regions, arch=None, max_batches=None) -> dict:
    """Val accuracy of ``model`` (called with ``arch`` if given: a supernet path) overall,
    relational, non-relational and per question family."""
    import numpy as np
    import tensorflow as tf

    from mmnas_tf.data import pipeline
    from mmnas_tf.synthbench import questions
    from mmnas_tf.tasks import get_task

    evcfg = pipeline.PipelineConfig(
        get_task("vqa"), batch_size=256, max_regions=max_regions, max_tokens=14, training=False
    )
    dataset = pipeline.Pipeline(data_dir, "val", evcfg).dataset()
    if max_batches:
        dataset = dataset.take(max_batches)
    kwargs = {} if arch is None else {"arch": arch}
    fams, correct = [], []
    for inputs, targets in dataset:
        pred = tf.argmax(model(inputs, training=False, **kwargs)["logits"], -1)
        correct.append(tf.gather(targets["answer_scores"], pred, batch_dims=1).numpy() > 0)
        fams.append(_families(targets["question_id"].numpy()))
    fams, correct = np.concatenate(fams), np.concatenate(correct)
    relational = np.isin(fams, [i for i, f in enumerate(questions.FAMILIES) if f[2]])
    return {
        "accuracy": float(correct.mean()),
        "relational": float(correct[relational].mean()),
        "non_relational": float(correct[~relational].mean()),
        "per_family": {
            questions.FAMILIES[f][0]: float(correct[fams == f].mean()) for f in sorted(set(fams))
        },
    }


def train_and_evaluate(name, data_dir, minutes, width, seed=0) -> dict:
    from mmnas_tf.genotype import Genotype

    enc, dec = ARCHITECTURES[name]
    out = train_and_score(
        data_dir, model_config(data_dir, width, Genotype(enc, dec)), seed, minutes
    )
    out.update(encoder=list(enc), decoder=list(dec))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="JSON report path")
    parser.add_argument(
        "--minutes", type=float, default=3.0, help="training budget per architecture"
    )
    parser.add_argument(
        "--num_images", type=int, default=4000, help="training scenes (val: a fifth)"
    )
    parser.add_argument("--width", type=int, default=64, help="hidden size d")
    parser.add_argument(
        "--archs", default=",".join(ARCHITECTURES), help=f"subset of {list(ARCHITECTURES)}"
    )
    parser.add_argument("--smoke", action="store_true", help="seconds: tiny data, a few steps")
    args = parser.parse_args(argv)
    from mmnas_tf.data import pipeline
    from mmnas_tf.synthbench import benchmark
    from mmnas_tf.tasks import get_task

    minutes, num_images = (0.05, 100) if args.smoke else (args.minutes, args.num_images)
    report = {
        "size": "tiny",
        "num_images": num_images,
        "minutes_per_arch": minutes,
        "width": args.width,
    }
    with tempfile.TemporaryDirectory(prefix="mmnas_baselines_") as tmp:
        benchmark.generate(get_task("vqa"), tmp, "tiny", num_images=num_images, seed=0)
        ev = lambda split: pipeline.Pipeline(  # noqa: E731
            tmp,
            split,
            pipeline.PipelineConfig(
                get_task("vqa"), batch_size=512, max_regions=28, training=False
            ),
        ).dataset()
        report["priors"] = priors(_answers(ev("train")), _answers(ev("val")))
        report["models"] = {}
        for name in args.archs.split(","):
            report["models"][name] = train_and_evaluate(name, tmp, minutes, args.width)
            print(name, json.dumps(report["models"][name]), flush=True)
    from bench.pipeline import write_report

    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
