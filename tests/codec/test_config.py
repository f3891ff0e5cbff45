"""Config presets, derived sizes and serialisation."""

import pytest

from codec import SemantiCodecConfig


@pytest.mark.parametrize(
    "rate,K,P,D,ctx,layers", [(100, 1, 512, 768, 1728, 4), (50, 2, 256, 1536, 3264, 3), (25, 4, 128, 3072, 6336, 2)]
)
def test_official_sizes(rate, K, P, D, ctx, layers):
    c = SemantiCodecConfig.official(rate, 16384)
    assert (c.stack_factor, c.tokens_per_segment, c.feature_dim, c.context_dim, c.lstm_layers) == (K, P, D, ctx, layers)
    assert c.frame_rate == rate / 2
    assert c.window_overlap_tokens == int(P * 0.0625)
    assert c.segment_samples == 163840


def test_bitrate_matches_paper():
    # 100 tokens/s with a 16k vocabulary: 50 frames/s x (14 + 13) bits = 1.35 kbps.
    assert SemantiCodecConfig.official(100, 16384).bitrate == pytest.approx(1350)
    assert SemantiCodecConfig.official(25, 4096).bitrate == pytest.approx(12.5 * 25)
    assert SemantiCodecConfig.official(100, 32768).bitrate == pytest.approx(1400)


@pytest.mark.parametrize("rate,expected_12s,expected_3s", [(100, 600, 152), (50, 300, 76), (25, 150, 38)])
def test_official_token_counts(rate, expected_12s, expected_3s):
    c = SemantiCodecConfig.official(rate)
    assert c.num_frames(192000) == expected_12s  # recorded enc_tokens shapes
    assert c.num_frames(48000) == expected_3s
    assert c.num_samples(c.num_frames(192000)) == 192000


def test_json_round_trip(tmp_path):
    c = SemantiCodecConfig.tiny(50)
    c.to_json_file(tmp_path / "c.json")
    assert SemantiCodecConfig.from_json_file(tmp_path / "c.json") == c


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="token_rate=30"):
        SemantiCodecConfig(token_rate=30)
    with pytest.raises(ValueError, match="semantic_vocab_size=1000"):
        SemantiCodecConfig.official(100, 1000)
    with pytest.raises(ValueError, match="unknown SemantiCodecConfig keys \\['bogus'\\]"):
        SemantiCodecConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="mae_heads"):
        SemantiCodecConfig(mae_dim=100, mae_heads=3)


def test_official_file_names():
    c = SemantiCodecConfig.official(50, 8192)
    assert c.official_centroid_file() == "codebook_idx/combine_256_audioset_dominate/codebook_4096_0.npy"
    assert c.official_checkpoint_folder() == "semanticodec_tokenrate_50"
