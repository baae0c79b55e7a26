"""The data classes, from least to most strict (the vocabulary of the data policy)."""

from __future__ import annotations

CLASSES = ("public", "internal", "confidential", "restricted")
RANK = {c: i for i, c in enumerate(CLASSES)}
STRICTEST = CLASSES[-1]  # what cannot be scanned, and what a detector failure gives
