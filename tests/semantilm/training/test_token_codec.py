"""A recipe trained on tokens takes, or checks, the codec the token folder records: tokens of another
codec are refused before any work, naming both codecs and the override that fixes it."""

import json

import pytest

from plumbing.config_file import ConfigError
from semantilm.models.hub import load_codec_reference
from semantilm.training.recipe_config import CodecSection
from semantilm.training.recipes import run_recipe
from semantilm.training.token_codec import resolve_recipe_codec
from tests.semantilm.training.test_recipes import tiny_config

TINY = {"variant": "tiny", "frame_rate": 25.0, "sample_rate": 16000, "semantic_vocab_size": 64,
        "acoustic_vocab_size": 256}
OFFICIAL_50 = {"variant": "official-r50-v16384", "frame_rate": 25.0, "sample_rate": 16000,
               "semantic_vocab_size": 8192, "acoustic_vocab_size": 8192}
TINY_R100 = {"variant": "tiny-r100", "frame_rate": 50.0, "sample_rate": 16000, "semantic_vocab_size": 64,
             "acoustic_vocab_size": 64}


def folder(tmp_path, name, codec, record="semantilm_tokens.json"):
    path = tmp_path / name
    path.mkdir()
    (path / record).write_text(json.dumps({"codec": codec}))
    return str(path)


@pytest.fixture(scope="module")
def tiny_tokens(tmp_path_factory):
    """A token folder of `semantilm tokenize --codec tiny` (3 captioned synthetic clips)."""
    from codec.data.synthetic import SyntheticSoundConfig
    from semantilm.codec_api import load_codec
    from semantilm.data.corpus_tokens import tokenize_corpus
    from semantilm.data.tokenize_settings import TokenizeSettings

    out = tmp_path_factory.mktemp("tokens") / "tiny"
    settings = TokenizeSettings(caption_column="caption", num_workers=0,
                                synthetic=SyntheticSoundConfig(num_examples=3, seconds=0.3))
    tokenize_corpus("synthetic", load_codec("tiny", decoder=False), out, settings=settings, progress=False,
                    codec_source={"name": "tiny", "token_rate": 100, "vocab": 16384})
    return out


def test_a_token_folder_of_another_codec_is_refused_before_any_work(tmp_path, tiny_tokens):
    out = tmp_path / "run"
    config = tiny_config("text_to_audio", out, f"data.dataset={tiny_tokens}", "train.max_steps=1",
                         "train.save_steps=1")
    assert config.codec.name == "tiny-random"  # what the shipped tiny recipe names
    with pytest.raises(ConfigError, match=r"holds tokens of the codec 'tiny' \(variant 'tiny'.*recipe's codec is "
                                          r"'tiny-random' at 100 tokens/s \(variant 'tiny-r100'\).*codec\.name=tiny"):
        run_recipe(config)
    assert not out.exists()  # refused before anything was written

    # Leaving codec.name unset takes the folder's codec; the checkpoint names the codec that decodes it.
    result = run_recipe(tiny_config("text_to_audio", out, f"data.dataset={tiny_tokens}", "codec.name=null",
                                    "train.max_steps=1", "train.save_steps=1"))
    assert result.global_step == 1
    for where in (out, out / "checkpoint-1"):
        reference = load_codec_reference(where)
        assert (reference.name, reference.variant) == ("tiny", "tiny")
    assert reference.load(decoder=False).variant == "tiny"  # what generate loads


