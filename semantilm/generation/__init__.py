"""Constrained, guided generation of audio tokens, and their decoding to waveforms.

``processors``  logits processors: the token-pattern constraint and classifier-free guidance.
``prompts``     text-to-audio and continuation prompts as LM ids.
``generate``    ``generate_tokens`` and the ``generate_audio`` / ``continue_audio`` entry points.
``outputs``     ``AudioGenerationOutput``, what the entry points return.
"""
