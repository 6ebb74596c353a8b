"""Converters from the formats users have (bottom-up .npz features, VQA-v2 JSON, Flickr30K
Karpathy JSON, RefCOCO pickles) to the TFRecord schema. Entry point: ``python -m mmnas_tf.convert``.
"""
