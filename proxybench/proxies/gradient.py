"""Placeholder: filled in by the gradient family work."""
