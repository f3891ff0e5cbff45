"""Deterministic stand-in weights of the official SemantiCodec, for parity tests.

The fixtures in ``../shared/parity/`` were recorded from the official implementation with
every tensor filled by ``fill.py`` under its official name (rules in ``layout_*.json``).
These helpers rebuild the same official state dicts so that our converter and model can be
checked end to end against the recordings.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

SHARED_PARITY = Path(__file__).resolve().parents[1].parent / "shared" / "parity"
_CHUNK = 1 << 16  # values per piece of a large filled tensor: small enough for NumPy's temporaries to stay in cache
CONFIGS = {"r100_v16384": (100, 16384), "r50_v8192": (50, 8192), "r25_v4096": (25, 4096)}


def parity_dir() -> Path:
    """The shared fixture folder; a missing one is an error (CI has it beside the clone)."""
    if not (SHARED_PARITY / "fill.py").exists():
        raise FileNotFoundError(
            f"parity fixtures not found at {SHARED_PARITY}; the repository must have ../shared/parity beside it."
        )
    return SHARED_PARITY


@lru_cache(maxsize=1)
def fill_module():
    spec = importlib.util.spec_from_file_location("parity_fill", parity_dir() / "fill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def layout(name: str) -> dict:
    return json.loads((parity_dir() / f"layout_{name}.json").read_text())


def recorded(name: str) -> np.lib.npyio.NpzFile:
    return np.load(parity_dir() / f"semanticodec_{name}.npz")


def filled_tensor(name: str, spec: dict, *, computed: dict[str, np.ndarray] | None = None) -> torch.Tensor:
    """One tensor by its layout rule, written chunk by chunk into float32 (no float64 copy)."""
    shape = tuple(spec["shape"])
    rule = spec["rule"]
    if rule == "fixed":
        return torch.full(shape, float(spec["value"]), dtype=torch.float32)
    if rule == "computed":
        if computed is None or name not in computed:
            raise KeyError(f"no computed value for {name}")
        return torch.from_numpy(np.asarray(computed[name], dtype=np.float32)).reshape(shape)
    if rule != "fill":
        raise ValueError(f"unknown fill rule {rule!r} for {name}")
    out = torch.empty(math.prod(shape), dtype=torch.float32)
    flat = out.numpy()
    if flat.size <= _CHUNK:
        for start, values in fill_module().fill_chunks(name, shape, seed=spec["seed"], scale=spec["scale"]):
            flat[start : start + values.size] = values
        return out.reshape(shape)
    # Large tensors (the LSTMs hold up to 1.5 B values) are filled piece by piece on every core:
    # NumPy's integer ufuncs release the GIL. Each piece is computed as fill.py's fill_chunks does.
    fill = fill_module()
    mult, offset = fill._rule(name, shape, spec["scale"])

    def piece(start: int) -> None:
        stop = min(flat.size, start + _CHUNK)
        u = fill._uniform_flat(name, flat.size, spec["seed"], start, stop)
        flat[start:stop] = (offset + mult * u if offset else u * mult).astype(np.float32)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(piece, range(0, flat.size, _CHUNK)))
    return out.reshape(shape)


# Official encoder tensors that inference never reads: zeros of the right shape are enough
# (filling them would only cost time), and the converter must still accept them.
_UNUSED_ENCODER = ("audiomae.model.decoder_", "audiomae.model.mask_token", "quantizer._codebook.embed_avg",
                   "quantizer._codebook.cluster_size")


def official_encoder_state(name: str) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(encoder state dict with official keys, semantic centroid table) for one configuration."""
    spec = layout(name)
    tables = np.load(parity_dir() / "computed_tables.npz")
    computed = {"audiomae.model.pos_embed": tables["audiomae_pos_embed"]}
    state = {}
    for key, s in spec["encoder"].items():
        if key.startswith(_UNUSED_ENCODER):
            state[key] = torch.zeros(tuple(s["shape"]))
        else:
            state[key] = filled_tensor(key, s, computed=computed)
    centroids = filled_tensor("semantic_centroids", spec["extra"]["semantic_centroids"])
    return state, centroids


def schedule_buffers(start: float = 0.0015, end: float = 0.0195, n: int = 1000) -> dict[str, np.ndarray]:
    """The 'computed' DDPM buffers of the official decoder, as its constructor makes them (float64)."""
    betas = np.linspace(start**0.5, end**0.5, n, dtype=np.float64) ** 2
    alphas = 1.0 - betas
    ac = np.cumprod(alphas)
    ac_prev = np.append(1.0, ac[:-1])
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
    return dict(
        betas=betas, alphas_cumprod=ac, alphas_cumprod_prev=ac_prev, sqrt_alphas_cumprod=np.sqrt(ac),
        sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - ac), log_one_minus_alphas_cumprod=np.log(1.0 - ac),
        sqrt_recip_alphas_cumprod=np.sqrt(1.0 / ac), sqrt_recipm1_alphas_cumprod=np.sqrt(1.0 / ac - 1),
        posterior_variance=post_var, posterior_log_variance_clipped=np.log(np.maximum(post_var, 1e-20)),
        posterior_mean_coef1=betas * np.sqrt(ac_prev) / (1.0 - ac),
        posterior_mean_coef2=(1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
    )


def official_decoder_state(name: str) -> dict[str, torch.Tensor]:
    """Decoder state dict with official keys for one configuration.

    ``model_ema.*`` (the EMA copy, unused at inference and on the converter's allowed-unused
    list) are zero-stride placeholders: filling 75 M values nobody reads would cost ~10 s.
    """
    computed = schedule_buffers()
    state = {}
    for key, s in layout(name)["decoder"].items():
        if key.startswith("model_ema.") and s["rule"] == "fill":
            state[key] = torch.zeros(()).expand(tuple(s["shape"]))
        elif s["rule"] == "fixed" and s["dtype"] != "float32":
            state[key] = torch.full(tuple(s["shape"]), s["value"], dtype=getattr(torch, s["dtype"]))
        else:
            state[key] = filled_tensor(key, s, computed=computed)
    return state


def official_decoder_tables(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(acoustic VQ codebook [8192, D], semantic centroids [V, D]): the two encoder tables the decoder reads."""
    spec = layout(name)
    embed = filled_tensor("quantizer._codebook.embed", spec["encoder"]["quantizer._codebook.embed"])
    centroids = filled_tensor("semantic_centroids", spec["extra"]["semantic_centroids"])
    return embed[0], centroids
