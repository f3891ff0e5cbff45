"""Data: an audio column (+ optional caption column) -> codec tokens -> LM batches.

* ``encode_audio_dataset``: a batched ``datasets.map`` through the codec. With ``cache_dir``
  the dataset is processed in contiguous shards, each saved when complete, so a run that is
  interrupted resumes at the first missing shard without losing or duplicating rows.
* ``encode_audio_stream``: the same on an ``IterableDataset`` (streaming corpora that do not
  fit on disk); tokens are computed lazily while iterating.
* ``AudioLMCollator``: token rows -> padded or packed LM batches, with caption dropout for
  classifier-free guidance drawn at batch time (a fresh draw every epoch).

Token rows have the columns ``semantic_ids`` (list[int], T), ``acoustic_ids`` (list[int], T),
``num_frames`` (int) and, when a caption column is given, ``caption`` (str).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codec.data.corpus import audio_cell_to_waveform, check_columns
from semantilm.codec_api import check_codec, codec_description

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from datasets import Dataset, IterableDataset

    from semantilm.codec_api import AudioCodec
    from semantilm.tokens.tokenizer import AudioTextTokenizer

__all__ = ["encode_audio_dataset", "encode_audio_stream", "AudioLMCollator", "row_tokens", "TOKEN_COLUMNS"]

logger = logging.getLogger(__name__)
TOKEN_COLUMNS = ("semantic_ids", "acoustic_ids", "num_frames")
MANIFEST = "semantilm_tokens.json"


def _encode_fn(codec: AudioCodec, audio_column: str, caption_column: str | None, sample_rate: int | None):
    def encode(batch: dict[str, list]) -> dict[str, list]:
        waves = [audio_cell_to_waveform(v, sample_rate, audio_column) for v in batch[audio_column]]
        semantic: list[list[int] | None] = [None] * len(waves)
        acoustic: list[list[int] | None] = [None] * len(waves)
        for sr in sorted({sr for _, sr in waves}):  # one codec call per sample rate in the batch
            index = [i for i, (_, s) in enumerate(waves) if s == sr]
            out = codec.encode([waves[i][0] for i in index], sr)
            for i, tokens in zip(index, out.unbatch(), strict=True):
                semantic[i] = tokens[:, 0].tolist()
                acoustic[i] = tokens[:, 1].tolist()
        result: dict[str, list] = {
            "semantic_ids": semantic,
            "acoustic_ids": acoustic,
            "num_frames": [len(s) for s in semantic],
        }
        if caption_column is not None:
            result["caption"] = [c if isinstance(c, str) else "" for c in batch[caption_column]]
        return result

    return encode


def encode_audio_dataset(
    dataset: Dataset,
    codec: AudioCodec,
    audio_column: str = "audio",
    caption_column: str | None = None,
    sample_rate: int | None = None,
    batch_size: int = 16,
    cache_dir: str | os.PathLike | None = None,
    shard_size: int = 1000,
) -> Dataset:
    """Tokenise ``dataset[audio_column]`` with ``codec`` (batched ``datasets.map``).

    sample_rate: rate of raw-array cells (``datasets.Audio`` cells carry their own).
    cache_dir:   where finished shards of ``shard_size`` rows are kept; rerunning after an
                 interruption skips them. The cache records the codec variant and the source
                 dataset's fingerprint and refuses to mix tokens of another one.
    returns:     a ``Dataset`` with the token columns (+ ``caption``), rows in input order.
    """
    from datasets import concatenate_datasets, load_from_disk
    from tqdm.auto import tqdm

    check_codec(codec, methods=("encode",))
    check_columns(dataset.column_names, audio_column, caption_column)
    if batch_size <= 0 or shard_size <= 0:
        raise ValueError(f"batch_size and shard_size must be positive, got {batch_size} and {shard_size}.")
    fn = _encode_fn(codec, audio_column, caption_column, sample_rate)
    remove = list(dataset.column_names)
    if cache_dir is None:
        return dataset.map(fn, batched=True, batch_size=batch_size, remove_columns=remove, desc="encode audio")

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    info = codec_description(codec)
    info.pop("config", None)
    manifest = {
        "codec": info,
        "dataset_fingerprint": getattr(dataset, "_fingerprint", None),
        "num_rows": len(dataset),
        "shard_size": shard_size,
        "audio_column": audio_column,
        "caption_column": caption_column,
    }
    path = cache_dir / MANIFEST
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored != manifest:
            diff = sorted(k for k in manifest if stored.get(k) != manifest[k])
            raise ValueError(
                f"cache_dir={str(cache_dir)!r} holds tokens made with different {diff}; "
                "use another cache_dir (or delete this one) to tokenise this dataset."
            )
    else:
        from codec.io import write_json

        write_json(path, manifest)

    parts = []
    n_shards = max(1, -(-len(dataset) // shard_size))
    for k in tqdm(range(n_shards), desc="encode audio shards", disable=n_shards == 1):
        shard_dir = cache_dir / f"shard-{k:05d}"
        if shard_dir.is_dir():
            parts.append(load_from_disk(str(shard_dir)))
            continue
        rows = range(k * shard_size, min((k + 1) * shard_size, len(dataset)))
        part = dataset.select(rows).map(
            fn, batched=True, batch_size=batch_size, remove_columns=remove, load_from_cache_file=False,
            keep_in_memory=True, desc=f"shard {k + 1}/{n_shards}",
        )
        tmp = cache_dir / f".shard-{k:05d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        part.save_to_disk(str(tmp))
        os.replace(tmp, shard_dir)  # a shard exists only once complete
        logger.info("encoded shard %d/%d (%d rows)", k + 1, n_shards, len(rows))
        parts.append(load_from_disk(str(shard_dir)))
    return concatenate_datasets(parts)


def encode_audio_stream(
    dataset: IterableDataset,
    codec: AudioCodec,
    audio_column: str = "audio",
    caption_column: str | None = None,
    sample_rate: int | None = None,
    batch_size: int = 16,
) -> IterableDataset:
    """Lazily tokenise a streaming ``IterableDataset`` (nothing is written to disk).

    Resuming a stream is ``IterableDataset.state_dict()`` / ``load_state_dict()`` of datasets.
    """
    check_codec(codec, methods=("encode",))
    check_columns(dataset.column_names, audio_column, caption_column)
    fn = _encode_fn(codec, audio_column, caption_column, sample_rate)
    remove = list(dataset.column_names) if dataset.column_names is not None else [audio_column]
    return dataset.map(fn, batched=True, batch_size=batch_size, remove_columns=remove)


def row_tokens(row: dict[str, Any]) -> torch.Tensor:
    """A token row -> LongTensor[T, 2] (semantic, acoustic)."""
    import torch

    sem, aco = row["semantic_ids"], row["acoustic_ids"]
    if len(sem) != len(aco):
        raise ValueError(f"row has {len(sem)} semantic but {len(aco)} acoustic ids.")
    return torch.stack([torch.as_tensor(sem, dtype=torch.long), torch.as_tensor(aco, dtype=torch.long)], -1).reshape(-1, 2)


@dataclass
class AudioLMCollator:
    """Token rows -> ``{"input_ids", "attention_mask", "labels"}`` LongTensors [B, L].

    mode:            ``"pad"``: one row per example, right-padded with ``<|pad|>`` (labels -100);
                     an example longer than ``max_length`` keeps its first whole frames and
                     loses its ``<|audio_end|>``. ``"pack"``: all examples of the batch are
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
        import torch

        tok = self.tokenizer
        tokens = row_tokens(row)
        caption = row.get("caption") or None
        if caption and self.caption_dropout > 0 and float(torch.rand(())) < self.caption_dropout:
            caption = None
        prompt = len(tok.text_prompt(caption))
        if self.mode == "pad" and prompt + 2 * tokens.shape[0] + 1 > self.max_length:
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
        import torch

        from semantilm.tokens.tokenizer import pad_sequences

        if not rows:
            raise ValueError("the collator got an empty batch.")
        pad = self.tokenizer.layout.pad_id
        examples = [self._example(r) for r in rows]
        if self.mode == "pack":
            ids = [i for e in examples for i in e[0]]
            labels = [i for e in examples for i in e[1]]
            n = self.max_length
            id_rows = [ids[i : i + n] for i in range(0, len(ids), n)]
            label_rows = [labels[i : i + n] for i in range(0, len(labels), n)]
            input_ids = pad_sequences(id_rows, pad)
            if input_ids.shape[1] < n:
                input_ids = torch.nn.functional.pad(input_ids, (0, n - input_ids.shape[1]), value=pad)
            lab = torch.full_like(input_ids, -100)
            mask = torch.zeros_like(input_ids)
            for r, (a, b) in enumerate(zip(id_rows, label_rows, strict=True)):
                lab[r, : len(b)] = torch.as_tensor(b)
                mask[r, : len(a)] = 1
            return {"input_ids": input_ids, "attention_mask": mask, "labels": lab}
        input_ids = pad_sequences([e[0] for e in examples], pad)
        labels = pad_sequences([e[1] for e in examples], -100)
        mask = pad_sequences([[1] * len(e[0]) for e in examples], 0)
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
