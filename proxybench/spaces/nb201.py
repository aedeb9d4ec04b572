"""NAS-Bench-201 space (being written)."""
