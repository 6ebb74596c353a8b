"""Does the image pooling look at the object a question names? On the synthetic VQA benchmark.

    python -m bench.attention_localisation --out=localisation.json [--minutes=3] [--smoke]

Trains the MCAN-like net with RSA of ``bench.synthetic_baselines`` for a wall-clock budget, then,
on every validation attribute question ("what colour is the square?", "what shape is the red
object?", "what size is the red square?"), takes the region with the largest image-pooling
weight. A hit: its box has IoU >= 0.5 with the named object's true box (the object's duplicate
proposals count). Chance: the share of a scene's real regions that would hit, averaged over the
same questions (what a uniformly random region scores). The untrained network is scored too.
The same hit rate is reported for each decoder GA block's map: the region that puts the most
attention on the words naming the object ("square", "red"). Also draws one question's attention
picture (``--picture``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import numpy as np

IOU_HIT = 0.5


def _iou(box, boxes):
    """IoU of one box with each of ``boxes`` [k, 4] (x1 y1 x2 y2)."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def val_texts(num_images: int, seed: int = 0):
    """The validation scenes and texts exactly as ``benchmark.generate`` made them."""
    from mmnas_tf.synthbench import benchmark, scenes

    rng = np.random.default_rng([seed, 1])  # split id 1 = val
    sc = scenes.sample_scenes(max(num_images // 5, 1), scenes.SCENE_SETTINGS["tiny"], rng)
    return sc, benchmark._texts("vqa", sc, rng)


def localisation(model, data_dir: str, sc, texts, max_regions: int) -> dict:
    """Hit rate of the most attended region against the named object, and the chance rate."""
    from mmnas_tf import inputs as names
    from mmnas_tf.data import pipeline
    from mmnas_tf.synthbench import questions, scenes
    from mmnas_tf.tasks import get_task
    from mmnas_tf.text import tokenize
    from mmnas_tf.viz import explain_outputs

    starts = np.searchsorted(texts.scene, np.arange(len(sc) + 1))
    config = pipeline.PipelineConfig(
        get_task("vqa"), batch_size=256, max_regions=max_regions, max_tokens=14, training=False
    )
    hits, chance, family, correct, ga_hits = [], [], [], [], {}
    for inputs, targets in pipeline.Pipeline(data_dir, "val", config).dataset():
        out = explain_outputs(model, "vqa", inputs)
        weights = np.asarray(out["image_weights"])
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-4)
        boxes = inputs[names.BOXES].numpy()
        real = np.abs(inputs[names.IMAGE_FEATURES].numpy()).sum(-1) != 0
        predicted = np.argmax(np.asarray(out["logits"]), -1)
        scores = targets["answer_scores"].numpy()
        for b, qid in enumerate(targets["question_id"].numpy()):
            s, f, j = qid // 1000, qid // 100 % 10, qid % 100
            row = starts[s] + j
            assert texts.scene[row] == s and texts.family[row] == f, "regenerated texts differ"
            if texts.named[row] < 0:
                continue
            ious = _iou(sc.boxes[s, texts.named[row]], boxes[b][real[b]])
            top = int(np.argmax(np.where(real[b], weights[b], -1.0)))
            hits.append(_iou(sc.boxes[s, texts.named[row]], boxes[b, top : top + 1])[0] >= IOU_HIT)
            obj = texts.named[row]
            naming = {scenes.COLOURS[sc.colour[s, obj]], scenes.SHAPES[sc.shape[s, obj]]}
            words = [t in naming for t in tokenize(texts.text[row])]
            for key in (name for name in out if name.startswith("ga_")):
                ga = np.asarray(out[key])[b][:, : len(words)][:, words].sum(-1)  # [n]
                best = int(np.argmax(np.where(real[b], ga, -1.0)))
                ga_hits.setdefault(key[3:], []).append(
                    _iou(sc.boxes[s, obj], boxes[b, best : best + 1])[0] >= IOU_HIT
                )
            chance.append(float((ious >= IOU_HIT).mean()))
            family.append(questions.FAMILIES[f][0])
            correct.append(scores[b, predicted[b]] > 0)
    hits, chance, family, correct = map(np.asarray, (hits, chance, family, correct))
    per_family = {
        name: {
            "questions": int((family == name).sum()),
            "hit_rate": float(hits[family == name].mean()),
            "chance": float(chance[family == name].mean()),
            "accuracy": float(correct[family == name].mean()),
        }
        for name in sorted(set(family))
    }
    return {
        "questions": len(hits),
        "hit_rate": float(hits.mean()),
        "chance": float(chance.mean()),
        "accuracy": float(correct.mean()),
        "per_family": per_family,
        "ga_hit_rate": {k: float(np.mean(v)) for k, v in ga_hits.items()},
    }


def draw_one(model, data_dir, max_regions, path, sc, texts, index=0):
    """The attention picture of the ``index``-th validation attribute question."""
    import tensorflow as tf

    from mmnas_tf.data import pipeline
    from mmnas_tf.synthbench import questions
    from mmnas_tf.tasks import get_task
    from mmnas_tf.text import tokenize
    from mmnas_tf.viz import draw_explanation, explain_example

    config = pipeline.PipelineConfig(
        get_task("vqa"), batch_size=1, max_regions=max_regions, max_tokens=14, training=False
    )
    starts = np.searchsorted(texts.scene, np.arange(len(sc) + 1))
    seen = 0
    for inputs, targets in pipeline.Pipeline(data_dir, "val", config).dataset():
        qid = int(targets["question_id"][0])
        row = starts[qid // 1000] + qid % 100
        if texts.named[row] < 0 or seen < index:
            seen += texts.named[row] >= 0
            continue
        inputs = {k: v for k, v in inputs.items() if not isinstance(v, tf.RaggedTensor)}
        e = explain_example(
            model, "vqa", inputs, tokenize(texts.text[row]), list(questions.ANSWERS)
        )
        draw_explanation(e, path)
        return texts.text[row]
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="JSON report path")
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget")
    parser.add_argument("--num_images", type=int, default=4000, help="training scenes")
    parser.add_argument("--width", type=int, default=64, help="hidden size d")
    parser.add_argument("--picture", help="PNG of one question's attention")
    parser.add_argument("--smoke", action="store_true", help="seconds: tiny data, a few steps")
    args = parser.parse_args(argv)
    import keras

    from bench.pipeline import write_report
    from bench.synthetic_baselines import ARCHITECTURES, model_config, train_and_score
    from mmnas_tf.genotype import Genotype
    from mmnas_tf.synthbench import benchmark, questions
    from mmnas_tf.tasks import get_task

    minutes, num_images = (0.05, 100) if args.smoke else (args.minutes, args.num_images)
    report = {"num_images": num_images, "minutes": minutes, "width": args.width}
    with tempfile.TemporaryDirectory(prefix="mmnas_localisation_") as tmp:
        benchmark.generate(get_task("vqa"), tmp, "tiny", num_images=num_images, seed=0)
        sc, texts = val_texts(num_images)
        config = model_config(tmp, args.width, Genotype(*ARCHITECTURES["mcan_rsa"]))
        keras.utils.set_random_seed(0)
        untrained = get_task("vqa").build_model(config.replace(num_answers=len(questions.ANSWERS)))
        report["untrained"] = localisation(untrained, tmp, sc, texts, config.max_regions)
        trained = {}
        report["training"] = train_and_score(tmp, config, 0, minutes, keep=trained)
        model = trained["model"]
        report["trained"] = localisation(model, tmp, sc, texts, config.max_regions)
        if args.picture:
            report["picture"] = {
                "path": args.picture,
                "question": draw_one(model, tmp, config.max_regions, args.picture, sc, texts),
            }
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
