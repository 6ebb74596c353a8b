"""Test-only code: the shared layer-test harness, small contract-shaped SavedModels (stand-ins) and
the TF1 session loader that runs a SavedModel as tensorflow_model_server does."""
