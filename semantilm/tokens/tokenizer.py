"""Text tokenizer + audio ids -> LM training sequences and generation prompts.

Text goes through the LM's own Hugging Face tokenizer (pretrained LMs) or a sentencepiece
model trained by the toolkit on the captions (from-scratch LMs). Audio ids never pass through
the text tokenizer: they are integers placed by the ``AudioTokenLayout``.

Training sequences (``[bos]`` only where the text tokenizer has one)::

    text-to-audio   [bos] caption <|audio_start|> audio <|audio_end|>
    caption dropped [bos]         <|audio_start|> audio <|audio_end|>

Generation prompts end after ``<|audio_start|>`` (text-to-audio) or inside the audio span
(continuation: ``[bos] <|audio_start|>`` and the clip's ids the token pattern gives).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plumbing.io import atomic_write, write_json
from semantilm.tokens.layout import AudioTokenLayout

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["AudioTextTokenizer", "LMExample", "train_sentencepiece", "IGNORE_INDEX", "CaptionWarning"]

IGNORE_INDEX = -100
LOWERCASE_RULE = "nmt_nfkc_cf"  # sentencepiece's NFKC normalisation with case folding
SENTENCEPIECE_FILE = "semantilm_text.model"
TOKENIZER_INFO_FILE = "semantilm_tokenizer.json"


@dataclass
class LMExample:
    """One training sequence.

    input_ids: list[int] of length L (text, specials and audio ids).
    labels:    list[int] of length L; ``-100`` where nothing is learned (text part when masked).
    """

    input_ids: list[int]
    labels: list[int]


def train_sentencepiece(
    texts: Iterable[str], path: str | os.PathLike, vocab_size: int = 4000, model_type: str = "unigram",
    lowercase: bool | None = None,
) -> Path:
    """Train a sentencepiece model on ``texts`` (e.g. the captions) and write it to ``path``.

    The model reserves id 0 for ``<unk>``, 1 for ``<s>`` (bos) and 2 for ``</s>``; its
    vocabulary size is a soft limit so that tiny corpora still train.
    lowercase: fold the case of every text it encodes (sentencepiece's ``nmt_nfkc_cf`` rule, stored
        in the model, so training, generation and the exported ``tokenizer.json`` all apply it);
        None: when no text of ``texts`` has a capital letter, so that "A Dog" finds the pieces
        of "a dog" instead of ``<unk>``.
    """
    import sentencepiece as spm

    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("texts must contain at least one non-empty string to train a sentencepiece model.")
    if vocab_size < 8:
        raise ValueError(f"vocab_size must be at least 8, got {vocab_size}.")
    if lowercase is None:
        lowercase = all(t == t.lower() for t in texts)
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type=model_type,
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name=LOWERCASE_RULE if lowercase else "nmt_nfkc",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    return atomic_write(path, buffer.getvalue())


class CaptionWarning(UserWarning):
    """A caption holds characters the text tokenizer does not know (they become ``<unk>``)."""


class AudioTextTokenizer:
    """Builds LM sequences from captions and codec tokens for one ``AudioTokenLayout``.

    text_tokenizer: a Hugging Face tokenizer or a ``sentencepiece.SentencePieceProcessor``.
    layout:         where specials and audio ids go; ``layout.text_vocab_size`` must cover
                    every id the text tokenizer can produce.
    add_bos:        prepend the text tokenizer's bos id (if it has one) to every sequence.
    """

    def __init__(self, text_tokenizer: Any, layout: AudioTokenLayout, add_bos: bool = True):
        if not isinstance(layout, AudioTokenLayout):
            raise TypeError(f"layout must be an AudioTokenLayout, got {type(layout).__name__}.")
        self.layout = layout
        self.text_tokenizer = text_tokenizer
        self.add_bos = add_bos
        self._known_characters: dict[str, bool] = {}  # unknown_characters' answers, by character
        if _is_sentencepiece(text_tokenizer):
            self.kind = "sentencepiece"
            text_size = int(text_tokenizer.get_piece_size())
            bos = int(text_tokenizer.bos_id())
            self.bos_id = bos if bos >= 0 else None
        elif hasattr(text_tokenizer, "encode") and hasattr(text_tokenizer, "save_pretrained"):
            self.kind = "hf"
            text_size = len(text_tokenizer)
            self.bos_id = text_tokenizer.bos_token_id
        else:
            raise TypeError(
                "text_tokenizer must be a Hugging Face tokenizer or a sentencepiece.SentencePieceProcessor, "
                f"got {type(text_tokenizer).__name__}."
            )
        if text_size > layout.text_vocab_size and not self._is_exported(text_tokenizer, text_size):
            raise ValueError(
                f"the text tokenizer has {text_size} ids but layout.text_vocab_size={layout.text_vocab_size}; "
                "text ids would collide with the special and audio ids. Build the layout with "
                f"text_vocab_size >= {text_size}."
            )

    def _is_exported(self, text_tokenizer: Any, text_size: int) -> bool:
        """True for a Hugging Face tokenizer that already holds every layout id as an added token
        (what ``save_pretrained`` writes): its text ids are still below ``text_vocab_size``."""
        from semantilm.tokens.layout import AUDIO_START

        return (self.kind == "hf" and text_size == self.layout.vocab_size
                and text_tokenizer.convert_tokens_to_ids(AUDIO_START) == self.layout.audio_start_id)

    @classmethod
    def from_sentencepiece(
        cls, model_file: str | os.PathLike, codec: Any, pattern: str = "interleave"
    ) -> AudioTextTokenizer:
        """A from-scratch LM's tokenizer: a sentencepiece model (``train_sentencepiece``) and the
        layout that puts ``codec``'s ids after its vocabulary."""
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(model_file))
        return cls(sp, AudioTokenLayout.for_codec(codec, text_vocab_size=sp.get_piece_size(), pattern=pattern))

    # ----- text ------------------------------------------------------------------------
    def encode_text(self, text: str) -> list[int]:
        """Caption -> text ids (no bos / specials)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}.")
        if self.kind == "sentencepiece":
            return list(self.text_tokenizer.encode(text))
        return list(self.text_tokenizer.encode(text, add_special_tokens=False))

    def normalization(self) -> str | None:
        """The name of a sentencepiece model's normalisation rule (``nmt_nfkc_cf``: case folded), else None."""
        if self.kind != "sentencepiece":
            return None
        from semantilm.models.hf_tokenizer import normalizer_name

        return normalizer_name(self.text_tokenizer.serialized_model_proto())

    def unknown_characters(self, text: str) -> list[str]:
        """The characters of ``text`` that the text tokenizer turns into its unknown id (``<unk>``), in
        order of appearance; none for tokenizers without one (byte-level BPE knows every character)."""
        unk = self._unk_id()
        if unk is None:
            return []
        known = self._known_characters
        out = []
        for char in dict.fromkeys(text):
            if char.isspace():
                continue
            if char not in known:
                known[char] = unk not in self.encode_text(char)
            if not known[char]:
                out.append(char)
        return out

    def _unk_id(self) -> int | None:
        if self.kind == "sentencepiece":
            unk = int(self.text_tokenizer.unk_id())
            return unk if unk >= 0 else None
        return getattr(self.text_tokenizer, "unk_token_id", None)

    def warn_unknown_characters(self, captions: Iterable[str | None], what: str = "captions",
                                shown: int = 5) -> int:
        """A :class:`CaptionWarning` naming the captions (up to ``shown`` of them) that hold characters the
        text tokenizer does not know, and those characters; returns how many captions do."""
        import warnings

        found = []
        for caption in dict.fromkeys(c for c in captions if c):
            chars = self.unknown_characters(caption)
            if chars:
                found.append(f"{caption!r} ({', '.join(map(repr, chars))})")
        if found:
            listing = "; ".join(found[:shown]) + ("; ..." if len(found) > shown else "")
            warnings.warn(
                f"{len(found)} of the {what} {'hold' if len(found) > 1 else 'holds'} characters the caption tokenizer "
                f"does not know, which become <unk>: {listing}. Write them with the characters of the training captions "
                "(e.g. digits as words), or train the tokenizer on captions that have them.",
                CaptionWarning, stacklevel=2,
            )
        return len(found)

    def _prefix(self) -> list[int]:
        return [self.bos_id] if self.add_bos and self.bos_id is not None else []

    # ----- prompts ---------------------------------------------------------------------
    def text_prompt(self, caption: str | None) -> list[int]:
        """``[bos] caption <|audio_start|>``; ``caption=None`` gives the caption-less prompt."""
        text = self.encode_text(caption) if caption is not None else []
        return self._prefix() + text + [self.layout.audio_start_id]

    def continuation_prompt(self, tokens: torch.Tensor) -> list[int]:
        """``[bos] <|audio_start|> audio`` that continues the clip ``tokens`` (LongTensor[T, 2]);
        the audio ids are the ones the layout's pattern gives a continuation (e.g. the whole
        clip for ``"interleave"``, its semantic ids for ``"semantic_first"``)."""
        return self.text_prompt(None) + self.layout.continuation_ids(tokens).tolist()

    # ----- training sequences ----------------------------------------------------------
    def text_to_audio_example(
        self, caption: str | None, tokens: torch.Tensor, mask_text: bool = True, end: bool = True
    ) -> LMExample:
        """``[bos] caption <|audio_start|> audio <|audio_end|>`` with labels.

        tokens:    LongTensor[T, 2] codec tokens of one clip.
        caption:   ``None`` (or "") drops the caption, as classifier-free guidance training does.
        mask_text: when true, the bos, caption and ``<|audio_start|>`` are not learned.
        end:       append ``<|audio_end|>`` (false for a clip cropped from a longer one).
        """
        prompt = self.text_prompt(caption or None)
        audio = self.layout.interleave(tokens).tolist() + ([self.layout.audio_end_id] if end else [])
        labels = ([IGNORE_INDEX] * len(prompt) if mask_text else list(prompt)) + audio
        return LMExample(input_ids=prompt + audio, labels=labels)

    # ----- persistence -----------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Save the text tokenizer (and how it is used) beside an LM checkpoint.

        Also writes the Hugging Face fast tokenizer of text + layout ids (``tokenizer.json``,
        ``tokenizer_config.json``; ``semantilm.models.hf_tokenizer``), so that
        ``transformers.AutoTokenizer.from_pretrained(directory)`` gives the same ids.
        """
        from semantilm.models.hf_tokenizer import build_hf_tokenizer

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.kind == "sentencepiece":
            atomic_write(directory / SENTENCEPIECE_FILE, self.text_tokenizer.serialized_model_proto())
        if self.kind == "sentencepiece" or hasattr(self.text_tokenizer, "backend_tokenizer"):
            build_hf_tokenizer(self).save_pretrained(directory)
        else:  # a slow Hugging Face tokenizer: saved as it is
            self.text_tokenizer.save_pretrained(directory)
        info = {"kind": self.kind, "add_bos": self.add_bos}
        if self.kind == "sentencepiece":  # how captions are normalised (nmt_nfkc_cf: case folded), for readers
            info["normalization"] = self.normalization()
        write_json(directory / TOKENIZER_INFO_FILE, info, sort_keys=False)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, layout: AudioTokenLayout | None = None) -> AudioTextTokenizer:
        """Load what ``save_pretrained`` wrote (the layout from ``semantilm_config.json`` unless given)."""
        directory = Path(directory)
        layout = layout or AudioTokenLayout.from_pretrained(directory)
        info_path = directory / TOKENIZER_INFO_FILE
        info = json.loads(info_path.read_text()) if info_path.is_file() else {"kind": "hf", "add_bos": True}
        if info["kind"] == "sentencepiece":
            import sentencepiece as spm

            text_tokenizer = spm.SentencePieceProcessor(model_file=str(directory / SENTENCEPIECE_FILE))
        else:
            from transformers import AutoTokenizer

            text_tokenizer = AutoTokenizer.from_pretrained(directory)
        return cls(text_tokenizer, layout, add_bos=info.get("add_bos", True))


def _is_sentencepiece(obj: Any) -> bool:
    return type(obj).__name__ == "SentencePieceProcessor"
