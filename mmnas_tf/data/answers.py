"""VQA answers: the official normalisation, the answer vocabulary and soft scores.

``normalize_answer`` reproduces the official VQA evaluation (``vqaEval.py``: ``processPunctuation``
then ``processDigitArticle``) and the original code's ``prep_ans`` (the same plus deleting commas), so
the converters and the evaluation agree on what counts as the same answer.
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Iterable

from mmnas_tf.files import replaced_when_written

# The contraction table of the official evaluation: apostrophe-less spellings -> canonical form.
_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've",
    "hasnt": "hasn't", "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've",
    "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've",
    "I'dve": "I'd've", "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've",
    "it'dve": "it'd've", "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've",
    "whens": "when's", "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd",
    "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've",
    "wouldnt": "wouldn't", "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all",
    "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've",
    "youll": "you'll", "youre": "you're", "youve": "you've",
}  # fmt: skip
_DIGITS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = ("a", "an", "the")
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
_OFFICIAL_PERIOD_COUNT = int(re.UNICODE)
_PUNCT = [
    ";",
    "/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
]

MIN_ANSWER_COUNT = 9
"""The original keeps answers seen more than 8 times over the train and val annotations (3,129)."""


def process_punctuation(text: str) -> str:
    """The official ``processPunctuation``: delete or space out punctuation, strip non-decimal dots."""
    out = text
    for p in _PUNCT:
        if (p + " " in text or " " + p in text) or _COMMA_STRIP.search(text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    # The official call passes re.UNICODE (= 32) where ``sub`` takes its count: at most 32 dots go.
    return _PERIOD_STRIP.sub("", out, count=_OFFICIAL_PERIOD_COUNT)


def process_digit_article(text: str) -> str:
    """The official ``processDigitArticle``: number words -> digits, drop articles, fix contractions."""
    words = [_DIGITS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in _ARTICLES]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(answer: str) -> str:
    """Official VQA normalisation + the original's comma deletion (``prep_ans``)."""
    answer = answer.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(answer)).replace(",", "")


def soft_score(count: int) -> float:
    """Soft target of an answer given by ``count`` of the 10 annotators (original ``get_score``)."""
    return (0.0, 0.3, 0.6, 0.9)[count] if count < 4 else 1.0


def answer_scores(answers: Iterable[str], answer_to_id: dict[str, int]) -> dict[int, float]:
    """{answer id: soft score} for one question's raw annotator answers; unknown answers drop out."""
    counts = collections.Counter(normalize_answer(a) for a in answers)
    return {answer_to_id[a]: soft_score(c) for a, c in counts.items() if a in answer_to_id}


def build_answer_vocab(answers: Iterable[str], min_count: int = MIN_ANSWER_COUNT) -> list[str]:
    """Normalised answers seen at least ``min_count`` times, in first-appearance order."""
    counts = collections.Counter(normalize_answer(a) for a in answers)
    return [a for a in counts if counts[a] >= min_count]  # Counter keeps insertion order


def save_answers(answers: list[str], path: str) -> None:
    """Writes one answer per line (line i = answer id i), atomically."""
    for a in answers:
        if "\n" in a or not a:
            raise ValueError(f"answer {a!r} cannot be stored one per line")
    with replaced_when_written(path) as f:
        f.write("\n".join(answers) + "\n")


def load_answers(path: str) -> list[str]:
    """Reads an ``answers.txt`` written by :func:`save_answers`."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"answer vocabulary not found: {path}")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]
