"""Constrained, guided generation of audio tokens, and their decoding to waveforms.

``settings``        ``SamplingSettings``: how the LM samples and how much (every entry point takes it).
``lm_speed``        ``LMSpeed``: KV cache, ``torch.compile``, packed CPU linears; ``StepRunner`` runs the steps.
``prompts``         prompts as LM ids: text-to-audio and continuation, checked, sized and left-padded.
``processors``      the logits processor that keeps every audio span in the token pattern.
``loop``            the decoding loop: one forward per step over conditional (+ unconditional) rows.
``beam_search``     beam search through ``model.generate``, the one path outside the loop.
``token_generation`` ``generate_tokens``, ``text_to_tokens``, ``continue_tokens``: LM ids -> codec tokens.
``generate``        ``generate_audio`` / ``continue_audio``: the LM, then one decode of every clip.
``stream``          ``generate_audio_stream`` / ``continue_audio_stream``: audio chunks while the LM writes.
``lm_thread``       token generation in a background thread, watched step by step (for streaming).
``outputs``         ``AudioGenerationOutput``, what the entry points return.
"""
