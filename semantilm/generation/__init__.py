"""Constrained, guided generation of audio tokens, and their decoding to waveforms."""
