"""The decoding loop of generation: one model call per step, with or without classifier-free guidance.

With guidance the conditional rows and their unconditional twins run as one batch ``[2B, L]``
through one model call per step, with one KV cache (MusicGen-style batch doubling). Both halves
are left-padded to a common width; position ids count real tokens only, so each row sees the
positions it would see alone. Each step the halves' log-probabilities are mixed as
``uncond + scale * (cond - uncond)``, and the next id goes to both halves. Without guidance the
same loop runs the conditional rows alone on their log-probabilities.

Then the logits processors (the audio-token constraint, a streaming observer) and the sampling
warpers (temperature, top-k, top-p: ``transformers``' own classes in its order) run on the scores,
and an id is drawn from torch's global generator as ``model.generate`` draws it, so the loop writes
what ``model.generate`` writes (with a second model call per step for guidance: the oracle in the
tests) up to float noise in the batched matmuls. The loop calls the model directly through its
``StepRunner`` (KV cache, attention mask and the compiled step), so it does not depend on
``generate``'s internals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from semantilm.generation.lm_speed import LMSpeed
from semantilm.generation.prompts import PaddedPrompts
from semantilm.generation.settings import SamplingSettings
from semantilm.tokens.layout import AudioTokenLayout

__all__ = ["generate_ids", "sampling_warpers", "frame_progress", "StepRunner", "forward_keywords", "compile_mode"]

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sampling_warpers(sampling: SamplingSettings) -> list[ScoreFn]:
    """The score warpers ``model.generate`` applies when it samples, in its order: temperature,
    top-k, top-p (``transformers``' own classes). Greedy decoding has none."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    if not sampling.do_sample:
        return []
    warpers: list[ScoreFn] = []
    if sampling.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(sampling.temperature))
    if sampling.top_k:
        warpers.append(TopKLogitsWarper(top_k=sampling.top_k, min_tokens_to_keep=1))
    if sampling.top_p is not None and sampling.top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=sampling.top_p, min_tokens_to_keep=1))
    return warpers


