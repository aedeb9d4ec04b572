"""Placeholder: filled in by the synflow family work."""
