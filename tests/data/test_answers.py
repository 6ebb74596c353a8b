"""Official VQA answer normalisation, soft scores and the answer vocabulary."""

import pytest

from mmnas_tf.data import answers


@pytest.mark.parametrize(
    "raw, want",
    [
        ("Two", "2"),
        ("the dog.", "dog"),
        ("a red one", "red 1"),
        ("yes!", "yes"),
        ("dont know", "don't know"),
        ("isnt", "isn't"),
        ("1,000", "1000"),
        ("3.5", "3.5"),
        ("black/white", "black white"),
        ("  Tennis\tracket \n", "tennis racket"),
        ("none", "0"),
        ("an apple", "apple"),
    ],
)
def test_normalize_answer(raw, want):
    assert answers.normalize_answer(raw) == want


def test_soft_scores_follow_annotator_counts():
    assert [answers.soft_score(c) for c in range(6)] == [0.0, 0.3, 0.6, 0.9, 1.0, 1.0]
    to_id = {"2": 0, "yes": 1}
    got = answers.answer_scores(["two", "2", "Two", "yes", "maybe"] + ["2"] * 5, to_id)
    assert got == {0: 1.0, 1: 0.3}  # "maybe" is unknown: dropped


def test_answer_vocab_threshold_and_order(tmp_path):
    seen = ["no"] * 3 + ["Yes"] * 2 + ["yes."] * 1 + ["rare"] * 2
    assert answers.build_answer_vocab(seen, min_count=3) == ["no", "yes"]
    path = str(tmp_path / "answers.txt")
    answers.save_answers(["no", "yes"], path)
    assert answers.load_answers(path) == ["no", "yes"]
    with pytest.raises(ValueError, match="one per line"):
        answers.save_answers(["a\nb"], path)
