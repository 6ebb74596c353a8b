"""Sentence tokenizer and vocabularies, shared by converters, training, export and serving."""

from mmnas_tf.text.tokenizer import TFTokenizer, encode, tokenize
from mmnas_tf.text.vocabulary import Vocabulary

__all__ = ["TFTokenizer", "Vocabulary", "encode", "tokenize"]
