"""How the LM runs its decoding steps: KV-cache kind, ``torch.compile`` and packed CPU linears.

These settings change speed only. A static KV cache is allocated once at its full length
(``transformers.StaticCache``) and the attention mask is a fixed-width buffer, so every step after
the prompt has the same shapes: what ``torch.compile`` and CUDA graphs need to run a step without
recompiling. The prompt's forward (its width varies) always runs eagerly.

``StepRunner`` owns the cache, the mask and the (compiled) step of the decoding loop
(``loop.generate_ids``); ``beam_search`` hands ``model.generate`` the same settings through its
generation config.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

# torch is imported where it is used: the command line reads KV_CACHES before it loads torch.
__all__ = ["KV_CACHES", "LMSpeed", "StepRunner", "forward_keywords"]

KV_CACHES = ("dynamic", "static")


@dataclass(frozen=True)
class LMSpeed:
    """Speed settings of LM generation; the ids written are the same up to float noise.

    kv_cache:        "dynamic" (grows by one position per step; default) or "static" (allocated
                     once for the prompt and every new id: fixed shapes per step).
    compile:         ``torch.compile`` the decoding step; needs ``kv_cache="static"``. The first
                     steps of a run pay the compilation (tens of seconds, more for big models).
    compile_mode:    ``torch.compile`` mode; None: "reduce-overhead" (CUDA graphs) on CUDA, the
                     default mode elsewhere.
    compile_backend: ``torch.compile`` backend ("inductor"; "eager" only traces, for checks).
    packed_linears:  run the LM's large fp32 CPU linear layers through oneDNN with packed weights
                     while it generates (``packed_linears``); compiled steps pack their own.
    """

    kv_cache: str = "dynamic"
    compile: bool = False
    compile_mode: str | None = None
    compile_backend: str = "inductor"
    packed_linears: bool = True

    def __post_init__(self) -> None:
        if self.kv_cache not in KV_CACHES:
            raise ValueError(f"kv_cache must be one of {KV_CACHES}, got {self.kv_cache!r}.")
        if self.compile and self.kv_cache != "static":
            raise ValueError(
                "compile=True needs kv_cache='static': with a dynamic cache every step has new shapes and "
                "would recompile. Pass LMSpeed(kv_cache='static', compile=True)."
            )
        for name in ("compile", "packed_linears"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}.")

    def mode_for(self, device: torch.device) -> str | None:
        """The ``torch.compile`` mode on ``device``."""
        if self.compile_mode is not None:
            return self.compile_mode
        return "reduce-overhead" if device.type == "cuda" else None

    def packing(self, model: Any) -> AbstractContextManager[Any]:
        """The block that packs ``model``'s linear layers while it generates (a no-op when off or compiled)."""
        if self.compile or not self.packed_linears:
            return nullcontext()
        from semantilm.generation.packed_linears import packed_linears

        return packed_linears(model)


def forward_keywords(model: Any) -> tuple[str, dict[str, Any]]:
    """(the model's KV-cache keyword: ``cache`` in recent ``transformers``, ``past_key_values`` in older
    ones; ``{"logits_to_keep": 1}`` when its forward takes it, else ``{}``)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(type(base).forward).parameters
    return ("cache" if "cache" in params else "past_key_values"), ({"logits_to_keep": 1} if "logits_to_keep" in params else {})


class StepRunner:
    """The model calls of one decoding loop: the prompt, then one call per new position.

    model:          a causal LM taking ``input_ids``, ``attention_mask``, ``position_ids`` and a KV
                    cache (``forward_keywords``).
    mask:           LongTensor[R, W], the prompt's attention mask (0 = left padding).
    max_new_tokens: positions the loop may add after the prompt (the static cache's room).
    """

    def __init__(self, model: Any, speed: LMSpeed, mask: torch.Tensor, max_new_tokens: int):
        self.model, self.speed = model, speed
        self.cache_arg, self.extra = forward_keywords(model)
        cache_arg = self.cache_arg
        self.width = mask.shape[1]
        self.step = 0
        self.cache: Any = None
        if speed.kv_cache == "static":
            from transformers import StaticCache

            if cache_arg != "cache":
                raise ValueError(
                    "kv_cache='static' needs a transformers version whose models take the cache as `cache=` "
                    "(5.x); upgrade transformers or use kv_cache='dynamic'."
                )

            config = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") \
                else model.config
            self.cache = StaticCache(config=config, max_cache_len=self.width + max_new_tokens)
            self.mask = mask.new_zeros(mask.shape[0], self.width + max_new_tokens)
            self.mask[:, : self.width] = mask
        else:
            self.mask = mask
        self.forward = model
        if speed.compile:
            import torch

            self.forward = torch.compile(model, mode=speed.mode_for(mask.device), backend=speed.compile_backend,
                                         dynamic=False)

    def __call__(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """Feed ``input_ids`` [R, w] (the prompt first, then one id per row) -> last logits [R, V]."""
        call = self.model if self.step == 0 else self.forward  # the prompt's width varies: eager
        out = call(input_ids=input_ids, attention_mask=self.mask, position_ids=position_ids, use_cache=True,
                   **{self.cache_arg: self.cache}, **self.extra)
        if self.speed.kv_cache == "dynamic":
            self.cache = out[self.cache_arg] if self.cache_arg in out else out.past_key_values
        logits = out.logits[:, -1]
        self.step += 1
        return logits.clone() if self.speed.compile else logits  # CUDA graphs reuse their output buffers

    def grow(self) -> None:
        """Make room in the mask for the id the next call feeds."""
        if self.speed.kv_cache == "static":
            self.mask[:, self.width + self.step - 1] = 1
        else:
            grown = self.mask.new_ones(self.mask.shape[0], self.mask.shape[1] + 1)
            grown[:, :-1] = self.mask
            self.mask = grown

