"""Evaluate a trained model (docs/original_behaviour.md, "Metrics"): VQA accuracy (overall, per
answer type) and a
challenge-format results file, ITM retrieval R@1/5/10 and ranks, VG accuracy at IoU >= 0.5.

python -m mmnas_tf.evaluate --config=vqa --data_dir=tfrecords/vqa --checkpoint=runs/vqa

The model is rebuilt from the ``run.json`` that training wrote next to its checkpoints (falling
back to --config/--genotype); metrics go to ``<output_dir>/metrics_<split>.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from absl import flags

from mmnas_tf import cli


def define_flags(fv: flags.FlagValues) -> None:
    cli.define_experiment_flags(fv, strategy=False)
    flags.DEFINE_string(
        "checkpoint", None, "Checkpoint directory (its latest) or prefix.", flag_values=fv
    )
    flags.DEFINE_string(
        "split", None, "Split to evaluate (default: data.eval_split).", flag_values=fv
    )
    flags.DEFINE_string(
        "output_dir",
        None,
        "Where metrics/results go (default: CHECKPOINT_DIR/eval).",
        flag_values=fv,
    )
    flags.DEFINE_integer("batch_size", None, "Overrides data.eval_batch_size.", flag_values=fv)
    flags.mark_flag_as_required("checkpoint", flag_values=fv)


def main(argv: Sequence[str]) -> dict:
    """Evaluates; returns the metrics dict (also written as JSON)."""
    fv = cli.parse(define_flags, argv)
    extra = cli.flag_overrides(fv, [("batch_size", "data.eval_batch_size")])
    exp = cli.experiment_from_flags(fv, extra)
    return evaluate(exp, fv.checkpoint, fv.genotype, fv.split, fv.output_dir)


def evaluate(
    exp,
    checkpoint: str,
    genotype_path: str | None = None,
    split: str | None = None,
    output_dir: str | None = None,
) -> dict:
    from mmnas_tf.engine.checkpoint import restore_model
    from mmnas_tf.runs import find_run, resolve_model
    from mmnas_tf.tasks import get_task

    if not exp.data.data_dir:
        raise ValueError("no data: pass --data_dir")
    split = split or exp.data.eval_split
    task = get_task(exp.task)
    run = find_run(checkpoint)
    if run is not None and genotype_path is None:
        config, num_answers = run["model"], run["num_answers"]
    else:
        config, num_answers = resolve_model(exp, exp.load_genotype(genotype_path))
    model = task.build_model(config, num_answers)
    path = restore_model(model, checkpoint)
    print(f"evaluating {path} on {exp.data.data_dir}/{split}")
    folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
    output_dir = output_dir or os.path.join(folder, "eval")
    os.makedirs(output_dir, exist_ok=True)
    runner = {"vqa": _evaluate_vqa, "itm": _evaluate_itm, "vg": _evaluate_vg}[exp.task]
    metrics = runner(exp, model, config, split, output_dir)
    _write_tensorboard(folder, split, path, metrics)
    metrics_path = os.path.join(output_dir, f"metrics_{split}.json")
    with open(metrics_path, "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=1, sort_keys=True)
    print(json.dumps(metrics, indent=1, sort_keys=True))
    return metrics


def _write_tensorboard(run_dir: str, split: str, checkpoint: str, metrics: dict) -> None:
    """Scalars under RUN_DIR/tensorboard as ``eval_<split>/<name>`` at the checkpoint's step, next
    to the training curves."""
    from mmnas_tf.engine.callbacks import TensorBoardScalars

    step = checkpoint.rsplit("-", 1)[-1]
    board = TensorBoardScalars(os.path.join(run_dir, "tensorboard"))
    board.write(metrics, int(step) if step.isdigit() else 0, f"eval_{split}/")
    board.on_train_end()


def eval_dataset(exp, config, split: str):
    """The split's dataset in evaluation mode (no shuffle, every example, eval targets)."""
    from mmnas_tf.data.pipeline import Pipeline, PipelineConfig

    pc = PipelineConfig(
        exp.task, batch_size=exp.data.eval_batch_size, max_tokens=config.max_tokens,
        max_regions=config.max_regions, training=False, num_answers=exp.data.num_answers,
        deterministic=True, bucket_boundaries=exp.data.bucket_boundaries or None,
    )  # fmt: skip
    return Pipeline(exp.data.data_dir, split, pc).dataset()


