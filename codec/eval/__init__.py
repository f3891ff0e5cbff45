"""Codec evaluation: reconstruction metrics, quality checks of a trained codec, and the eval-codec run."""

from plumbing.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "evaluate": ("METRICS", "CodecEvaluation", "codec_bitrate", "dataset_clips", "evaluate_codec", "file_clips"),
    "metrics": ("dominant_frequency", "spectral_peaks"),
    "quality": ("held_out_tones",),
})
