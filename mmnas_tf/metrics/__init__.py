"""Evaluation metrics: VQA accuracy, image-text retrieval, grounding accuracy
(docs/original_behaviour.md, "Metrics")."""

from mmnas_tf.metrics.grounding import GroundingAccuracy
from mmnas_tf.metrics.retrieval import PairAccuracy, retrieval_metrics, retrieval_ranks
from mmnas_tf.metrics.vqa import VQAAccuracy, results_file_entries, vqa_accuracy, vqa_score

__all__ = [
    "GroundingAccuracy",
    "PairAccuracy",
    "VQAAccuracy",
    "results_file_entries",
    "retrieval_metrics",
    "retrieval_ranks",
    "vqa_accuracy",
    "vqa_score",
]
