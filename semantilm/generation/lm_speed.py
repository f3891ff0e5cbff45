"""How the LM runs its decoding steps: KV-cache kind, ``torch.compile`` and packed CPU linears.

These settings change speed only. A static KV cache is allocated once at its full length
(``transformers.StaticCache``) and the attention mask is a fixed-width buffer, so every step after
the prompt has the same shapes: what ``torch.compile`` and CUDA graphs need to run a step without
recompiling. The prompt's forward (its width varies) always runs eagerly.

The decoding loop (``loop.generate_ids``, its ``StepRunner``) applies them; beam search
(``model.generate``) takes the KV cache and the packing, and runs eagerly.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

# torch is imported where it is used: the command line reads KV_CACHES before it loads torch.
__all__ = ["KV_CACHES", "LMSpeed"]

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

    def packing(self, model: Any) -> AbstractContextManager[Any]:
        """The block that packs ``model``'s linear layers while it generates (a no-op when off or compiled)."""
        if self.compile or not self.packed_linears:
            return nullcontext()
        from semantilm.generation.packed_linears import packed_linears

        return packed_linears(model)

