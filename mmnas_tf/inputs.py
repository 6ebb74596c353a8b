"""Names of model inputs: the pipeline, the Keras models and the SavedModel contract share them."""

TEXT_IDS = "text_ids"
IMAGE_FEATURES = "image_features"
BOXES = "boxes"
IMAGE_SIZE = "image_size"
