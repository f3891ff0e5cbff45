"""Codec evaluation: reconstruction metrics, quality checks of a trained codec, and the eval-codec run."""
