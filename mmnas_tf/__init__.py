"""mmnas-tf: deep multimodal neural architecture search (MMnas) in TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
