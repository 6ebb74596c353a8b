"""The tf.data pipeline: exact contents, fixed shapes, eager == tf.data, buckets, D_m/D_a, corruption."""

import os

import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf import inputs as names
from mmnas_tf.data import pipeline, writer
from mmnas_tf.tasks import get_task

MAX_REGIONS, MAX_TOKENS = 50, 8


def _config(task, **kw):
    base = dict(
        batch_size=4,
        max_tokens=MAX_TOKENS,
        max_regions=MAX_REGIONS,
        training=False,
        deterministic=True,
        seed=0,
    )
    return pipeline.PipelineConfig(get_task(task), **{**base, **kw})


def _unbatch(ds):
    for inputs, targets in ds:
        b = inputs[names.TEXT_IDS].shape[0]
        for i in range(b):
            yield (
                {k: v[i].numpy() for k, v in inputs.items()},
                {k: v[i].numpy() for k, v in targets.items()},
            )


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("task", ["vqa", "itm", "vg"])
def test_pipeline_contents_exact(tmp_path, helpers, task, dtype):
    records = helpers.write_random(str(tmp_path), task, dtype=dtype)
    p = pipeline.Pipeline(str(tmp_path), "train", _config(task))
    ds = p.dataset()
    spec = ds.element_spec[0]
    assert spec[names.IMAGE_FEATURES].shape.as_list() == [None, MAX_REGIONS, 16]
    assert spec[names.TEXT_IDS].shape.as_list() == [None, MAX_TOKENS]
    assert spec[names.TEXT_IDS].dtype == tf.int32 and spec[names.IMAGE_FEATURES].dtype == tf.float32
    seen = 0
    for inputs, targets in _unbatch(ds):
        n = min(len(inputs[names.IMAGE_FEATURES]), MAX_REGIONS)
        key = {"itm": "caption_index", "vqa": "question_id", "vg": "sentence_id"}[task]
        rec = next(r for r in records if int(targets[key]) in r["text_id"])
        j = rec["text_id"].index(int(targets[key]))
        real = min(len(rec["features"]), MAX_REGIONS)
        np.testing.assert_array_equal(
            inputs[names.IMAGE_FEATURES][:real], rec["features"][:real].astype(np.float32)
        )
        assert (
            not inputs[names.IMAGE_FEATURES][real:].any() and not inputs[names.BOXES][real:].any()
        )
        np.testing.assert_array_equal(inputs[names.BOXES][:real], rec["boxes"][:real])
        ids = np.asarray(rec["text_ids"][j])[:MAX_TOKENS]
        np.testing.assert_array_equal(inputs[names.TEXT_IDS][: len(ids)], ids)
        assert not inputs[names.TEXT_IDS][len(ids) :].any()
        if task == "vqa":
            want = np.zeros(helpers.num_answers, np.float32)
            for a, s in rec["answer_scores"][j].items():
                want[a] = s
            np.testing.assert_array_equal(targets["answer_scores"], want)
            assert targets["answers"].astype(str).tolist() == rec["raw_answers"][j]
            assert targets["answer_type"] == b"other"
        if task == "vg":
            np.testing.assert_array_equal(targets["gt_box"], rec["gt_boxes"][j])
        assert n == MAX_REGIONS
        seen += 1
    assert (
        seen == sum(len(r["texts"]) for r in records) == p.manifest["splits"]["train"]["examples"]
    )


def test_eager_parse_equals_tf_data(tmp_path, helpers):
    helpers.write_random(str(tmp_path), "vqa", shards=1)
    p = pipeline.Pipeline(str(tmp_path), "train", _config("vqa", batch_size=1))
    config = p.config  # num_answers filled in from answers.txt
    from_ds = list(_unbatch(p.dataset()))
    eager = []
    for raw in tf.data.TFRecordDataset(writer.split_files(str(tmp_path), "train")):
        for inputs, targets in pipeline.parse_record(config, raw.numpy(), 16):
            eager.append(
                (
                    {k: v.numpy() for k, v in inputs.items()},
                    {k: v.numpy() for k, v in targets.items()},
                )
            )
    assert len(eager) == len(from_ds)
    for (a_in, a_t), (b_in, b_t) in zip(eager, from_ds):
        for k in a_in:
            np.testing.assert_array_equal(a_in[k], b_in[k])
        for k in a_t:
            np.testing.assert_array_equal(a_t[k], b_t[k])


