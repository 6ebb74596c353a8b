"""Visual question answering: soft-score BCE over the answer vocabulary."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf
from keras import ops

from mmnas_tf.data.schema import NUM_RAW_ANSWERS, Field, pad_answers
from mmnas_tf.data.writer import ANSWERS_FILE
from mmnas_tf.models import MMnasBackbone, MMnasClassifier
from mmnas_tf.tasks.base import (
    Annotation,
    Recipe,
    SourceFlag,
    SourceFlagError,
    Task,
    classifier_head,
    sigmoid_cross_entropy_sum,
    text,
)
from mmnas_tf.tasks.vqa import converter as vqa_converter
from mmnas_tf.tasks.vqa.metrics import (
    IN_VOCABULARY,
    VQAAccuracy,
    results_file_entries,
    vqa_accuracy,
)

TOP_K = 5


class VQATask(Task):
    """VQA-v2: logits over k answers, sum-reduced BCE against soft scores (0.3/0.6/0.9/1.0 for
    1/2/3/>=4 of 10 annotators).

    Records: ``answer_ids`` / ``answer_scores`` / ``answer_lengths`` (the non-zero soft scores per
    question), ``raw_answers`` (10 per question or none) and ``answer_type``. Targets:
    ``answer_scores`` float [B, k] (+ evaluation: ``answers`` string [B, 10], ``answer_type``
    string [B], ``question_id`` int64 [B]).
    """

    name = "vqa"
    max_tokens = 14
    max_regions = 100
    head_keys = ("proj", "attflat_y")
    default_answers = 3129
    recipe = Recipe(13, 1.2e-4, (10, 12), 4e-4, "mmnas_vqa.json")
    uses_answer_vocabulary = True
    prediction_output = "top_answers"
    output_keys = ("top_answers", "top_scores")
    model_outputs = {"logits": ("k",)}
    variable_regions = True  # bottom-up features keep 10-100 regions per image
    source_flags = (
        SourceFlag(
            "vqa",
            "multi_string",
            [],
            "VQA: SPLIT:QUESTIONS_JSON[:ANNOTATIONS_JSON]; repeat; the same SPLIT twice merges; "
            "SPLIT vg = the Visual Genome augmentation (joins train, read last, answers not "
            "counted, as the original).",
        ),
        SourceFlag(
            "min_answer_count",
            "integer",
            9,
            "VQA: keep answers seen at least this often (original: > 8).",
        ),
    )
    target_fields = (
        Field(
            "answer_ids",
            tf.int64,
            "list",
            "answer-vocabulary ids with a non-zero soft score, concatenated",
        ),
        Field(
            "answer_scores",
            tf.float32,
            "list",
            "soft scores (0.3/0.6/0.9/1.0) parallel to `answer_ids`",
        ),
        Field(
            "answer_lengths", tf.int64, "list", "q counts splitting `answer_ids` / `answer_scores`"
        ),
        Field(
            "raw_answers", tf.string, "list", "q*10 raw annotator answers, or empty (test split)"
        ),
        Field("answer_type", tf.string, "list", "q answer types (yes/no, number, other), or empty"),
    )

    # ---- records ---------------------------------------------------------------------------------
    def encode_targets(self, record, q):
        """``answer_scores`` (q dicts {answer id: score}), optional ``raw_answers`` (q lists of up
        to 10 strings) and ``answer_type`` (q strings)."""
        scores = record["answer_scores"]  # one {answer id: score} per text
        flat = {
            "answer_ids": [i for s in scores for i in s],
            "answer_scores": [v for s in scores for v in s.values()],
            "answer_lengths": [len(s) for s in scores],
        }
        raw = record.get("raw_answers")
        raw = [pad_answers(a) for a in raw] if raw else []
        flat["raw_answers"] = [a for answers in raw for a in answers]
        flat["answer_type"] = list(record.get("answer_type") or [])
        if len(flat["answer_lengths"]) != q:
            raise ValueError(
                f"image {record['image_id']}: {len(flat['answer_lengths'])} answer_lengths for "
                f"{q} texts"
            )
        return flat

    def decode_targets(self, dense, q):
        """``answer_ids`` (int64 [q, A], -1-padded), ``answer_scores`` (float32 [q, A]),
        ``raw_answers`` (string [q, 10], "" when absent), ``answer_type`` (string [q])."""
        lengths = dense["answer_lengths"]
        ragged = lambda k: tf.RaggedTensor.from_row_lengths(dense[k], lengths)  # noqa: E731
        raw = tf.reshape(dense["raw_answers"], tf.stack([q, -1]))
        missing = q - tf.size(dense["answer_type"], out_type=tf.int64)
        return {
            "answer_ids": ragged("answer_ids").to_tensor(-1),
            "answer_scores": ragged("answer_scores").to_tensor(0.0),
            "raw_answers": tf.pad(raw, [[0, 0], [0, NUM_RAW_ANSWERS - tf.shape(raw)[1]]]),
            "answer_type": tf.concat([dense["answer_type"], tf.fill([missing], "")], 0),
        }

    def target_checks(self, dense, q, size):
        total = tf.reduce_sum(dense["answer_lengths"])
        return [
            ("answer_lengths", tf.equal(size("answer_lengths"), q), "must hold one count per text"),
            (
                "answer_ids",
                tf.equal(size("answer_ids"), total),
                "must hold sum(answer_lengths) ids",
            ),
            ("answer_scores", tf.equal(size("answer_scores"), total), "must parallel answer_ids"),
            (
                "raw_answers",
                tf.reduce_any(tf.equal(size("raw_answers"), [0, NUM_RAW_ANSWERS * q])),
                "must hold 10 per text or none",
            ),
            (
                "answer_type",
                tf.reduce_any(tf.equal(size("answer_type"), [0, q])),
                "must hold one per text or none",
            ),
        ]

    def prepare_targets(self, config, decoded):
        # one_hot(-1) is all zeros, so the -1 padding of answer_ids adds nothing.
        hot = tf.one_hot(decoded["answer_ids"], config.num_answers, dtype=tf.float32)
        out = {"answer_scores": tf.reduce_sum(hot * decoded["answer_scores"][..., None], axis=1)}
        if not config.training:
            out["answers"] = decoded["raw_answers"]
            out["answer_type"] = decoded["answer_type"]
        return out

    def format_targets(self, example, training):
        targets = {"answer_scores": example["answer_scores"]}
        if not training:
            targets.update(
                answers=example["answers"],
                answer_type=example["answer_type"],
                question_id=example["text_id"],
            )
        return targets

    def convert_sources(self, sources, out_dir):
        """``--vqa=SPLIT:QUESTIONS_JSON[:ANNOTATIONS_JSON]`` (repeated) and
        ``--min_answer_count``; the answer vocabulary is written to ``out_dir``."""
        try:
            parsed = vqa_converter.parse_sources(sources["vqa"])
        except ValueError as e:
            raise SourceFlagError(str(e)) from e
        answers = vqa_converter.answer_vocabulary(
            out_dir, vqa_converter.answer_files(parsed), sources["min_answer_count"]
        )
        return vqa_converter.vqa_splits(parsed, answers), {"num_answers": len(answers)}

    # ---- model and loss --------------------------------------------------------------------------
    def build_model(self, config):
        return MMnasClassifier(
            MMnasBackbone(config), config.num_answers or self.default_answers, name="vqa"
        )

    def compute_loss(self, model, inputs, targets, training=None, arch=None):
        logits = model(inputs, training=training, arch=arch)["logits"]
        return sigmoid_cross_entropy_sum(targets["answer_scores"], logits)

    # ---- metrics and evaluation ------------------------------------------------------------------
    def build_metrics(self):
        return [VQAAccuracy()]

    def update_metrics(self, metrics, outputs, inputs, targets):
        metrics[0].update_state(targets["answer_scores"], outputs["logits"])

    def validation_step(self, outputs, inputs, targets):
        return {
            "question_id": targets["question_id"].numpy().tolist(),
            "best": np.argmax(outputs["logits"].numpy(), axis=-1),
            "answers": targets["answers"].numpy(),
            "answer_type": targets["answer_type"].numpy(),
        }

    def aggregate_logs(self, state, logs):
        predictions, answers, types = state or ({}, {}, {})
        raw, kinds = logs["answers"], logs["answer_type"]
        for b, qid in enumerate(logs["question_id"]):
            predictions[qid] = int(logs["best"][b])
            if raw.shape[-1] and raw[b].any():
                answers[qid] = [a.decode("utf-8") for a in raw[b]]
                if kinds.shape[0]:
                    types[qid] = kinds[b].decode("utf-8")
        return predictions, answers, types

    def reduce_aggregated_logs(self, state, metrics, data, split, output_dir):
        """The official accuracy overall and per answer type where the split has annotations,
        the in-vocabulary accuracy, the number of questions and the challenge-format results file
        (docs/original_behaviour.md, "Metrics")."""
        from mmnas_tf.data.answers import load_answers

        vocab = load_answers(os.path.join(data.data_dir, ANSWERS_FILE))
        ids, answers, types = state or ({}, {}, {})
        predictions = {qid: vocab[best] for qid, best in ids.items()}
        results = os.path.join(output_dir, f"vqa_results_{split}.json")
        with open(results, "w", encoding="utf-8") as f:
            json.dump(results_file_entries(predictions), f)
        out = {"questions": len(predictions), "results_file": results}
        if answers:  # splits without annotations (test-dev) only get the results file
            out.update(
                vqa_accuracy(predictions, answers, types if len(types) == len(answers) else None)
            )
            out[IN_VOCABULARY] = 100.0 * float(metrics[0].result())
        return out

    # ---- serving ---------------------------------------------------------------------------------
    def serving_outputs(self, outputs, inputs, answer_table=None):
        logits = outputs["logits"]
        k = min(TOP_K, logits.shape[-1])
        top_logits, top_ids = tf.math.top_k(logits, k=k)
        if answer_table is not None:
            top_answers = answer_table.lookup(tf.cast(top_ids, tf.int64))
        else:
            top_answers = tf.strings.as_string(top_ids)
        return {"logits": logits, "top_answers": top_answers, "top_scores": ops.sigmoid(top_logits)}

    def annotate(self, outputs, index=0, answers=None):
        """The top answers with their scores (``answers`` maps served class ids to strings)."""
        labels = [text(a) for a in np.asarray(outputs["top_answers"])[index]]
        if answers is not None:
            labels = [answers[int(a)] if a.isdigit() else a for a in labels]
        ranked = list(zip(labels, (float(s) for s in np.asarray(outputs["top_scores"])[index])))
        return Annotation(
            lines=[
                f"answer: {ranked[0][0]} (score {ranked[0][1]:.4f})",
                "top 5: " + ", ".join(f"{a} ({s:.4f})" for a, s in ranked[:TOP_K]),
            ],
            answers=ranked,
        )

    # ---- synthetic data --------------------------------------------------------------------------
    def synthetic_generator(self):
        from mmnas_tf.tasks.vqa.synthetic import GENERATOR

        return GENERATOR

    # ---- original checkpoints --------------------------------------------------------------------
    def matches_original(self, state_dict):
        return "proj.weight" in state_dict and state_dict["proj.weight"].shape[0] != 1

    def original_num_answers(self, state_dict):
        return int(state_dict["proj.weight"].shape[0])

    def original_head(self, model):
        return classifier_head(model)
