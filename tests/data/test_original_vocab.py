"""The converters rebuild the original's token and answer tables (same strings, same ids) from the
files the original reads, in the order it reads them.

The original builds both tables at every run and stores neither; its loaders cannot run here (they
import a spaCy model at import), so its rule is ported below as small reference functions and the
converters are checked against them on fixtures written in the users' formats.
"""

import json
import os
import pathlib
import random
import re
import subprocess
import sys

import numpy as np
import pytest
from support.commands import entry_point

from mmnas_tf import inputs as names
from mmnas_tf.data import answers as answer_lib
from mmnas_tf.data import writer
from mmnas_tf.data.converters import common, region_features
from mmnas_tf.tasks import get_task
from mmnas_tf.tasks.itm import converter as flickr
from mmnas_tf.tasks.vg import converter as refcoco
from mmnas_tf.tasks.vqa import converter as vqa
from mmnas_tf.text import Vocabulary

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIM = 8  # region-feature width of the fixtures (the converters take any width)


# ---------------------------------------------------------------- the original's rule, ported


def original_words(sentence):
    """The original's question / caption splitting."""
    return (
        re.sub(r"([.,'!?\"()*#:;])", "", sentence.lower())
        .replace("-", " ")
        .replace("/", " ")
        .split()
    )


def original_token_table(word_lists):
    """PAD, UNK, CLS, then every new word in the order met."""
    table = {"PAD": 0, "UNK": 1, "CLS": 2}
    for words in word_lists:
        for word in words:
            if word not in table:
                table[word] = len(table)
    return table


def original_ids(words, table, max_token):
    """The original's per-sentence ids: unknown words -> UNK, right-padded, trimmed."""
    ids = np.zeros(max_token, np.int64)
    for i, word in enumerate(words[:max_token]):
        ids[i] = table.get(word, table["UNK"])
    return ids


def original_vqa_tables(train_q, val_q, test_q, vg_q, train_a, val_a):
    """Tokens over the questions of train, val, test, then VG (its fixed order); answers: the
    normalised multiple_choice_answer seen more than 8 times over train and val annotations,
    first-appearance order (the normalisation is the original's preprocess_answer, tested in
    test_answers.py)."""
    questions = [q for p in (train_q, val_q, test_q, vg_q) for q in _json(p)["questions"]]
    table = original_token_table(original_words(q["question"]) for q in questions)
    counts = {}
    for path in (train_a, val_a):
        for ann in _json(path)["annotations"]:
            answer = answer_lib.normalize_answer(ann["multiple_choice_answer"])
            counts[answer] = counts.get(answer, 0) + 1
    return table, [a for a in counts if counts[a] > 8]


def original_itm_table(train_caps, dev_caps, test_caps):
    """Tokens over the caption lines of train, dev, test (SCAN's files), in that order."""
    lines = []
    for path in (train_caps, dev_caps, test_caps):
        with open(path) as f:
            lines += [line.strip() for line in f]
    return original_token_table(original_words(line) for line in lines)


def original_vg_table(split_files):
    """Tokens over the samples' ``tokens`` (verbatim) of the per-split files, in the given order."""
    return original_token_table(s["tokens"] for p in split_files for s in _json(p))


def _json(path):
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------- VQA fixture

POOLS = {  # words only one split's questions bring in (plus train words reused elsewhere)
    "train": "what colour is the cat how many dogs are there sofa under table red left kite "
    "flying man holding bat",
    "val": "zebra grazing field giraffe tall tree behind fence near road",
    "test": "bus parked street clock tower pizza slice plate fork",
    "vg": "surfboard wave ocean beach sand umbrella towel sunny",
}
# multiple_choice_answer counts per annotated file. Over train + val: 10 answers seen > 8 times
# (9 exactly for several, "2" only after normalising "two"), "blue" 8 times (not kept), "dog" 8
# times (+3 in VG: kept only if VG were counted), "surf" only in VG (9 times), "zebra" only in val.
ANSWER_COUNTS = {
    "train": {"yes": 7, "no": 6, "two": 5, "2": 1, "red": 9, "cat": 5, "one": 6, "table": 9,
              "left": 4, "grass": 3, "blue": 8, "dog": 7},
    "val": {"yes": 5, "no": 4, "2": 3, "cat": 4, "1": 3, "left": 5, "zebra": 9, "grass": 6, "dog": 1},
    "vg": {"dog": 3, "surf": 9, "yes": 8},
}  # fmt: skip
IMAGES = {"train": [9, 25, 77], "val": [42, 43], "test": [1000, 1001], "vg": [9, 25, 42]}
FEATURE_DIRS = {"train": "train2014", "val": "val2014", "test": "test2015"}


