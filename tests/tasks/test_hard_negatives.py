import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf import inputs as names
from mmnas_tf.tasks.itm.hard_negatives import HardNegativeMiner, MatchingStore


def _store(num_images=6, captions_per_image=2, n=3, f=4, m=5):
    rng = np.random.default_rng(0)
    owner = np.repeat(np.arange(num_images), captions_per_image)
    text = np.zeros((len(owner), m), np.int32)
    text[:, 0] = np.arange(len(owner)) + 3  # the caption row is readable from its first token
    feats = rng.normal(size=(num_images, n, f)).astype(np.float32)
    feats[:, :, 0] = np.arange(num_images)[:, None]  # the image row is readable from feature 0
    boxes = np.tile(np.array([0, 0, 10, 10], np.float32), (num_images, n, 1))
    return MatchingStore(feats, boxes, text, owner)


class CountingScorer:
    """Score = caption row + 100 * image row: the hardest negatives are the highest rows."""

    def __init__(self):
        self.calls, self.pairs = 0, 0

    def __call__(self, inputs):
        self.calls += 1
        self.pairs += int(inputs[names.TEXT_IDS].shape[0])
        caption = tf.cast(inputs[names.TEXT_IDS][:, 0] - 3, tf.float32)
        image = inputs[names.IMAGE_FEATURES][:, 0, 0]
        return caption + 100.0 * image


def test_mining_keeps_the_top_scored_non_matching_candidates_in_batches(capsys):
    store = _store()
    miner = HardNegativeMiner(store, num_candidates=4, top_k=2, batch_size=16, seed=1)
    scorer = CountingScorer()
    miner.mine(scorer, epoch=0)
    # 6 images * 4 + 12 captions * 4 pairs: ceil(24/16) + ceil(48/16) = 5 calls of 16 pairs
    assert scorer.pairs == 80 and scorer.calls == 5
    # progress (stderr is not a terminal here): one line per scoring pass
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" - ")[0] for line in lines] == [
        "mining epoch 1: captions for each image: 24/24",
        "mining epoch 1: images for each caption: 48/48",
    ]
    assert lines[1].endswith(" pairs/s")
    for i, row in enumerate(miner.top_captions):
        assert not np.any(store.caption_image[row] == i)  # never its own caption
        assert row[0] > row[1]  # sorted by score (= caption row)
    for c, row in enumerate(miner.top_images):
        assert not np.any(row == store.caption_image[c])
        assert row[0] > row[1]
    # each example's draw is one of the kept negatives
    for c in range(12):
        assert miner.neg_caption.numpy()[c] in miner.top_captions[store.caption_image[c]]
        assert miner.neg_image.numpy()[c] in miner.top_images[c]


def test_draws_are_uniform_over_the_top_k_and_change_per_epoch():
    store = _store(num_images=4, captions_per_image=50)
    miner = HardNegativeMiner(store, num_candidates=3, top_k=3, batch_size=64)
    miner.mine(CountingScorer(), epoch=0)
    first = miner.neg_image.numpy().copy()
    hits = [np.flatnonzero(miner.top_images[c] == first[c]) for c in range(200)]
    assert all(len(h) == 1 for h in hits)  # every draw is one of its top-k
    assert np.bincount([int(h[0]) for h in hits], minlength=3).min() > 40  # ~uniform (200 / 3)
    miner.mine(CountingScorer(), epoch=1)
    assert not np.array_equal(first, miner.neg_image.numpy())


def test_add_negatives_gathers_from_the_store():
    store = _store()
    miner = HardNegativeMiner(store, num_candidates=4, top_k=2)
    miner.mine(CountingScorer(), epoch=0)
    inputs = {
        names.TEXT_IDS: store.text_ids[[0, 5]],
        names.IMAGE_FEATURES: store.image_features[[0, 2]],
    }
    _, targets = miner.add_negatives(inputs, {"caption_index": np.array([0, 5])})
    neg_c = miner.neg_caption.numpy()[[0, 5]]
    neg_i = miner.neg_image.numpy()[[0, 5]]
    np.testing.assert_array_equal(targets["neg_text_ids"].numpy(), store.text_ids[neg_c])
    np.testing.assert_array_equal(
        targets["neg_image_features"].numpy(), store.image_features[neg_i]
    )


