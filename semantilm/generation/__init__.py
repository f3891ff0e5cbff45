"""Constrained, guided generation of audio tokens, and their decoding to waveforms.

``processors``  logits processors: the token-pattern constraint and classifier-free guidance.
``prompts``     text-to-audio and continuation prompts as LM ids.
``token_generation``  ``generate_tokens``, ``text_to_tokens``, ``continue_tokens``: LM ids -> codec tokens.
``generate``    the ``generate_audio`` / ``continue_audio`` entry points (and the token-level ones).
``stream``      ``generate_audio_stream`` / ``continue_audio_stream``: audio chunks while the LM writes.
``lm_thread``   token generation in a background thread, watched step by step (for streaming).
``outputs``     ``AudioGenerationOutput``, what the entry points return.
"""
