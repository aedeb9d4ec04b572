"""Placeholder: filled in by the activation family work."""
