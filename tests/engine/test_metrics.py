import numpy as np
import pytest

from mmnas_tf.tasks.itm.metrics import retrieval_metrics, retrieval_ranks
from mmnas_tf.tasks.vg.metrics import GroundingAccuracy
from mmnas_tf.tasks.vqa.metrics import VQAAccuracy, results_file_entries, vqa_accuracy, vqa_score


@pytest.mark.parametrize(
    "count,expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)]
)
def test_vqa_score_leave_one_out(count, expected):
    answers = ["red"] * count + ["blue"] * (10 - count)
    if count == 10:
        answers = ["red"] * 10
    assert vqa_score("red", answers) == pytest.approx(expected)


def test_vqa_score_follows_the_three_official_rules():
    """docs/original_behaviour.md, "Metrics": the prediction is always fully normalised; the
    answers only for punctuation, and only when they are not all the same."""
    # ten identical answers stay as written, the prediction does not: "the dog" became "dog"
    assert vqa_score("the dog", ["the dog"] * 10) == 0.0
    assert vqa_score("Yes", ["Yes"] * 10) == 0.0  # the prediction was lower-cased
    assert vqa_score("yes", ["yes"] * 10) == 1.0
    # disagreeing answers lose their punctuation only: no number words, no articles
    assert vqa_score("two", ["two"] * 4 + ["2"] * 6) == 1.0  # the prediction became "2"
    assert vqa_score("a dog", ["dog", "the dog", "dog", "cat"] + ["cat"] * 6) == pytest.approx(0.6)
    assert vqa_score("yes", ["yes."] * 3 + ["no"] * 7) == pytest.approx(0.9)
    # "!" becomes a space that nothing strips: "yes!" can never match
    assert vqa_score("yes", ["yes!"] * 3 + ["no"] * 7) == 0.0
    with pytest.raises(ValueError, match="at least one"):
        vqa_score("yes", [])


def test_vqa_accuracy_per_type_and_results_format():
    answers = {1: ["yes"] * 10, 2: ["2"] * 10, 3: ["red"] * 2 + ["blue"] * 8}
    types = {1: "yes/no", 2: "number", 3: "other"}
    preds = {1: "yes", 2: "3", 3: "red"}
    acc = vqa_accuracy(preds, answers, types)
    assert acc["yes/no"] == 100.0 and acc["number"] == 0.0
    assert acc["other"] == pytest.approx(60.0)
    assert acc["overall"] == 53.33  # two decimals, as the official evaluation reports
    assert vqa_accuracy(preds, answers, types, decimals=None)["overall"] == pytest.approx(160 / 3)
    assert set(acc) == {"overall", "yes/no", "number", "other"}  # accuracies only
    assert results_file_entries(preds) == [
        {"question_id": 1, "answer": "yes"},
        {"question_id": 2, "answer": "3"},
        {"question_id": 3, "answer": "red"},
    ]
    with pytest.raises(ValueError, match="no prediction"):
        vqa_accuracy({1: "yes"}, answers)


def test_keras_vqa_accuracy_is_the_soft_score_of_the_argmax():
    scores = np.array([[0.0, 0.3, 1.0], [0.6, 0.0, 0.0], [0.9, 0.0, 0.0]], np.float32)
    logits = np.array([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    m = VQAAccuracy()
    m.update_state(scores, logits)
    assert float(m.result()) == pytest.approx((0.3 + 0.6 + 0.0) / 3)
    typed = VQAAccuracy("number")
    typed.update_state(scores, logits, answer_type=np.array([b"number", b"other", b"number"]))
    assert float(typed.result()) == pytest.approx(0.15)
    with pytest.raises(ValueError, match="accepted"):
        VQAAccuracy("colour")


def test_retrieval_ranks_and_recalls():
    # 3 images, 2 captions each (caption c belongs to image c // 2)
    owner = np.array([0, 0, 1, 1, 2, 2])
    scores = np.array(
        [
            [0.9, 0.1, 0.5, 0.2, 0.0, 0.0],  # image 0: own caption 0 ranks 1
            [0.8, 0.9, 0.1, 0.7, 0.0, 0.0],  # image 1: best own caption (3) ranks 3
            [0.0, 0.0, 0.0, 0.0, 0.3, 0.2],
        ]
    )
    text, image = retrieval_ranks(scores, owner)
    assert text.tolist() == [1, 3, 1]
    # caption 1: image 1 scores 0.9 > image 0's 0.1 -> rank 2; caption 2: image 0 has 0.5 > 0.1 -> 2
    assert image.tolist() == [1, 2, 2, 1, 1, 1]
    m = retrieval_metrics(scores, owner)
    assert m["i2t_r@1"] == pytest.approx(200 / 3) and m["i2t_r@5"] == 100.0
    assert m["t2i_r@1"] == pytest.approx(400 / 6)
    assert m["i2t_median_rank"] == 1.0 and m["i2t_mean_rank"] == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="one entry per caption"):
        retrieval_ranks(scores, owner[:3])


def test_grounding_accuracy():
    gt = np.array([[0, 0, 99, 99], [0, 0, 99, 99]], np.float32)
    pred = np.array([[0, 0, 99, 99], [50, 50, 149, 149]], np.float32)  # IoU 1 and 1/7
    g = GroundingAccuracy()
    g.update_state(gt, pred)
    assert float(g.result()) == 0.5


def test_metrics_work_in_keras_fit():
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    scores = np.zeros((16, 3), np.float32)
    scores[np.arange(16), rng.integers(0, 3, 16)] = 1.0
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(
        "adam", keras.losses.BinaryCrossentropy(from_logits=True), metrics=[VQAAccuracy()]
    )
    history = model.fit(x, scores, batch_size=8, epochs=1, verbose=0)
    value = history.history["in_vocabulary_accuracy"][0]
    assert 0.0 <= value <= 1.0
    # the metric's value is the mean soft score of the arg-max answer
    logits = model.predict(x, verbose=0)
    expected = scores[np.arange(16), logits.argmax(-1)].mean()
    assert model.evaluate(x, scores, verbose=0, return_dict=True)[
        "in_vocabulary_accuracy"
    ] == pytest.approx(expected)