def test_store_from_dataset_and_validation():
    store = _store()
    ds = tf.data.Dataset.from_tensor_slices(
        (
            {
                names.TEXT_IDS: store.text_ids,
                names.IMAGE_FEATURES: store.image_features[store.caption_image],
                names.BOXES: store.boxes[store.caption_image],
            },
            {"image_index": store.caption_image, "caption_index": np.arange(12)},
        )
    ).batch(5)
    again = MatchingStore.from_dataset(ds)
    np.testing.assert_array_equal(again.text_ids, store.text_ids)
    np.testing.assert_array_equal(again.image_features, store.image_features)
    with pytest.raises(ValueError, match="at least 2 images"):
        MatchingStore(store.image_features[:1], store.boxes[:1], store.text_ids[:2], np.zeros(2))
    with pytest.raises(ValueError, match="top_k"):
        HardNegativeMiner(store, num_candidates=2, top_k=3)


#: theta's lead of the favoured op: enough for argmax (float32 resolves it at 0), far too little
#: for a sample of softmax(theta), which is then close to uniform over the pool (see below).
THETA_MARGIN = 0.01


def _favour(search, choices):
    """theta favouring one op per mixed slot by :data:`THETA_MARGIN`: ``choices[s]`` for slot s
    (the argmax), the others tied at 0."""
    for variable, k in zip(search.arch_variables, choices):
        value = np.zeros(variable.shape, np.float32)
        value[k] = THETA_MARGIN
        variable.assign(value)


def test_search_mines_negatives_with_the_argmax_architecture(tmp_path):
    """The hook the search driver installs (``task.epoch_hooks(exp, config, search_model)``) mines
    with the argmax architecture of the current theta: its negatives equal a miner run directly on
    that fixed path of the supernet, and change when theta (only theta) changes. theta leads by
    only THETA_MARGIN, so a miner scoring with architectures sampled from softmax(theta) would
    score most batches with another path and fail the comparison."""
    import keras

    from mmnas_tf.experiments import apply_overrides, get_experiment
    from mmnas_tf.nas.search_model import SearchModel
    from mmnas_tf.runs import resolve_experiment
    from mmnas_tf.synthbench import benchmark
    from mmnas_tf.tasks import get_task

    data = str(tmp_path / "itm")
    benchmark.generate(get_task("itm"), data, "tiny", 12, 0, "float16", None, 16)
    exp = apply_overrides(
        get_experiment("itm_tiny"),
        [
            f"data.data_dir={data}",
            "search_model.num_encoder_blocks=1",
            "search_model.num_decoder_blocks=2",
            "search_model.hidden_size=16",
            "search_model.num_heads=2",
            "search_model.ffn_size=32",
            "search_model.dropout=0.0",
            "task_config.hard_negatives.num_candidates=6",
            "train.hard_negatives.top_k=2",
        ],
    )
    exp = resolve_experiment(exp)
    config = exp.search_model
    task = get_task("itm")
    keras.utils.set_random_seed(0)
    search = SearchModel(task, task.build_model(config), seed=0)
    hooks = task.epoch_hooks(exp, config, search)
    miner = hooks.batch_fn.__self__  # the HardNegativeMiner behind the hook
    options = [len(v.numpy()) for v in search.arch_variables]
    archs = ([0] * len(options), [n - 1 for n in options])
    # a sample of softmax(theta) is the argmax path with this probability (per scoring call)
    lead = np.exp(THETA_MARGIN)
    assert np.prod([lead / (lead + n - 1) for n in options]) < 0.1, options

    def direct(choices):
        """A fresh miner, same candidates (same seed and epoch), scoring with a fixed path."""
        arch = search._arch([tf.constant(c, tf.int32) for c in choices])
        score = tf.function(lambda x: search.task_model(x, training=False, arch=arch)["logits"])
        fresh = HardNegativeMiner(miner.store, 6, 2, exp.data.eval_batch_size, exp.data.seed)
        fresh.mine(score, 0)
        return fresh.neg_caption.numpy(), fresh.neg_image.numpy()

    mined = {}
    for choices in archs:
        _favour(search, choices)
        hooks.before_epoch(0)
        mined[tuple(choices)] = (miner.neg_caption.numpy().copy(), miner.neg_image.numpy().copy())
        want = direct(choices)
        np.testing.assert_array_equal(mined[tuple(choices)][0], want[0])
        np.testing.assert_array_equal(mined[tuple(choices)][1], want[1])
    first, second = mined.values()
    assert not (np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1]))
