"""Token vocabularies: PAD=0, UNK=1, CLS=2, then words in first-appearance order (the original's)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from mmnas_tf.files import replaced_when_written

PAD, UNK, CLS = "PAD", "UNK", "CLS"
RESERVED_TOKENS = (PAD, UNK, CLS)


class Vocabulary:
    """An ordered token list; line i of its file is the token with id i.

    Args:
      tokens: the tokens in id order; must start with PAD, UNK, CLS.
    """

    def __init__(self, tokens: Iterable[str]):
        self.tokens = list(tokens)
        if tuple(self.tokens[:3]) != RESERVED_TOKENS:
            raise ValueError(
                f"a token vocabulary must start with {RESERVED_TOKENS}, got {self.tokens[:3]}"
            )
        self._ids = {t: i for i, t in enumerate(self.tokens)}
        if len(self._ids) != len(self.tokens):
            raise ValueError("duplicate tokens in vocabulary")

    @classmethod
    def build(cls, token_lists: Iterable[list[str]]) -> Vocabulary:
        tokens = list(RESERVED_TOKENS)
        seen = set(tokens)
        for toks in token_lists:
            for t in toks:
                if t not in seen:
                    seen.add(t)
                    tokens.append(t)
        return cls(tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self._ids.get(token, 1)

    def save(self, path: str) -> None:
        for t in self.tokens:
            if "\n" in t or t != t.strip():
                raise ValueError(f"token {t!r} cannot be stored one per line")
        with replaced_when_written(path) as f:
            f.write("\n".join(self.tokens) + "\n")

    @classmethod
    def load(cls, path: str) -> Vocabulary:
        if not os.path.exists(path):
            raise FileNotFoundError(f"vocabulary file not found: {path}")
        with open(path, encoding="utf-8") as f:
            return cls(line.rstrip("\n") for line in f if line.rstrip("\n"))
