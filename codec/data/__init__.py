"""Audio sources for training and evaluation: corpora (folders, datasets) and the synthetic sound set."""

from plumbing.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "corpus": ("AUDIO_LIKE_SUFFIXES", "AUDIO_SUFFIXES", "SYNTHETIC", "audio_like_files", "decode_audio_cell",
               "load_corpus", "undecoded_audio"),
    "synthetic": ("NOTE_NAMES", "SyntheticSoundConfig", "note_frequency"),
})
