"""Training utilities of the codec (semantic codebook fitting; encoder/decoder losses)."""