def test_training_shuffles_reproducibly_and_drops_partial_batch(tmp_path, helpers):
    helpers.write_random(str(tmp_path), "vg")
    total = pipeline.Pipeline(str(tmp_path), "train", _config("vg")).manifest["splits"]["train"][
        "examples"
    ]
    runs = []
    for _ in range(2):
        ds = pipeline.Pipeline(
            str(tmp_path), "train", _config("vg", training=True, batch_size=3)
        ).dataset()
        runs.append([t["gt_box"].numpy() for _, t in ds])
    assert all(b.shape == (3, 4) for b in runs[0])
    assert len(runs[0]) == total // 3
    np.testing.assert_array_equal(np.concatenate(runs[0]), np.concatenate(runs[1]))


def test_bucketing_pads_to_the_smallest_boundary(tmp_path, helpers):
    records = helpers.write_random(str(tmp_path), "itm")
    bounds = (20, 36, 50)
    config = _config("itm", bucket_boundaries=bounds, batch_size=2)
    regions = {r["image_index"]: len(r["features"]) for r in records}
    count = 0
    for inputs, targets in pipeline.Pipeline(str(tmp_path), "train", config).dataset():
        slots = inputs[names.IMAGE_FEATURES].shape[1]
        assert slots in bounds
        for i, image in enumerate(targets["image_index"].numpy()):
            n = min(regions[int(image)], MAX_REGIONS)
            assert slots == min(b for b in bounds if b >= n)
            assert inputs[names.IMAGE_FEATURES][i, :n].numpy().any(axis=1).all()
            count += 1
    assert count == sum(len(r["texts"]) for r in records)


@pytest.mark.parametrize("training", [False, True])
def test_batch_padding_pads_each_bucket_batch_to_its_own_largest_count(tmp_path, helpers, training):
    regions = (10, 100, 3, 36, 50, 7, 20, 100, 12, 14, 45, 33)
    records = helpers.write_random(str(tmp_path), "itm", regions=regions)
    bounds = (10, 20, 50)
    config = _config(
        "itm", bucket_boundaries=bounds, pad_to="batch", batch_size=3, training=training, seed=1
    )
    by_image = {r["image_index"]: r for r in records}
    seen, widths = [], []
    for inputs, targets in pipeline.Pipeline(str(tmp_path), "train", config).dataset():
        feats = inputs[names.IMAGE_FEATURES].numpy()
        counts = [
            min(len(by_image[int(i)]["features"]), MAX_REGIONS) for i in targets["image_index"]
        ]
        assert feats.shape[1] == max(counts)  # the batch's own largest count, not a boundary
        buckets = {min(b for b in bounds if b >= n) for n in counts}
        assert len(buckets) == 1  # one bucket per batch
        for row, n, image in zip(feats, counts, targets["image_index"].numpy()):
            np.testing.assert_array_equal(row[:n], by_image[int(image)]["features"][:n])
            assert not row[n:].any()
        assert training is False or len(counts) == 3
        widths.append(feats.shape[1])
        seen += targets["caption_index"].numpy().tolist()
    texts = sorted(t for r in records for t in r["text_id"])
    assert len(set(widths)) > 2
    if training:  # each bucket drops its partial window; the same seed gives the same batches
        assert len(seen) == len(set(seen)) and len(seen) % 3 == 0 and set(seen) <= set(texts)
        again = pipeline.Pipeline(str(tmp_path), "train", config).dataset()
        assert [i for _, t in again for i in t["caption_index"].numpy().tolist()] == seen
    else:
        assert sorted(seen) == texts


