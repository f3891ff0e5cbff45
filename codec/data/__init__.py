"""Audio sources for training and evaluation: corpora (folders, datasets) and the synthetic sound set."""
