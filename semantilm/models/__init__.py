"""Causal LMs over the audio vocabulary: build, extend a pretrained LM, LoRA, save, load, push."""
