"""``semantilm generate --num-return-sequences`` on a tiny LM saved beside the offline random codec."""

import pytest

from codec.token_file import load_tokens
from semantilm.cli.main import main
from semantilm.codec_api import load_codec
from semantilm.models.lm import LMConfig, build_lm, save_lm
from semantilm.tokens.layout import AudioTokenLayout
from semantilm.tokens.tokenizer import AudioTextTokenizer

TINY = LMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                max_position_embeddings=128)


@pytest.fixture
def checkpoint(tmp_path, sp_model_path):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=sp_model_path)
    codec = load_codec("tiny-random", 100, 16384, "cpu", None, decoder=False)
    layout = AudioTokenLayout.for_codec(codec, text_vocab_size=sp.get_piece_size())
    return save_lm(build_lm(layout, TINY, seed=0), layout, tmp_path / "lm", AudioTextTokenizer(sp, layout))


def test_num_return_sequences_writes_one_file_per_take(checkpoint, tmp_path, capsys):
    out = tmp_path / "gen"
    base = ["generate", "--checkpoint", str(checkpoint), "--codec", "tiny-random", "--seconds", "0.1",
            "--out", str(out), "--tokens-only", "--seed", "0"]
    assert main([*base, "--text", "a tone", "", "--num-return-sequences", "2"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"text_{i:02d}_{k}.tokens.npz" for i in (0, 1) for k in (0, 1)]
    records = [load_tokens(out / n) for n in names]
    assert records[1].source == "generated from text: a tone" and records[2].source == "generated from text: "
    assert all(1 <= r.tokens.shape[0] <= 5 for r in records)
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it before the LM loads
        main([*base, "--text", "a tone", "--num-return-sequences", "0"])
    assert exit_info.value.code == 2
    assert "argument --num-return-sequences: must be an integer >= 1, got '0'" in capsys.readouterr().err
