"""Codec tokens as LM ids: the vocabulary layout, the token patterns and the text+audio tokenizer."""
