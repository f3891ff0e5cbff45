"""Corpora -> codec token datasets -> LM batches."""
