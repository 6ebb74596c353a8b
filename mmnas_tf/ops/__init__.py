"""Tensor functions shared by losses, metrics and serving (box maths)."""
