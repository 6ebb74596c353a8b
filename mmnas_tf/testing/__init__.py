"""Test helpers shared by the project's tests (and usable by users' extensions)."""
