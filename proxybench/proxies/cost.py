"""Placeholder: filled in by the cost family work."""
