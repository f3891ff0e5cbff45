"""semantilm: language modelling on interleaved SemantiCodec token streams."""

__version__ = "0.1.0"
