"""LM evaluation (loss by token kind) and prompt adherence of generated audio."""
