"""Checkpoint loading: official key conversion, our safetensors format, unsafe and broken files."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from codec import SemantiCodec, SemantiCodecConfig
from codec.checkpoints import load_centroids, load_torch_state_dict, official_paths, resolve_official_files
from codec.convert.state_dict import CheckpointMismatchError


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(1)
    return SemantiCodec(SemantiCodecConfig.tiny())


def official_state_of(model: SemantiCodec) -> tuple[dict, np.ndarray]:
    """Our weights under the official key names, plus the official-only extras."""
    out = {}
    for key, value in model.state_dict().items():
        if key == "semantic.centroids":
            continue
        if key == "acoustic.codebook":
            out["quantizer._codebook.embed"] = value[None].clone()
            continue
        key = key.replace("audiomae.patch_embed.", "audiomae.model.patch_embed.proj.")
        key = key.replace("audiomae.", "audiomae.model.", 1) if not key.startswith("audiomae.model.") else key
        key = key.replace("acoustic.lstm.", "encoder.").replace("acoustic.proj.", "encoder_output_linear.")
        out[key] = value.clone()
    d = model.config.mae_dim
    out["audiomae.model.mask_token"] = torch.zeros(1, 1, 16)
    out["audiomae.model.decoder_pos_embed"] = torch.zeros(1, 513, 16)
    out["audiomae.model.decoder_blocks.0.norm1.weight"] = torch.ones(16)
    out["audiomae.model.decoder_embed.weight"] = torch.zeros(16, d)
    out["quantizer._codebook.initted"] = torch.ones(1)
    out["quantizer._codebook.cluster_size"] = torch.ones(1, model.acoustic_vocab_size)
    out["quantizer._codebook.embed_avg"] = out["quantizer._codebook.embed"].clone()
    return out, model.semantic.centroids.numpy().copy()


def test_from_official_reproduces_the_model(tiny):
    state, centroids = official_state_of(tiny)
    loaded = SemantiCodec.from_official(state, None, centroids, config=tiny.config)
    wave = 0.3 * torch.randn(30000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded.encode(wave).tokens, tiny.encode(wave).tokens)


def test_semantic_vocabulary_comes_from_the_table(tiny):
    state, centroids = official_state_of(tiny)
    bigger = np.concatenate([centroids, centroids + 1.0])
    loaded = SemantiCodec.from_official(state, None, bigger, config=tiny.config)
    assert loaded.semantic_vocab_size == 2 * centroids.shape[0]
    assert loaded.config.semantic_codebook_size == 2 * centroids.shape[0]


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda s: s.pop("encoder.weight_hh_l0"), "missing keys .*acoustic.lstm.weight_hh_l0"),
        (lambda s: s.__setitem__("encoder.weight_ih_l7", torch.zeros(1)), "unexpected keys .*acoustic.lstm.weight_ih_l7"),
        (lambda s: s.__setitem__("something.else", torch.zeros(1)), "does not know: \\['something.else'\\]"),
        (lambda s: s.__setitem__("encoder_output_linear.weight", torch.zeros(3, 3)), "shape mismatches .*acoustic.proj"),
        (lambda s: s.__setitem__("quantizer._codebook.embed", torch.zeros(2, 4, 4)), "one VQ head"),
    ],
)
def test_mismatched_official_keys_are_listed(tiny, edit, match):
    state, centroids = official_state_of(tiny)
    edit(state)
    with pytest.raises(CheckpointMismatchError, match=match):
        SemantiCodec.from_official(state, None, centroids, config=tiny.config)


def test_wrong_centroid_width(tiny):
    state, centroids = official_state_of(tiny)
    with pytest.raises(CheckpointMismatchError, match="centroid table must be"):
        SemantiCodec.from_official(state, None, centroids[:, :5], config=tiny.config)


def test_save_and_load_pretrained(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "codec")
    assert sorted(p.name for p in (tmp_path / "codec").iterdir()) == ["config.json", "model.safetensors"]
    loaded = SemantiCodec.from_pretrained(tmp_path / "codec")
    assert loaded.config == tiny.config
    for (k, a), (_, b) in zip(sorted(tiny.state_dict().items()), sorted(loaded.state_dict().items())):
        assert torch.equal(a, b), k


def test_loading_an_encoder_stays_off_the_tracing_stack(tiny, tmp_path):
    """Loading builds on the meta device; drawing random placeholders there would import torch's
    compiler stack, seconds at the start of every ``semantilm tokenize``."""
    tiny.save_pretrained(tmp_path / "codec")
    script = (
        "import sys; from codec import SemantiCodec; "
        f"m = SemantiCodec.from_pretrained({str(tmp_path / 'codec')!r}); "
        "assert not m.semantic.centroids.is_meta and not m.acoustic.codebook.is_meta; "
        "print(sorted(n for n in ('torch._dynamo', 'sympy') if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_truncated_safetensors(tiny, tmp_path):
    tiny.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated"):
        SemantiCodec.from_pretrained(tmp_path)


def test_official_layout_from_a_local_folder(tiny, tmp_path):
    """A local copy of the hub repository (as the official code lays it out) loads offline."""
    config = SemantiCodecConfig.official(100, 16384)
    paths = official_paths(100, 16384)
    state, centroids = official_state_of(tiny)
    for rel in paths.values():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, tmp_path / paths["encoder"])
    np.save(tmp_path / paths["centroids"], centroids)
    files = resolve_official_files(tmp_path, token_rate=100, semantic_vocab_size=16384, with_decoder=False)
    assert files.encoder.name == "encoder.ckpt" and files.decoder is None
    assert paths["centroids"] == config.official_centroid_file()
    # A tiny model saved under the official names does not fit the official sizes: a clear error.
    with pytest.raises(CheckpointMismatchError, match="centroid table must be \\[V, 768\\]"):
        SemantiCodec.from_pretrained(tmp_path, load_decoder=False)
    with pytest.raises(FileNotFoundError, match="lacks"):
        resolve_official_files(tmp_path, token_rate=100, semantic_vocab_size=16384, with_decoder=True)


def test_hub_download_failure_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="could not get"):
        resolve_official_files("haoheliu/SemantiCodec", token_rate=100, semantic_vocab_size=16384,
                               cache_dir=tmp_path, local_files_only=True)


@pytest.mark.parametrize("name", ["outputs/no_such_run/codec", "./no_such_codec", "~/no_such_codecs/tiny"])
def test_a_missing_folder_is_not_taken_for_a_hub_repository(name):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        SemantiCodec.from_pretrained(name, load_decoder=False)


class _Evil:
    def __reduce__(self):
        return (print, ("this would run code",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"weight": torch.zeros(1), "payload": _Evil()}, path)
    with pytest.raises(ValueError, match="refusing to load"):
        load_torch_state_dict(path)


def test_truncated_and_foreign_checkpoints(tmp_path):
    path = tmp_path / "enc.ckpt"
    torch.save({"a": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated"):
        load_torch_state_dict(path)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="not a state dict"):
        load_torch_state_dict(path)
    with pytest.raises(FileNotFoundError):
        load_torch_state_dict(tmp_path / "none.ckpt")


def test_centroid_file_errors(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((4, 3), dtype=np.float32))
    assert load_centroids(tmp_path / "ok.npy").shape == (4, 3)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="could not read centroid table"):
        load_centroids(tmp_path / "obj.npy")
    np.save(tmp_path / "flat.npy", np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError, match="2-D float array"):
        load_centroids(tmp_path / "flat.npy")