def test_region_buckets_are_tenths():
    assert pipeline.region_buckets(100) == (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
    assert pipeline.region_buckets(36) == (4, 8, 11, 15, 18, 22, 26, 29, 33, 36)
    assert pipeline.region_buckets(6) == (1, 2, 3, 4, 5, 6)
    with pytest.raises(ValueError, match="max_regions must be >= 1"):
        pipeline.region_buckets(0)


def test_search_subsets_are_disjoint_reproducible_and_complete(tmp_path, helpers):
    helpers.write_random(str(tmp_path), "itm", regions=[5] * 60, shards=2)

    def images(subset, seed=0, ratio=(4, 1)):
        config = _config("itm", subset=subset, subset_seed=seed, subset_ratio=ratio, batch_size=8)
        ds = pipeline.Pipeline(str(tmp_path), "train", config).dataset()
        return {int(i) for _, t in ds for i in t["image_index"].numpy()}

    dm, da = images("dm"), images("da")
    assert dm.isdisjoint(da) and dm | da == set(range(60))
    assert 30 <= len(dm) <= 58  # 4:1 of 60 = 48, hashed
    assert images("dm") == dm
    assert images("dm", seed=1) != dm
    assert len(images("dm", ratio=(1, 1))) < len(dm)


def _corrupt(tmp_path, helpers, how):
    records = helpers.write_random(str(tmp_path), "vg", regions=[10] * 12, shards=2)
    path = writer.split_files(str(tmp_path), "train")[1]
    data = bytearray(open(path, "rb").read())
    lengths = [len(r.numpy()) + 16 for r in tf.data.TFRecordDataset(path)]
    start = sum(lengths[:3])  # record 3 of this shard
    if how == "truncate":
        data = data[: start + lengths[3] // 2]
    else:
        data[start + lengths[3] // 2] ^= 0x40
    open(path, "wb").write(bytes(data))
    return path, records


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_corrupt_shard_raises_naming_file_and_record(tmp_path, helpers, how):
    path, _ = _corrupt(tmp_path, helpers, how)
    ds = pipeline.Pipeline(str(tmp_path), "train", _config("vg")).dataset()
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=f"{os.path.basename(path)}: record 3 is unreadable"
    ):
        for _ in ds:
            pass


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_corrupt_shard_skip_counts(tmp_path, helpers, how):
    _, records = _corrupt(tmp_path, helpers, how)
    p = pipeline.Pipeline(str(tmp_path), "train", _config("vg", on_corrupt="skip"))
    read = sorted(int(i) for _, t in p.dataset() for i in t["sentence_id"].numpy())
    survivors = records[:6] + records[6:9]  # shard 1 holds records 6..11; 9, 10, 11 are lost
    assert read == sorted(i for r in survivors for i in r["text_id"])
    assert p.skipped_records == 3


def test_bad_config_names_choices(tmp_path, helpers):
    with pytest.raises(ValueError, match="on_corrupt='ignore'.*'raise', 'skip'"):
        _config("vqa", on_corrupt="ignore")
    with pytest.raises(ValueError, match="subset='train'"):
        _config("vqa", subset="train")
    with pytest.raises(ValueError, match=r"pad_to='max'; expected one of \('bucket', 'batch'\)"):
        _config("vqa", pad_to="max")
    with pytest.raises(ValueError, match="end at max_regions=50"):
        _config("vqa", bucket_boundaries=(20, 36))
    helpers.write_random(str(tmp_path), "vg")
    with pytest.raises(ValueError, match="holds 'vg' records, not 'itm'"):
        pipeline.Pipeline(str(tmp_path), "train", _config("itm"))
    with pytest.raises(ValueError, match=r"no split 'val'; it has \['train'\]"):
        pipeline.Pipeline(str(tmp_path), "val", _config("vg"))
    os.remove(writer.split_files(str(tmp_path), "train")[0])
    with pytest.raises(FileNotFoundError, match="train-00000-of-00003"):
        pipeline.Pipeline(str(tmp_path), "train", _config("vg"))