def test_unset_codec_keys_come_from_the_token_folder(tmp_path):
    tiny = folder(tmp_path, "tiny", {**TINY, "source": {"name": "tiny", "token_rate": 100, "vocab": 16384}})
    assert resolve_recipe_codec(CodecSection(), tiny).name == "tiny"
    assert resolve_recipe_codec(CodecSection(name="tiny", token_rate=100), tiny).name == "tiny"  # rate ignored by tiny

    official = folder(tmp_path, "official", {**OFFICIAL_50, "source": {"name": "haoheliu/SemantiCodec",
                                                                       "token_rate": 50, "vocab": 16384}})
    for section in (CodecSection(), CodecSection(name="haoheliu/SemantiCodec")):
        resolved = resolve_recipe_codec(section, official)
        assert (resolved.name, resolved.token_rate, resolved.vocab) == ("haoheliu/SemantiCodec", 50, 16384)
    with pytest.raises(ConfigError, match=r"at 100 tokens/s \(variant 'official-r100-v16384'\).*"
                                          r"codec\.token_rate=50"):
        resolve_recipe_codec(CodecSection(name="haoheliu/SemantiCodec", token_rate=100), official)

    # No token folder: the official defaults, as before.
    default = resolve_recipe_codec(CodecSection(), "synthetic")
    assert (default.name, default.token_rate, default.vocab) == ("haoheliu/SemantiCodec", 100, 16384)


def test_records_without_a_source_and_codecs_of_one_variant(tmp_path):
    # A cache of the former encode_audio_dataset records the codec's facts only: the codec is found by its variant.
    cache = folder(tmp_path, "cache", TINY, record="semantilm_token_cache.json")
    with pytest.raises(ConfigError, match=r"codec\.name=tiny codec\.token_rate=50"):
        resolve_recipe_codec(CodecSection(name="tiny-random", token_rate=100), cache)
    assert resolve_recipe_codec(CodecSection(), cache).name == "tiny"

    # A codec trained from tiny-random's configuration has its variant but other weights.
    trained = folder(tmp_path, "trained", {**TINY_R100, "source": {"name": str(tmp_path / "my_codec"),
                                                                   "token_rate": 100, "vocab": 16384}})
    with pytest.raises(ConfigError, match=r"recipe's codec is 'tiny-random'"):
        resolve_recipe_codec(CodecSection(name="tiny-random", token_rate=100), trained)
    with pytest.raises(ConfigError, match=r"records its codec as .*my_codec', which is not a folder here"):
        resolve_recipe_codec(CodecSection(), trained)

    unknown = folder(tmp_path, "unknown", {**TINY_R100, "variant": "custom"})
    with pytest.raises(ConfigError, match="does not record where its codec .* comes from; set codec.name"):
        resolve_recipe_codec(CodecSection(), unknown)


def test_an_eval_token_folder_of_another_codec_is_refused(tmp_path, tiny_tokens):
    out = tmp_path / "run"
    config = tiny_config("text_to_audio", out, f"data.eval_dataset={tiny_tokens}")
    with pytest.raises(ConfigError, match=r"data\.eval_dataset=.* holds tokens of the codec 'tiny'"):
        run_recipe(config)
    assert not out.exists()


def test_a_recipe_trains_on_a_cache_of_the_former_encode_audio_dataset(tmp_path, tiny_tokens):
    """Such a folder (semantilm_token_cache.json + shard-K save_to_disk folders, no manifest) is read as
    it is, its codec taken from its record, and data.max_examples applies."""
    from semantilm.data.token_dataset import load_token_dataset

    rows = load_token_dataset(tiny_tokens).select_columns(["semantic_ids", "acoustic_ids", "num_frames", "caption"])
    cache = tmp_path / "cache"
    rows.select(range(2)).save_to_disk(str(cache / "shard-00000"))
    rows.select(range(2, 3)).save_to_disk(str(cache / "shard-00001"))
    codec = json.loads((tiny_tokens / "semantilm_tokens.json").read_text())["codec"]
    record = {"codec": {k: v for k, v in codec.items() if k not in ("config", "source")}, "num_rows": 3,
              "shard_size": 2, "audio_column": "audio", "caption_column": "caption"}
    (cache / "semantilm_token_cache.json").write_text(json.dumps(record))
    result = run_recipe(tiny_config("text_to_audio", tmp_path / "run", f"data.dataset={cache}", "codec.name=null",
                                    "data.max_examples=2", "train.max_steps=1", "train.save_steps=1"))
    assert result.global_step == 1 and result.num_examples == 2
    assert load_codec_reference(tmp_path / "run").variant == "tiny"
