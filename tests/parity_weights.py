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
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

SHARED_PARITY = Path(__file__).resolve().parents[1].parent / "shared" / "parity"
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
    for start, values in fill_module().fill_chunks(name, shape, seed=spec["seed"], scale=spec["scale"]):
        flat[start : start + values.size] = values
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
