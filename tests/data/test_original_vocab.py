"""The converters rebuild the original's token and answer tables (same strings, same ids) from the
files the original reads, in the order it reads them.

The original builds both tables at every run and stores neither; its loaders cannot run here (they
import a spaCy model at import), so its rule is ported below as small reference functions and the
converters are checked against them on fixtures written in the users' formats.
"""

import json
import os
import random
import re
import subprocess
import sys

import numpy as np
import pytest

from mmnas_tf import inputs as names
from mmnas_tf.data import answers as answer_lib
from mmnas_tf.data import writer
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
                annotations.append({
                    "question_id": qid, "image_id": image, "answer_type": "other",
                    "multiple_choice_answer": answers[k],
                    "answers": [{"answer": answers[k], "answer_id": j + 1} for j in range(10)],
                })  # fmt: skip
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
    cmd = [
        sys.executable, "-m", "mmnas_tf.convert", "--task=vqa", f"--out_dir={out}",
        f"--features={feats / 'train2014'},{feats / 'val2014'},{feats / 'test2015'}",
        "--vqa=train:" + ":".join(files["train"]), "--vqa=vg:" + ":".join(files["vg"]),
        "--vqa=val:" + ":".join(files["val"]), "--vqa=test:" + ":".join(files["test"]),
        "--noprogress", *extra,
    ]  # fmt: skip
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
    table, answers = original_vqa_tables(*files["train"][:1], files["val"][0], files["test"][0],
                                         files["vg"][0], files["train"][1], files["val"][1])  # fmt: skip
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
    with_vg = [answer_lib.normalize_answer(a["multiple_choice_answer"])
               for s in ("train", "vg", "val") for a in _json(files[s][1])["annotations"]]  # fmt: skip
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


@pytest.mark.slow
def test_imported_checkpoint_answers_with_the_original_strings(vqa_converted, reference_by_task):
    """The original's small VQA checkpoint, imported with the rebuilt tables: predict_text on raw
    questions gives the reference logits and names the answers through answers.txt."""
    import tensorflow as tf

    out, _, table, answers = vqa_converted
    ref = reference_by_task["vqa"]
    export = out.parent / "export"
    cmd = [sys.executable, "-m", "mmnas_tf.import_official", "--task=vqa",
           f"--checkpoint={ref.checkpoint}", f"--arch={ref.arch}", f"--export_dir={export}",
           f"--vocab={out / 'vocab.txt'}", f"--answer_vocab={out / 'answers.txt'}",
           "--max_tokens=14", "--max_regions=10"]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # the questions whose ids (under the original's table) are the reference inputs
    words = {i: w for w, i in table.items()}
    texts = [" ".join(words[int(i)] for i in row if i) for row in ref.io["ques_ix"]]
    for text, row in zip(texts, ref.io["ques_ix"]):
        np.testing.assert_array_equal(original_ids(original_words(text), table, 14), row)
    sig = tf.saved_model.load(str(export / "1")).signatures["predict_text"]
    images = {"image_features": "frcn_feat", "boxes": "boxes_xyxy", "image_size": "image_hw"}
    accepted = sig.structured_input_signature[1]
    got = sig(
        text=tf.constant(texts),
        **{k: tf.constant(ref.io[v]) for k, v in images.items() if k in accepted},
    )
    np.testing.assert_allclose(got["logits"].numpy(), ref.io["logits"], atol=1e-4)
    order = np.argsort(-ref.io["logits"], axis=1)[:, : got["top_answers"].shape[1]]
    want = [[answers[i] for i in row] for row in order]
    assert got["top_answers"].numpy().astype(str).tolist() == want
    # a token table of another size than the checkpoint's embedding is refused
    short = out.parent / "short_vocab.txt"
    short.write_text("\n".join(list(table)[:-1]) + "\n")
    bad_cmd = [c for c in cmd if not c.startswith("--vocab=")] + [f"--vocab={short}", "--version=2"]
    bad = subprocess.run(bad_cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0
    assert "has 49 tokens but the checkpoint's embedding has 50 rows" in bad.stderr