class frame_progress:  # noqa: N801 - used like a function, as a context manager
    """A tqdm bar over generated frames (two LM ids each), updated from the decoding step.

    total_ids: the most new ids a row may write; the bar counts ``total_ids // 2`` frames.
    enabled:   None: shown only when stderr is a terminal; or a bool (``plumbing.progress``).
    """

    def __init__(self, total_ids: int, enabled: bool | None = None, desc: str = "generate"):
        from plumbing.progress import progress_bar

        self.total = max(int(total_ids) // 2, 1)
        self.bar = progress_bar(total=self.total, desc=desc, unit="frame", progress=enabled)

    def step(self, ids_written: int) -> None:
        """Report that each unfinished row has written ``ids_written`` new ids so far."""
        frames = min(ids_written // 2, self.total)
        if frames > self.bar.n:
            self.bar.update(frames - self.bar.n)

    def __enter__(self) -> frame_progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()


def forward_keywords(model: Any) -> tuple[str, dict[str, Any]]:
    """(the model's KV-cache keyword: ``cache`` in recent ``transformers``, ``past_key_values`` in older
    ones; ``{"logits_to_keep": 1}`` when its forward takes it, else ``{}``)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(type(base).forward).parameters
    return ("cache" if "cache" in params else "past_key_values"), ({"logits_to_keep": 1} if "logits_to_keep" in params else {})



def compile_mode(speed: LMSpeed, device: torch.device) -> str | None:
    """The ``torch.compile`` mode of ``speed`` on ``device``: its own, else "reduce-overhead" (CUDA
    graphs) on CUDA and the default mode elsewhere."""
    if speed.compile_mode is not None:
        return speed.compile_mode
    return "reduce-overhead" if device.type == "cuda" else None


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

            config = model.config
            if hasattr(config, "get_text_config"):
                config = config.get_text_config(decoder=True)
            self.cache = StaticCache(config=config, max_cache_len=self.width + max_new_tokens)
            self.mask = mask.new_zeros(mask.shape[0], self.width + max_new_tokens)
            self.mask[:, : self.width] = mask
        else:
            self.mask = mask
        self.forward = model
        if speed.compile:
            self.forward = torch.compile(model, mode=compile_mode(speed, mask.device), backend=speed.compile_backend,
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


def _step_batch(prompts: PaddedPrompts, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows the model sees: the prompts, then with guidance their unconditional twins, all
    left-padded to one width -> (ids, mask) [B or 2B, W]."""
    if not prompts.guided:
        return prompts.ids, prompts.mask
    cond, uncond = prompts.ids, prompts.unconditional.to(prompts.ids.device)
    width = max(cond.shape[1], uncond.shape[1])

    def widen(t: torch.Tensor, fill: int) -> torch.Tensor:
        return torch.nn.functional.pad(t, (width - t.shape[1], 0), value=fill)

    ids = torch.cat([widen(cond, pad_id), widen(uncond, pad_id)])
    mask = torch.cat([widen(prompts.mask, 0), widen(prompts.unconditional_mask.to(cond.device), 0)])
    return ids, mask


def _next_ids(
    scores: torch.Tensor, sequences: torch.Tensor, fns: Sequence[ScoreFn], do_sample: bool
) -> torch.Tensor:
    """Run the processors and warpers on ``scores`` [B, V], then draw (or take the likeliest) -> LongTensor[B]."""
    for fn in fns:
        scores = fn(sequences, scores)
    if do_sample:
        return torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
    return torch.argmax(scores, dim=-1)


def generate_ids(
    model: Any, layout: AudioTokenLayout, prompts: PaddedPrompts, max_new_tokens: int, *, sampling: SamplingSettings,
    guidance_scale: float = 1.0, processors: Sequence[ScoreFn] = (), speed: LMSpeed | None = None,
    progress: bool | None = None,
) -> torch.Tensor:
    """Generate after left-padded prompts until every row has written ``<|audio_end|>`` or
    ``max_new_tokens`` ids.

    prompts:        the batch (with unconditional twins when ``guidance_scale != 1``).
    sampling:       ``do_sample``, ``temperature``, ``top_k``, ``top_p`` (the rest is the caller's).
    guidance_scale: s in ``uncond + s * (cond - uncond)`` on log-probabilities.
    processors:     called as ``p(ids, scores)`` on the (guided) log-probs, ids LongTensor[B, L + t]
                    (the conditional prompts and what was generated so far).
    speed:          KV cache and compilation of the steps (None: ``LMSpeed()``); the caller packs the
                    linear layers (``LMSpeed.packing``) around the loop.
    returns:        LongTensor[B, L + T], the prompts followed by the new ids; a row ends with
                    ``<|audio_end|>`` and is padded with the pad id after it; T <= max_new_tokens.
    """
    guided = guidance_scale != 1.0
    if guided != prompts.guided:
        raise ValueError(f"guidance_scale={guidance_scale} needs unconditional prompts exactly when it is not 1.")
    rows, end_id, pad_id = prompts.ids.shape[0], layout.audio_end_id, layout.pad_id
    speed = speed or LMSpeed()
    step_ids, mask = _step_batch(prompts, pad_id)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    runner = StepRunner(model, speed, mask, max_new_tokens)
    fns = [*processors, *sampling_warpers(sampling)]
    sequences = prompts.ids
    unfinished = torch.ones(rows, dtype=torch.bool, device=sequences.device)
    with torch.inference_mode(), frame_progress(max_new_tokens, progress) as bar:
        for step in range(max_new_tokens):
            scores = torch.log_softmax(runner(step_ids, positions).float(), dim=-1)
            if guided:
                cond, uncond = scores[:rows], scores[rows:]
                scores = uncond + guidance_scale * (cond - uncond)
            new = _next_ids(scores, sequences, fns, sampling.do_sample)
            new = torch.where(unfinished, new, torch.full_like(new, pad_id))
            sequences = torch.cat([sequences, new[:, None]], dim=1)
            unfinished &= new != end_id
            bar.step(step + 1)
            if not bool(unfinished.any()):
                break
            step_ids = (torch.cat([new, new]) if guided else new)[:, None]
            runner.grow()
            positions = positions[:, -1:] + 1
    return sequences