def _questions(split, count, rng):
    """``count`` questions; the first ones cover the split's pool, later ones mix in train words."""
    pool = POOLS[split].split()
    shuffled = rng.sample(pool, len(pool))
    chunks = [shuffled[i : i + 4] for i in range(0, len(shuffled), 4)]
    out = []
    for k in range(count):
        words = chunks[k] if k < len(chunks) else rng.sample(pool, 3)
        if split != "train":
            words = words + rng.sample(POOLS["train"].split(), 2)
        text = " ".join(words)
        if k % 3 == 0:  # the tokenizer's rules: case, punctuation, hyphens and slashes
            text = text.replace(" ", "-", 1)
        if k % 4 == 1:
            text = text.replace(" ", " / ", 1)
        out.append(text[0].upper() + text[1:] + "?")
    return out


def write_vqa_original(root, helpers):
    """VQA-v2-format files of train, val, test and a VG augmentation, with their features."""
    rng = random.Random(7)
    feats = root / "feats"
    for split, folder in FEATURE_DIRS.items():
        (feats / folder).mkdir(parents=True)
        for image in IMAGES[split]:
            name = f"COCO_{folder}_{image:012d}.jpg.npz"
            helpers.write_npz(feats / folder / name, 3 + image % 4, seed=image, dim=DIM)
    files, qid = {}, 1
    for split in ("train", "val", "test", "vg"):
        answers = [a for a, n in ANSWER_COUNTS.get(split, {}).items() for _ in range(n)]
        rng.shuffle(answers)
        texts = _questions(split, len(answers) or 10, rng)
        questions, annotations = [], []
        for k, text in enumerate(texts):
            image = IMAGES[split][rng.randrange(len(IMAGES[split]))]
            questions.append({"image_id": image, "question": text, "question_id": qid})
            if answers:
                annotations.append(
                    {
                        "question_id": qid,
                        "image_id": image,
                        "answer_type": "other",
                        "multiple_choice_answer": answers[k],
                        "answers": [{"answer": answers[k], "answer_id": j + 1} for j in range(10)],
                    }
                )
            qid += 1
        subtype = {"data_subtype": FEATURE_DIRS[split]} if split in FEATURE_DIRS else {}
        q_path = root / f"{split}_questions.json"
        q_path.write_text(json.dumps({**subtype, "questions": questions}))
        files[split] = [str(q_path)]
        if annotations:
            a_path = root / f"{split}_annotations.json"
            a_path.write_text(json.dumps({"annotations": annotations}))
            files[split].append(str(a_path))
    return feats, files


def convert_vqa_as_documented(root, files, feats, out, *extra):
    """The VQA command of tfrecords/README.md: train, VG (label vg), val, test."""
    cmd = entry_point(
        "convert",
        "--task=vqa",
        f"--out_dir={out}",
        f"--features={feats / 'train2014'},{feats / 'val2014'},{feats / 'test2015'}",
        "--vqa=train:" + ":".join(files["train"]),
        "--vqa=vg:" + ":".join(files["vg"]),
        "--vqa=val:" + ":".join(files["val"]),
        "--vqa=test:" + ":".join(files["test"]),
        "--noprogress",
        *extra,
    )
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def _tables(out):
    tokens = Vocabulary.load(str(out / writer.VOCAB_FILE)).tokens
    return tokens, answer_lib.load_answers(str(out / writer.ANSWERS_FILE))


