"""Token rows -> LM training batches.

``AudioLMCollator`` turns token rows (``load_token_dataset``: ``semantic_ids``, ``acoustic_ids``
and an optional ``caption``) into padded or packed text-to-audio batches, dropping captions at
batch time for classifier-free guidance (a fresh draw every epoch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plumbing.io import pad_sequences

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from semantilm.tokens.tokenizer import AudioTextTokenizer

__all__ = ["AudioLMCollator", "row_tokens", "example_length"]


def example_length(prompt_ids: int, frames: int) -> int:
    """LM ids of a whole example: its prompt (``[bos] caption <|audio_start|>``), 2 per frame, ``<|audio_end|>``."""
    return prompt_ids + 2 * frames + 1


def row_tokens(row: dict[str, Any]) -> torch.Tensor:
    """A token row -> LongTensor[T, 2] (semantic, acoustic)."""
    import torch

    sem, aco = row["semantic_ids"], row["acoustic_ids"]
    if len(sem) != len(aco):
        raise ValueError(f"row has {len(sem)} semantic but {len(aco)} acoustic ids.")
    return torch.stack([torch.as_tensor(sem, dtype=torch.long), torch.as_tensor(aco, dtype=torch.long)], -1).reshape(-1, 2)


def _padded(rows: list[list[int]], value: int, width: int | None = None) -> torch.Tensor:
    """``pad_sequences`` of ``rows``, widened with ``value`` to ``width`` columns when given."""
    import torch

    out = pad_sequences(rows, value)
    if width is not None and out.shape[1] < width:
        out = torch.nn.functional.pad(out, (0, width - out.shape[1]), value=value)
    return out


@dataclass
class AudioLMCollator:
    """Token rows -> ``{"input_ids", "attention_mask", "labels"}`` LongTensors [B, L].

    mode:            ``"pad"``: one row per example, right-padded with ``<|pad|>`` (labels -100);
                     an example longer than ``max_length`` keeps its first whole frames and
                     loses its ``<|audio_end|>`` (``train_lm`` counts such examples before training
                     and, by ``TrainConfig.on_too_long``, stops, leaves them out or lets them be
                     cut: ``semantilm.training.data_checks``). ``"pack"``: all examples of the batch are
                     concatenated and cut into rows of exactly ``max_length`` (the last one
                     padded); attention crosses example boundaries, as in GPT pre-training.
    caption_dropout: probability of dropping a row's caption (drawn from torch's global RNG, so
                     ``Trainer`` checkpoints restore it).
    mask_text:       do not learn the caption part.
    """

    tokenizer: AudioTextTokenizer
    max_length: int = 2048
    mode: str = "pad"
    caption_dropout: float = 0.0
    mask_text: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("pad", "pack"):
            raise ValueError(f"mode={self.mode!r}; use 'pad' or 'pack'.")
        if self.max_length < 4:
            raise ValueError(f"max_length must be at least 4, got {self.max_length}.")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ValueError(f"caption_dropout must be in [0, 1], got {self.caption_dropout}.")

    def _example(self, row: dict[str, Any]) -> tuple[list[int], list[int]]:
        """(input ids, labels) of one row, cropped to whole frames in pad mode."""
        import torch

        tok = self.tokenizer
        tokens = row_tokens(row)
        caption = row.get("caption") or None
        if caption and self.caption_dropout > 0 and float(torch.rand(())) < self.caption_dropout:
            caption = None
        prompt = len(tok.text_prompt(caption))
        if self.mode == "pad" and example_length(prompt, tokens.shape[0]) > self.max_length:
            frames = (self.max_length - prompt) // 2
            if frames < 1:
                raise ValueError(
                    f"a caption of {prompt} ids leaves no room for audio in max_length={self.max_length}; "
                    "raise max_length or shorten the captions."
                )
            ex = tok.text_to_audio_example(caption, tokens[:frames], self.mask_text, end=False)  # cropped clip
        else:
            ex = tok.text_to_audio_example(caption, tokens, self.mask_text)
        return ex.input_ids, ex.labels

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not rows:
            raise ValueError("the collator got an empty batch.")
        pad = self.tokenizer.layout.pad_id
        examples = [self._example(r) for r in rows]
        if self.mode == "pack":
            n = self.max_length
            ids = [i for e in examples for i in e[0]]
            labels = [i for e in examples for i in e[1]]
            id_rows = [ids[i : i + n] for i in range(0, len(ids), n)]
            label_rows = [labels[i : i + n] for i in range(0, len(labels), n)]
        else:
            n = None
            id_rows = [e[0] for e in examples]
            label_rows = [e[1] for e in examples]
        return {
            "input_ids": _padded(id_rows, pad, n),
            "attention_mask": _padded([[1] * len(r) for r in id_rows], 0, n),
            "labels": _padded(label_rows, -100, n),
        }
