"""LM evaluation: next-token loss and perplexity, split by the kind of token being predicted.

Semantic and acoustic ids behave very differently (the acoustic stream is much harder to
predict), so one overall perplexity hides what a model learnt. ``evaluate_lm`` reports the
mean loss per predicted token over semantic positions, acoustic positions and the rest
(``<|audio_end|>`` and any learnt text), each with its perplexity ``exp(loss)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from semantilm.tokens.layout import AudioTokenLayout
    from semantilm.tokens.tokenizer import AudioTextTokenizer

__all__ = ["KINDS", "LMEvaluation", "token_loss_sums", "evaluate_lm"]

KINDS = ("all", "semantic", "acoustic", "other")


@dataclass
class LMEvaluation:
    """losses: mean cross-entropy (nats per predicted token) per kind of KINDS; counts: predicted tokens per kind."""

    losses: dict[str, float]
    counts: dict[str, int]
    num_examples: int

    @property
    def perplexities(self) -> dict[str, float]:
        return {k: math.exp(v) if not math.isnan(v) else float("nan") for k, v in self.losses.items()}

    def to_dict(self) -> dict[str, Any]:
        def clean(d: dict[str, float]) -> dict[str, float | None]:
            return {k: None if math.isnan(v) else v for k, v in d.items()}

        return {"num_examples": self.num_examples, "counts": self.counts, "losses": clean(self.losses),
                "perplexities": clean(self.perplexities)}

    def table(self) -> str:
        lines = ["| positions | tokens | loss (nats/token) | perplexity |", "|---|---:|---:|---:|"]
        for kind in KINDS:
            loss, ppl = self.losses[kind], self.perplexities[kind]
            shown = ("n/a", "n/a") if math.isnan(loss) else (f"{loss:.4f}", f"{ppl:.2f}")
            lines.append(f"| {kind} | {self.counts[kind]} | {shown[0]} | {shown[1]} |")
        return "\n".join(lines)


def token_loss_sums(
    logits: torch.Tensor, labels: torch.Tensor, layout: AudioTokenLayout
) -> dict[str, tuple[float, int]]:
    """Summed next-token cross-entropy and token count per kind of KINDS.

    logits: FloatTensor[B, L, V] of a causal LM; labels: LongTensor[B, L] (the input ids,
    -100 where nothing is learnt). Position t predicts labels[:, t + 1].
    """
    import torch
    import torch.nn.functional as F

    if logits.dim() != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(f"logits must be [B, L, V] and labels [B, L]; got {tuple(logits.shape)} and {tuple(labels.shape)}.")
    if logits.shape[-1] < layout.vocab_size:
        raise ValueError(f"logits have {logits.shape[-1]} classes but the layout needs {layout.vocab_size}.")
    target = labels[:, 1:]
    loss = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), target.clamp(min=0), reduction="none")
    learnt = target != -100
    masks = {
        "all": learnt,
        "semantic": learnt & layout.is_semantic(target),
        "acoustic": learnt & layout.is_acoustic(target),
    }
    masks["other"] = learnt & ~masks["semantic"] & ~masks["acoustic"]
    return {k: (float(torch.where(m, loss, 0.0).sum()), int(m.sum())) for k, m in masks.items()}


def evaluate_lm(
    model: Any,
    tokenizer: AudioTextTokenizer,
    dataset: Any,
    batch_size: int = 8,
    max_length: int = 2048,
) -> LMEvaluation:
    """Mean loss and perplexity per kind of predicted token over a token dataset.

    dataset: rows with ``semantic_ids`` / ``acoustic_ids`` (+ optional ``caption``), as made by
             ``tokenize_corpus``; built into text-to-audio examples as in training (no
             caption dropout, caption ids not scored).
    """
    import torch

    from semantilm.data.collator import AudioLMCollator
    from semantilm.data.token_dataset import is_token_dataset

    if not is_token_dataset(dataset):
        raise ValueError("dataset has no semantic_ids / acoustic_ids columns; tokenise it first (semantilm tokenize).")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if len(dataset) == 0:
        raise ValueError("dataset has no rows.")
    collate = AudioLMCollator(tokenizer, max_length=max_length, mode="pad")
    sums = {k: 0.0 for k in KINDS}
    counts = {k: 0 for k in KINDS}
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(dataset), batch_size):
            rows = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            batch = {k: v.to(device) for k, v in collate(rows).items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            for kind, (total, n) in token_loss_sums(logits, batch["labels"], tokenizer.layout).items():
                sums[kind] += total
                counts[kind] += n
    losses = {k: sums[k] / counts[k] if counts[k] else float("nan") for k in KINDS}
    return LMEvaluation(losses, counts, len(dataset))
