"""Signals of the inference app (a light module: apps connect to them in ``ready`` without loading the model code)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent with face_ids=[...] once a prediction chunk is done or has finally failed; uploads record their state.
prediction_chunk_finished = Signal()
