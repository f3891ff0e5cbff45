"""``semantilm generate`` writes ``metadata.csv`` (``file_name,caption``, the audiofolder convention) beside
its wavs, so ``semantilm eval-generation`` and ``datasets``' audiofolder read the captions back."""

import csv

import pytest

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


def rows(folder):
    with (folder / "metadata.csv").open(newline="") as f:
        return [(r["file_name"], r["caption"]) for r in csv.DictReader(f)]


def test_generate_lists_every_wav_with_its_caption(checkpoint, tmp_path, capsys):
    out = tmp_path / "gen"
    base = ["generate", "--checkpoint", str(checkpoint), "--codec", "tiny-random", "--seconds", "0.1", "--steps", "1",
            "--seed", "0", "--out", str(out)]
    assert main([*base, "--text", "a tone", "rain, then thunder", "--num-return-sequences", "2"]) == 0
    assert rows(out) == [("text_00_0.wav", "a tone"), ("text_00_1.wav", "a tone"),
                         ("text_01_0.wav", "rain, then thunder"), ("text_01_1.wav", "rain, then thunder")]
    assert all((out / name).is_file() for name, _ in rows(out))
    # Another run into the folder: its row is added; the same names again replace their rows, never twice.
    assert main([*base, "--text", "a bird"]) == 0
    assert rows(out)[-1] == ("text_00.wav", "a bird") and len(rows(out)) == 5
    assert main([*base, "--text", "a dog", "--overwrite"]) == 0
    assert rows(out)[-1] == ("text_00.wav", "a dog") and len(rows(out)) == 5
    from semantilm.eval.clip_sources import open_clips

    read = {c.name: c.caption for c in open_clips(out)}
    assert read["text_01_1.wav"] == "rain, then thunder" and read["text_00.wav"] == "a dog"


def test_no_metadata_without_wavs_and_a_foreign_metadata_file_stops_before_work(checkpoint, tmp_path, capsys):
    base = ["generate", "--checkpoint", str(checkpoint), "--codec", "tiny-random", "--seconds", "0.1", "--steps", "1"]
    assert main([*base, "--text", "a tone", "--tokens-only", "--out", str(tmp_path / "tokens")]) == 0
    assert not (tmp_path / "tokens" / "metadata.csv").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "metadata.csv").write_text("path,label\nx.wav,dog\n")
    capsys.readouterr()
    assert main([*base, "--text", "a tone", "--out", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert f"'{foreign / 'metadata.csv'}' has no file_name column" in err
    assert sorted(p.name for p in foreign.iterdir()) == ["metadata.csv"]  # nothing generated, nothing changed
