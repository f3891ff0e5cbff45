"""LM training: the Trainer glue, the recipe configs and the recipes run under accelerate."""
