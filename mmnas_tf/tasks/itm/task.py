"""Image-text matching: one matching score per (image, caption) pair, four-term BCE."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from keras import ops

from mmnas_tf import inputs as names
from mmnas_tf.data.feature_store import FeatureStore
from mmnas_tf.models import MMnasBackbone, MMnasClassifier
from mmnas_tf.tasks.base import (
    Annotation,
    EpochHooks,
    Recipe,
    SourceFlag,
    SourceFlagError,
    Task,
    classifier_head,
    predict_fn,
    sigmoid_cross_entropy_sum,
)
from mmnas_tf.tasks.itm import converter as flickr
from mmnas_tf.tasks.itm.config import ITMConfig
from mmnas_tf.tasks.itm.hard_negatives import (
    NEG_BOXES,
    NEG_IMAGE_FEATURES,
    NEG_TEXT_IDS,
    epoch_miner,
    score_pairs,
)
from mmnas_tf.tasks.itm.metrics import retrieval_metrics


class ITMTask(Task):
    """Flickr30K-style matching: ``score = sigmoid(logit)``. Training loss (the original's, sum
    reduction): BCE(s(I,T), 1) + BCE(s(I,T'), 0) + BCE(s(I,T), 1) + BCE(s(I',T), 0), with T' a
    negative caption for image I and I' a negative image for caption T, mined each epoch
    (:meth:`epoch_hooks`, ``hard_negatives.HardNegativeMiner``).

    Records: the common fields only (``text_id`` is the caption's global index). Targets:
    ``image_index`` and ``caption_index`` int32 [B]; in training the miner adds
    ``neg_text_ids`` [B, m] and ``neg_image_features`` / ``neg_boxes`` [B, n, ...].
    """

    name = "itm"
    prediction_output = "score"
    output_keys = ("score",)
    config_class = ITMConfig
    renamed_overrides = {"train.hard_negatives.": "task_config.hard_negatives."}
    max_tokens = 50
    max_regions = 36
    head_keys = ("proj", "attflat_y")
    model_outputs = {"logits": ()}
    recipe = Recipe(100, 1.5e-4, (36,), 1e-4, "mmnas_itm.json")
    source_flags = (
        SourceFlag("karpathy", "string", None, "ITM: Karpathy dataset_flickr30k.json."),
        SourceFlag(
            "captions",
            "multi_string",
            [],
            "ITM: SPLIT:CAPS_TXT:IDS_TXT, SCAN's f30k_precomp files (what the original reads); "
            "repeat per split; needs --karpathy for the image file names.",
        ),
    )

    def convert_sources(self, sources, out_dir):
        """``--karpathy`` (the Karpathy split file of Flickr30K), optionally ``--captions``."""
        if not sources["karpathy"]:
            raise SourceFlagError("--task=itm needs --karpathy=dataset_flickr30k.json")
        if sources["captions"]:
            return flickr.caption_items(sources["captions"], sources["karpathy"]), {}
        return flickr.flickr_items(sources["karpathy"]), {}

    def format_targets(self, example, training):
        return {
            "image_index": tf.cast(example["image_index"], tf.int32),
            "caption_index": tf.cast(example["text_id"], tf.int32),
        }

    def build_model(self, config):
        return MMnasClassifier(MMnasBackbone(config), 1, scalar_output=True, name="itm")

    def pair_logits(self, model, inputs, targets, training=None, arch=None):
        """Logits of the positive, negative-caption and negative-image pairs."""
        pos = model(inputs, training=training, arch=arch)["logits"]
        neg_caption = dict(inputs, **{names.TEXT_IDS: targets[NEG_TEXT_IDS]})
        neg_image = dict(
            inputs,
            **{names.IMAGE_FEATURES: targets[NEG_IMAGE_FEATURES], names.BOXES: targets[NEG_BOXES]},
        )
        negc = model(neg_caption, training=training, arch=arch)["logits"]
        negi = model(neg_image, training=training, arch=arch)["logits"]
        return pos, negc, negi

    def compute_loss(self, model, inputs, targets, training=None, arch=None):
        pos, negc, negi = self.pair_logits(model, inputs, targets, training, arch)
        return matching_loss(pos, negc, negi)

    def evaluate(self, model, data, config, split, output_dir):
        """Retrieval over every (image, caption) pair of the split: R@1/5/10 and ranks both
        ways; the score matrix goes to ``itm_scores_<split>.npy``."""
        store = FeatureStore(data.data_dir, split, config.max_regions, config.max_tokens)
        predict = predict_fn(model)
        images, captions = np.arange(store.num_images), np.arange(store.num_captions)
        scores = score_pairs(
            lambda inputs: predict(inputs)["logits"],
            store,
            np.repeat(images, len(captions)),
            np.tile(captions, len(images)),
            data.eval_batch_size,
            f"retrieval {self.name}/{split}",
        ).reshape(len(images), len(captions))
        np.save(os.path.join(output_dir, f"itm_scores_{split}.npy"), scores)
        metrics = retrieval_metrics(scores, store.caption_image)
        metrics.update(images=len(images), captions=len(captions))
        return metrics

    def epoch_hooks(self, experiment, config, model):
        """Hard negatives mined at each epoch start by ``model`` in inference mode, drawn from
        the training split (``experiment.task_config.hard_negatives`` sets candidates and top-k)."""
        score = tf.function(lambda inputs: model(inputs, training=False)["logits"])
        miner, mine_epoch = epoch_miner(experiment, config, score)
        return EpochHooks(mine_epoch, miner.add_negatives, miner.trackables())

    def task_config(self, tiny=False):
        return ITMConfig.tiny() if tiny else ITMConfig()

    def serving_outputs(self, outputs, inputs, answer_table=None):
        return {"score": ops.sigmoid(outputs["logits"])}

    def annotate(self, outputs, index=0, answers=None):
        score = float(np.asarray(outputs["score"])[index])
        return Annotation(lines=[f"match score: {score:.4f}"], score=score)

    def synthetic_generator(self):
        from mmnas_tf.tasks.itm.synthetic import GENERATOR

        return GENERATOR

    def matches_original(self, state_dict):
        return "proj.weight" in state_dict and state_dict["proj.weight"].shape[0] == 1

    def original_head(self, model):
        return classifier_head(model)


def matching_loss(pos_logits, neg_caption_logits, neg_image_logits):
    """The original's four-term BCE (the paper's Eq. 13 without its sign typo)."""
    ones, zeros = ops.ones_like(pos_logits), ops.zeros_like(pos_logits)
    return (
        2.0 * sigmoid_cross_entropy_sum(ones, pos_logits)
        + sigmoid_cross_entropy_sum(zeros, neg_caption_logits)
        + sigmoid_cross_entropy_sum(zeros, neg_image_logits)
    )
