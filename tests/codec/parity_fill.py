"""Official state dicts filled with the parity fixtures' deterministic stand-in weights.

The fixtures (``../shared/parity/`` beside the clone, or ``$SEMANTILM_PARITY_DIR``) were
recorded from the official code with every tensor set by the rule its layout JSON gives
(see the README there). This module rebuilds those tensors with the fixtures' own ``fill.py``;
a missing fixture raises (parity tests must fail loudly, never skip).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ("r100_v16384", "r50_v8192", "r25_v4096")
SCHEDULE_BUFFERS = (
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
)


def parity_dir() -> Path:
    path = Path(os.environ.get("SEMANTILM_PARITY_DIR", REPO_ROOT.parent / "shared" / "parity"))
    if not (path / "fill.py").is_file():
        raise FileNotFoundError(
            f"parity fixtures not found at {path} (expected fill.py, layout_*.json, semanticodec_*.npz); "
            "put the shared parity folder beside the clone or set SEMANTILM_PARITY_DIR."
        )
    return path


@functools.cache
def fill_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("parity_fill_rules", parity_dir() / "fill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_layout(name: str) -> dict[str, Any]:
    return json.loads((parity_dir() / f"layout_{name}.json").read_text())


def load_archive(name: str) -> np.lib.npyio.NpzFile:
    path = parity_dir() / f"semanticodec_{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"parity archive {path} is missing.")
    return np.load(path)


def fill_tensor(name: str, spec: dict[str, Any]) -> torch.Tensor:
    """The float32 tensor of one 'fill' or 'fixed' layout entry."""
    shape = tuple(spec["shape"])
    if spec["rule"] == "fixed":
        dtype = {"float32": torch.float32, "int32": torch.int32, "int64": torch.int64}[spec["dtype"]]
        return torch.full(shape, spec["value"], dtype=dtype)
    if spec["rule"] != "fill":
        raise ValueError(f"{name}: rule {spec['rule']!r} is not a fill rule.")
    out = torch.empty(math.prod(shape), dtype=torch.float32)
    flat = out.numpy()
    for start, values in fill_module().fill_chunks(name, shape, seed=spec["seed"], scale=spec.get("scale")):
        flat[start : start + len(values)] = values
    return out.reshape(shape)


def schedule_buffers(start: float = 0.0015, end: float = 0.0195, n: int = 1000) -> dict[str, torch.Tensor]:
    """The 'computed' DDPM buffers as the official constructor makes them (float64 -> float32)."""
    betas = np.linspace(start**0.5, end**0.5, n, dtype=np.float64) ** 2
    alphas = 1.0 - betas
    ac = np.cumprod(alphas)
    ac_prev = np.append(1.0, ac[:-1])
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
    values = dict(
        betas=betas, alphas_cumprod=ac, alphas_cumprod_prev=ac_prev, sqrt_alphas_cumprod=np.sqrt(ac),
        sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - ac), log_one_minus_alphas_cumprod=np.log(1.0 - ac),
        sqrt_recip_alphas_cumprod=np.sqrt(1.0 / ac), sqrt_recipm1_alphas_cumprod=np.sqrt(1.0 / ac - 1),
        posterior_variance=post_var, posterior_log_variance_clipped=np.log(np.maximum(post_var, 1e-20)),
        posterior_mean_coef1=betas * np.sqrt(ac_prev) / (1.0 - ac),
        posterior_mean_coef2=(1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
    )
    return {k: torch.tensor(v, dtype=torch.float32) for k, v in values.items()}


def official_decoder_state_dict(layout: dict[str, Any], *, fill_unused: bool = False) -> dict[str, torch.Tensor]:
    """Every tensor of the official decoder state dict, filled by its layout rule.

    ``model_ema.*`` (unused at inference, allowed unused by the converter) are zero-stride
    placeholders unless ``fill_unused``: filling 75 M values nobody reads costs ~10 s.
    """
    computed = schedule_buffers()
    out = {}
    for name, spec in layout["decoder"].items():
        if spec["rule"] == "computed":
            if name not in computed:
                raise ValueError(f"no computation known for the 'computed' tensor {name}.")
            out[name] = computed[name]
        elif name.startswith("model_ema.") and spec["rule"] == "fill" and not fill_unused:
            out[name] = torch.zeros(()).expand(tuple(spec["shape"]))
        else:
            out[name] = fill_tensor(name, spec)
    return out


def encoder_tables(layout: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(acoustic VQ codebook [8192, D], semantic centroids [V, D]) filled as the fixtures' encoder."""
    embed = fill_tensor("quantizer._codebook.embed", layout["encoder"]["quantizer._codebook.embed"])
    centroids = fill_tensor("semantic_centroids", layout["extra"]["semantic_centroids"])
    return embed[0], centroids
