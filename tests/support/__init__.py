"""Test-only code: the shared layer-test harness and small contract-shaped SavedModels."""