@pytest.fixture(scope="module")
def vqa_converted(tmp_path_factory, helpers):
    root = tmp_path_factory.mktemp("vqa_original")
    feats, files = write_vqa_original(root, helpers)
    result = convert_vqa_as_documented(root, files, feats, root / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    table, answers = original_vqa_tables(
        *files["train"][:1],
        files["val"][0],
        files["test"][0],
        files["vg"][0],
        files["train"][1],
        files["val"][1],
    )
    return root / "out", files, table, answers


def test_vqa_tables_equal_the_originals(vqa_converted):
    out, files, table, answers = vqa_converted
    tokens, got_answers = _tables(out)
    assert tokens == list(table) and [table[t] for t in tokens] == list(range(len(tokens)))
    assert got_answers == answers
    # sized like the reference checkpoint (50 tokens, 10 answers), used end to end below
    assert (len(tokens), len(answers)) == (50, 10)
    assert "2" in answers and "zebra" in answers and not {"blue", "dog", "surf"} & set(answers)
    # the fixture tells the rules apart: flag order (train, VG, val, test) gives other ids, and
    # counting VG's annotations adds "dog" (8 + 3) and "surf"
    flag_order = [files[s][0] for s in ("train", "vg", "val", "test")]
    words = [original_words(q["question"]) for p in flag_order for q in _json(p)["questions"]]
    assert list(original_token_table(words)) != tokens
    with_vg = [
        answer_lib.normalize_answer(a["multiple_choice_answer"])
        for s in ("train", "vg", "val")
        for a in _json(files[s][1])["annotations"]
    ]
    assert {"dog", "surf"} <= {a for a in with_vg if with_vg.count(a) > 8}


def original_scores(raw_answers, answers):
    """The original's soft target of one question (get_score of the normalised answer counts)."""
    counts = {}
    for a in raw_answers:
        a = answer_lib.normalize_answer(a)
        counts[a] = counts.get(a, 0) + 1
    target = np.zeros(len(answers), np.float32)
    for a, n in counts.items():
        if a in answers:
            target[answers.index(a)] = (0.0, 0.3, 0.6, 0.9, 1.0)[min(n, 4)]
    return target


def test_vqa_records_hold_the_original_ids_and_targets(vqa_converted, helpers):
    out, files, table, answers = vqa_converted
    questions = {q["question_id"]: q for s in files.values() for q in _json(s[0])["questions"]}
    annotations = {
        a["question_id"]: a
        for s in files.values()
        if len(s) > 1
        for a in _json(s[1])["annotations"]
    }
    seen = {}
    for split in ("train", "val", "test"):
        for inputs, targets in helpers.read_all(out, split, "vqa", max_tokens=14):
            qid = int(targets["question_id"])
            seen[qid] = split
            words = original_words(questions[qid]["question"])
            np.testing.assert_array_equal(inputs[names.TEXT_IDS], original_ids(words, table, 14))
            if split != "test":
                raw = [a["answer"] for a in annotations[qid]["answers"]]
                np.testing.assert_array_equal(
                    targets["answer_scores"], original_scores(raw, answers)
                )
    vg_ids = {q["question_id"] for q in _json(files["vg"][0])["questions"]}
    assert {seen[q] for q in vg_ids} == {"train"}  # the augmentation joins train
    assert len(seen) == len(questions)


TEXT_INPUT = {"vqa": "ques_ix", "itm": "cap_ix", "vg": "query_ix"}


def start_import(ref, export, vocab, answers=None, *extra):
    """``python -m mmnas_tf.import_official`` of a reference checkpoint with rebuilt tables,
    started (:func:`finished` waits for it): imports that do not depend on each other overlap."""
    cmd = [
        sys.executable,
        "-m",
        "mmnas_tf.import_official",
        f"--task={ref.task}",
        f"--checkpoint={ref.checkpoint}",
        f"--arch={ref.arch}",
        f"--export_dir={export}",
        f"--vocab={vocab}",
        f"--max_tokens={ref.sizes['max_tokens']}",
        f"--max_regions={ref.sizes['max_regions']}",
        *extra,
    ]
    if answers:
        cmd.append(f"--answer_vocab={answers}")
    return subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finished(process) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def predict_reference_texts(ref, export, table, unknown="zzzunknown"):
    """Writes the reference inputs' token ids back as sentences under ``table`` (id 1 -> a word
    outside it), checks the original's rule encodes them to those ids, and asks the export's
    predict_text about them with the reference images."""
    import tensorflow as tf

    words = {i: w for w, i in table.items()}
    rows = ref.io[TEXT_INPUT[ref.task]]
    texts = [" ".join(words[int(i)] if i != 1 else unknown for i in row if i) for row in rows]
    for text, row in zip(texts, rows):
        np.testing.assert_array_equal(original_ids(original_words(text), table, len(row)), row)
    sig = tf.saved_model.load(str(export / "1")).signatures["predict_text"]
    images = {"image_features": "frcn_feat", "boxes": "boxes_xyxy", "image_size": "image_hw"}
    accepted = sig.structured_input_signature[1]
    return sig(
        text=tf.constant(texts),
        **{k: tf.constant(ref.io[v]) for k, v in images.items() if k in accepted},
    )


@pytest.mark.slow
def test_imported_checkpoint_answers_with_the_original_strings(vqa_converted, reference_by_task):
    """The original's small VQA checkpoint, imported with the rebuilt tables: predict_text on raw
    questions gives the reference logits and names the answers through answers.txt."""
    out, _, table, answers = vqa_converted
    ref = reference_by_task["vqa"]
    export = out.parent / "export"
    # a token table of another size than the checkpoint's embedding is refused (beside the import)
    short = out.parent / "short_vocab.txt"
    short.write_text("\n".join(list(table)[:-1]) + "\n")
    started = start_import(ref, export, out / "vocab.txt", out / "answers.txt")
    bad = finished(start_import(ref, export, short, out / "answers.txt", "--version=2"))
    result = finished(started)
    assert result.returncode == 0, result.stderr[-3000:]
    got = predict_reference_texts(ref, export, table)
    np.testing.assert_allclose(got["logits"].numpy(), ref.io["logits"], atol=1e-4)
    order = np.argsort(-ref.io["logits"], axis=1)[:, : got["top_answers"].shape[1]]
    want = [[answers[i] for i in row] for row in order]
    assert got["top_answers"].numpy().astype(str).tolist() == want
    assert bad.returncode != 0
    assert "has 49 tokens but the checkpoint's embedding has 50 rows" in bad.stderr


def _pool(prefix, n):
    return [f"{prefix}{k}" for k in range(n)]


@pytest.mark.slow
def test_imported_itm_and_vg_checkpoints_read_the_rebuilt_tables(tmp_path, reference_by_task):
    """The small ITM and VG checkpoints (50-token embeddings), imported with tables rebuilt from
    SCAN's caption files and the original's RefCOCO JSON, score raw text as the original."""
    # ITM: 47 words over train, dev, test captions (given in another flag order)
    caps = {"train": _pool("tr", 20), "dev": _pool("dv", 15), "test": _pool("te", 12)}
    specs, images = [], []
    for k, (split, pool) in enumerate(caps.items()):
        lines = [" ".join(pool[i : i + 4]).title() + "." for i in range(0, len(pool), 4)]
        lines += [pool[0]] * (-len(lines) % 5)
        (tmp_path / f"{split}_caps.txt").write_text("\n".join(lines) + "\n")
        (tmp_path / f"{split}_ids.txt").write_text(f"{k}\n" * (len(lines) // 5))
        images.append({"filename": f"{k}.jpg", "imgid": k, "split": "x", "sentences": []})
        specs.append(
            f"{'val' if split == 'dev' else split}:{tmp_path / f'{split}_caps.txt'}:"
            f"{tmp_path / f'{split}_ids.txt'}"
        )
    (tmp_path / "dataset.json").write_text(json.dumps({"images": images}))
    splits = flickr.caption_items(specs[::-1], str(tmp_path / "dataset.json"))
    (tmp_path / "itm").mkdir()
    (tmp_path / "vg").mkdir()
    common.token_vocabulary(str(tmp_path / "itm"), splits)
    table = original_itm_table(*(tmp_path / f"{s}_caps.txt" for s in ("train", "dev", "test")))
    # VG: 47 tokens over train, val, testA, testB files (given in another order)
    pools = {
        "train": _pool("tr", 20),
        "val": _pool("va", 10),
        "testA": _pool("ta", 9),
        "testB": _pool("tb", 8),
    }
    paths = []
    for split, pool in pools.items():
        samples = [
            {"tokens": pool[i : i + 4], "image_id": 1, "split": split, "bbox": [0, 0, 9, 9]}
            for i in range(0, len(pool), 4)
        ]
        paths.append(tmp_path / f"{split}.json")
        paths[-1].write_text(json.dumps(samples))
    common.token_vocabulary(str(tmp_path / "vg"), refcoco.ref_json_items(map(str, paths[::-1])))
    tables = {"itm": table, "vg": original_vg_table(paths)}

    checks = {"itm": "scores_pos", "vg": "eval_decoded_boxes_clipped_argmax"}
    for task in checks:
        assert Vocabulary.load(str(tmp_path / task / writer.VOCAB_FILE)).tokens == list(
            tables[task]
        )
        assert len(tables[task]) == 50
    started = {  # the two imports overlap
        task: start_import(
            reference_by_task[task],
            tmp_path / f"export_{task}",
            tmp_path / task / writer.VOCAB_FILE,
        )
        for task in checks
    }
    results = {task: finished(process) for task, process in started.items()}
    for task, check in checks.items():
        ref, export, result = reference_by_task[task], tmp_path / f"export_{task}", results[task]
        assert result.returncode == 0, result.stderr[-3000:]
        got = predict_reference_texts(ref, export, tables[task])
        output = got["score"] if task == "itm" else got["box"]
        np.testing.assert_allclose(
            output.numpy(), ref.io[check], atol=1e-3 if task == "vg" else 1e-4
        )


# ---------------------------------------------------------------- ITM: SCAN's caption files

ITM_WORDS = {
    "train": "a dog runs on grass",
    "dev": "two girls play ball",
    "test": "man rides horse",
}


def write_scan_captions(root, helpers):
    """Karpathy JSON + SCAN-style caption / id files (train: one id per image; dev, test: one per
    caption, as the original's loader reads them) + features named by Flickr id."""
    feats = root / "feats"
    feats.mkdir()
    images, specs, want = [], {}, {}
    layout = {"train": [0, 1, 4], "dev": [2], "test": [3]}
    for split, imgids in layout.items():
        caps, ids = [], []
        for imgid in imgids:
            fid = 5000 + imgid
            images.append({"filename": f"{fid}.jpg", "imgid": imgid, "split": "x", "sentences": []})
            want[imgid] = helpers.write_npz(feats / f"{fid}.jpg.npz", 4, seed=imgid, dim=DIM)
            words = ITM_WORDS[split].split()
            for j in range(5):
                caps.append(f"{words[j % len(words)].title()}-{split} {' '.join(words[: j + 1])}.")
            ids += [str(imgid)] * (1 if split == "train" else 5)
        (root / f"{split}_caps.txt").write_text("\n".join(caps) + "\n")
        (root / f"{split}_ids.txt").write_text("\n".join(ids) + "\n")
        specs[split] = f"{root / f'{split}_caps.txt'}:{root / f'{split}_ids.txt'}"
    (root / "dataset.json").write_text(json.dumps({"images": images}))
    return feats, specs, want


def test_itm_tables_from_scan_captions_equal_the_originals(tmp_path, helpers):
    feats, specs, want = write_scan_captions(tmp_path, helpers)
    # flag order test, val (SCAN's dev), train: the table still follows the original's order
    given = [f"test:{specs['test']}", f"val:{specs['dev']}", f"train:{specs['train']}"]
    splits = flickr.caption_items(given, str(tmp_path / "dataset.json"))
    out = tmp_path / "out"
    common.write_dataset(get_task("itm"), str(out), splits, [str(feats)], progress=False)
    table = original_itm_table(*(tmp_path / f"{s}_caps.txt" for s in ("train", "dev", "test")))
    assert Vocabulary.load(str(out / writer.VOCAB_FILE)).tokens == list(table)
    tokens = list(table)  # train words first, test words last, whatever the flag order
    assert tokens.index("grass") < tokens.index("girls") < tokens.index("man")
    for split, caps in (("train", "train"), ("val", "dev"), ("test", "test")):
        lines = (tmp_path / f"{caps}_caps.txt").read_text().splitlines()
        examples = helpers.read_all(out, split, "itm", max_tokens=20)
        assert sorted(int(t["caption_index"]) for _, t in examples) == list(range(len(lines)))
        for inputs, targets in examples:
            c = int(targets["caption_index"])
            words = original_words(lines[c])
            np.testing.assert_array_equal(inputs[names.TEXT_IDS], original_ids(words, table, 20))
            ids = (tmp_path / f"{caps}_ids.txt").read_text().split()
            imgid = int(ids[c // 5] if caps == "train" else ids[c - c % 5])
            np.testing.assert_array_equal(inputs[names.IMAGE_FEATURES][:4], want[imgid][0])


def test_caption_ids_must_match_the_captions(tmp_path, helpers):
    feats, specs, _ = write_scan_captions(tmp_path, helpers)
    (tmp_path / "dev_ids.txt").write_text("2\n2\n")
    with pytest.raises(ValueError, match="dev_ids.txt: 2 ids for the 5 captions of .*dev_caps.txt"):
        flickr.caption_items([f"val:{specs['dev']}"], str(tmp_path / "dataset.json"))
    (tmp_path / "dev_ids.txt").write_text("7\n")
    with pytest.raises(ValueError, match="image id '7' .* is not an imgid of .*dataset.json"):
        flickr.caption_items([f"val:{specs['dev']}"], str(tmp_path / "dataset.json"))
    with pytest.raises(ValueError, match="expected SPLIT:CAPS_TXT:IDS_TXT"):
        flickr.caption_items(["val:only_caps.txt"], str(tmp_path / "dataset.json"))


# ---------------------------------------------------------------- VG: the original's RefCOCO JSON


def write_ref_json(root, helpers):
    """Per-split files as the original's RefCOCO preprocessing writes them; tokens verbatim (one
    with capitals and an apostrophe, which the original keeps as they are)."""
    feats = root / "feats"
    feats.mkdir()
    words = {
        "train": ["man", "left", "Man's", "shirt"],
        "val": ["woman", "right"],
        "testA": ["kid", "middle"],
        "testB": ["car", "front"],
    }
    paths = {}
    for k, (split, pool) in enumerate(words.items()):
        samples = []
        for j in range(3):
            image = 100 + (k * 3 + j) % 5
            samples.append(
                {
                    "tokens": pool[j % len(pool) :] + ["the", pool[0]],
                    "file_name": f"COCO_train2014_{image:012d}_{j}.jpg",
                    "image_id": image,
                    "split": split,
                    "bbox": [10.0 + j, 20.0, 30.0, 40.5],
                    "name": "person",
                    "height": 480,
                    "width": 640,
                }
            )
        paths[split] = root / f"{split}.json"
        paths[split].write_text(json.dumps(samples))
    for image in range(100, 105):
        helpers.write_npz(feats / f"COCO_train2014_{image:012d}.jpg.npz", 5, seed=image, dim=DIM)
    return feats, paths


def test_vg_tables_from_the_original_ref_json_equal_the_originals(tmp_path, helpers):
    feats, paths = write_ref_json(tmp_path, helpers)
    given = [str(paths[s]) for s in ("testB", "val", "train", "testA")]
    splits = refcoco.ref_json_items(given)
    out = tmp_path / "out"
    common.write_dataset(get_task("vg"), str(out), splits, [str(feats)], progress=False)
    table = original_vg_table([paths[s] for s in ("train", "val", "testA", "testB")])
    tokens = Vocabulary.load(str(out / writer.VOCAB_FILE)).tokens
    assert tokens == list(table) and "Man's" in tokens
    for split, path in paths.items():
        samples = _json(path)
        examples = helpers.read_all(out, split, "vg", max_tokens=14)
        assert sorted(int(t["sentence_id"]) for _, t in examples) == list(range(len(samples)))
        for inputs, targets in examples:
            sample = samples[int(targets["sentence_id"])]
            np.testing.assert_array_equal(
                inputs[names.TEXT_IDS], original_ids(sample["tokens"], table, 14)
            )
            x, y, w, h = sample["bbox"]
            np.testing.assert_allclose(targets["gt_box"], [x, y, x + w, y + h])


def test_ref_json_errors_name_the_file(tmp_path, helpers):
    _, paths = write_ref_json(tmp_path, helpers)
    samples = _json(paths["val"])
    del samples[1]["bbox"]
    paths["val"].write_text(json.dumps(samples))
    with pytest.raises(ValueError, match=r"val.json: sample 1 lacks 'bbox'; expected \{tokens"):
        refcoco.ref_json_items([str(paths["val"])])
    mixed = _json(paths["train"]) + _json(paths["testA"])
    paths["train"].write_text(json.dumps(mixed))
    with pytest.raises(ValueError, match="train.json: holds samples of splits"):
        refcoco.ref_json_items([str(paths["train"])])


# ---------------------------------------------------------------- bad input files


def _vqa_inputs(root, helpers):
    feats, files = write_vqa_original(root, helpers)
    specs = [f"{s}:" + ":".join(files[s]) for s in ("train", "vg", "val", "test")]
    dirs = [str(feats / d) for d in FEATURE_DIRS.values()]
    return feats, files, vqa.parse_sources(specs), dirs


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _drop_image_w(path):
    with np.load(path) as z:
        kept = {k: z[k] for k in z.files if k != "image_w"}
    np.savez(path, **kept)


CORRUPT = {
    "truncated": (_truncate, "not a zip archive (truncated, or another format)"),
    "not_a_zip": (lambda p: p.write_text("not an npz"), "not a zip archive"),
    "missing_key": (_drop_image_w, "missing key 'image_w'"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_feature_file_is_named_leaves_no_shard_and_can_be_skipped(tmp_path, helpers, kind):
    feats, files, sources, dirs = _vqa_inputs(tmp_path, helpers)
    bad = feats / "train2014" / "COCO_train2014_000000000025.jpg.npz"
    corrupt, problem = CORRUPT[kind]
    corrupt(bad)
    out = tmp_path / "out"
    answers = vqa.answer_vocabulary(str(out), vqa.answer_files(sources), 9)
    splits = vqa.vqa_splits(sources, answers)
    with pytest.raises(region_features.BadFeatureFile) as err:
        common.write_dataset(get_task("vqa"), str(out), splits, dirs, progress=False)
    message = str(err.value)
    assert f"image 25 of split 'train': {bad}: {problem}" in message
    assert f"expected {region_features.EXPECTED}" in message and "--skip_bad" in message
    assert not [f for f in os.listdir(out) if ".tmp-" in f or f.endswith(".tfrecord")]

    manifest = common.write_dataset(
        get_task("vqa"), str(out), splits, dirs, progress=False, skip_bad=True
    )
    questions = [q for s in ("train", "vg") for q in _json(files[s][0])["questions"]]
    kept = [q for q in questions if q["image_id"] != 25]
    assert manifest["skipped_images"] == {"train": 1, "val": 0, "test": 0}
    lines = writer.summary_lines(manifest, "o")
    assert [line for line in lines if "skipped" in line] == [
        f"train: {len({q['image_id'] for q in kept})} images, {len(kept)} examples -> o "
        "(1 images skipped: corrupt region features)"
    ]
    assert 0 < len(kept) < len(questions)
    assert len(helpers.read_all(out, "train", "vqa")) == len(kept)
    table, _ = original_vqa_tables(
        *(files[s][0] for s in ("train", "val", "test", "vg")), files["train"][1], files["val"][1]
    )
    assert Vocabulary.load(str(out / writer.VOCAB_FILE)).tokens == list(table)


def test_skipped_itm_images_keep_caption_indices_contiguous(tmp_path, helpers):
    from mmnas_tf.data.feature_store import FeatureStore

    feats, specs, want = write_scan_captions(tmp_path, helpers)
    _truncate(feats / "5000.jpg.npz")  # imgid 0: the first five train captions
    splits = flickr.caption_items([f"train:{specs['train']}"], str(tmp_path / "dataset.json"))
    out = str(tmp_path / "out")
    common.write_dataset(get_task("itm"), out, splits, [str(feats)], progress=False, skip_bad=True)
    store = FeatureStore(out, "train", max_regions=4, max_tokens=20)
    assert (store.num_images, store.num_captions) == (2, 10)
    np.testing.assert_array_equal(store.caption_image, [0] * 5 + [1] * 5)
    got = store.images(np.array([0, 1]))[names.IMAGE_FEATURES].numpy()
    for row, imgid in enumerate((1, 4)):  # the store holds float16
        np.testing.assert_array_equal(got[row], want[imgid][0].astype(np.float16))


def test_truncated_json_is_named(tmp_path, helpers):
    _, files, sources, _ = _vqa_inputs(tmp_path, helpers)
    _truncate(pathlib.Path(files["val"][0]))
    with pytest.raises(
        ValueError,
        match=re.escape(files["val"][0])
        + ": not valid JSON .*expected an official VQA-v2 questions file",
    ):
        vqa.vqa_splits(sources, ["yes"])
    _truncate(pathlib.Path(files["train"][1]))
    with pytest.raises(ValueError, match=re.escape(files["train"][1]) + ": not valid JSON"):
        vqa.answer_vocabulary(str(tmp_path / "o"), vqa.answer_files(sources), 9)
    broken = _json(files["vg"][0])
    del broken["questions"][2]["question"]
    pathlib.Path(files["vg"][0]).write_text(json.dumps(broken))
    with pytest.raises(
        ValueError, match=r"vg_questions.json: question 2 lacks 'question'; expected \{image_id"
    ):
        vqa.vqa_splits([s for s in sources if s.label == "vg"], ["yes"])


@pytest.mark.slow
def test_convert_cli_reports_bad_inputs_without_traceback(tmp_path, helpers):
    feats, files, _, _ = _vqa_inputs(tmp_path, helpers)
    _truncate(feats / "val2014" / "COCO_val2014_000000000042.jpg.npz")
    bad = convert_vqa_as_documented(tmp_path, files, feats, tmp_path / "o")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert (
        "image 42 of split 'train'" in bad.stderr  # a VG question's image, read first
        and "COCO_val2014_000000000042.jpg.npz" in bad.stderr
    )
    skipped = convert_vqa_as_documented(tmp_path, files, feats, tmp_path / "o", "--skip_bad")
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert "val: 1 images" in skipped.stdout and "(1 images skipped" in skipped.stdout
    _truncate(pathlib.Path(files["test"][0]))
    bad = convert_vqa_as_documented(tmp_path, files, feats, tmp_path / "o2")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert f"{files['test'][0]}: not valid JSON" in bad.stderr


def test_truncated_refs_pickle_is_named(tmp_path):
    import pickle

    from mmnas_tf.data.converters.safe_pickle import load_plain_pickle

    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([{"ref_id": 1, "sentences": [{"raw": "man"}]}], protocol=2)[:20])
    with pytest.raises(pickle.UnpicklingError, match=r"refs\(unc\).p: truncated or not a pickle"):
        load_plain_pickle(str(path))