def _predict_fn(model):
    import tensorflow as tf

    return tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)


def _evaluate_vqa(exp, model, config, split, output_dir) -> dict:
    import numpy as np

    from mmnas_tf.data.answers import load_answers
    from mmnas_tf.data.writer import ANSWERS_FILE
    from mmnas_tf.metrics.vqa import VQAAccuracy, results_file_entries, vqa_accuracy

    vocab = load_answers(os.path.join(exp.data.data_dir, ANSWERS_FILE))
    predict = _predict_fn(model)
    in_graph = VQAAccuracy()
    predictions, answers, types = {}, {}, {}
    for inputs, targets in eval_dataset(exp, config, split):
        logits = predict(inputs)["logits"]
        in_graph.update_state(targets["answer_scores"], logits)
        best = np.argmax(logits.numpy(), axis=-1)
        raw = targets["answers"].numpy()
        kinds = targets["answer_type"].numpy()
        for b, qid in enumerate(targets["question_id"].numpy().tolist()):
            predictions[qid] = vocab[best[b]]
            if raw.shape[-1] and raw[b].any():
                answers[qid] = [a.decode("utf-8") for a in raw[b]]
                if kinds.shape[0]:
                    types[qid] = kinds[b].decode("utf-8")
    results = os.path.join(output_dir, f"vqa_results_{split}.json")
    with open(results, "w", encoding="utf-8") as f:
        json.dump(results_file_entries(predictions), f)
    metrics = {"questions": len(predictions), "results_file": results}
    if answers:  # splits without annotations (test-dev) only get the results file
        metrics.update(
            vqa_accuracy(predictions, answers, types if len(types) == len(answers) else None)
        )
        metrics["in_vocabulary_accuracy"] = 100.0 * float(in_graph.result())
    return metrics


def _evaluate_itm(exp, model, config, split, output_dir) -> dict:
    import numpy as np

    from mmnas_tf.data.feature_store import FeatureStore
    from mmnas_tf.engine.hard_negatives import score_pairs
    from mmnas_tf.metrics.retrieval import retrieval_metrics

    store = FeatureStore(exp.data.data_dir, split, config.max_regions, config.max_tokens)
    predict = _predict_fn(model)
    images, captions = np.arange(store.num_images), np.arange(store.num_captions)
    scores = score_pairs(
        lambda inputs: predict(inputs)["logits"], store,
        np.repeat(images, len(captions)), np.tile(captions, len(images)), exp.data.eval_batch_size,
    ).reshape(len(images), len(captions))  # fmt: skip
    np.save(os.path.join(output_dir, f"itm_scores_{split}.npy"), scores)
    metrics = retrieval_metrics(scores, store.caption_image)
    metrics.update(images=len(images), captions=len(captions))
    return metrics


def _evaluate_vg(exp, model, config, split, output_dir) -> dict:
    from mmnas_tf import inputs as names
    from mmnas_tf.metrics.grounding import GroundingAccuracy
    from mmnas_tf.models import image_padding_mask
    from mmnas_tf.tasks.grounding import predict_box

    predict = _predict_fn(model)
    metric = GroundingAccuracy()
    count = 0
    for inputs, targets in eval_dataset(exp, config, split):
        out = predict(inputs)
        mask = image_padding_mask(inputs[names.IMAGE_FEATURES])
        _, box = predict_box(
            out["object_scores"],
            out["box_deltas"],
            inputs[names.BOXES],
            mask,
            inputs[names.IMAGE_SIZE],
        )
        metric.update_state(targets["gt_box"], box)
        count += int(box.shape[0])
    return {"accuracy": 100.0 * float(metric.result()), "queries": count}


if __name__ == "__main__":
    cli.run(main)
