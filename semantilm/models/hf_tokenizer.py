"""Hugging Face fast tokenizers for LM checkpoints: ``AutoTokenizer.from_pretrained(checkpoint)``
gives the ids ``semantilm`` uses, with no ``semantilm`` code.

The exported tokenizer (``tokenizer.json`` + ``tokenizer_config.json``) is the text tokenizer
(a sentencepiece model converted to a ``tokenizers`` Unigram model, or a pretrained LM's own
fast tokenizer) followed by one added token per id of the layout after the text range:

    [len(text tokenizer), text_vocab_size)   <|unused_k|>      (when the text range is larger)
    [special_offset, semantic_offset)        the layout's specials, e.g. <|audio_start|>
    [semantic_offset, acoustic_offset)       <|s_k|>           semantic id k
    [acoustic_offset, vocab_size)            <|a_k|>           acoustic id k

so a prompt written as text, ``"a dog barks<|audio_start|><|s_12|><|a_7|>"``, tokenises to the
ids ``AudioTextTokenizer`` builds for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from semantilm.tokens.layout import AudioTokenLayout

__all__ = ["audio_token_names", "build_hf_tokenizer", "generation_config_for", "sentencepiece_to_tokenizers",
           "normalizer_name"]

SEMANTIC_FORMAT = "<|s_{}|>"
ACOUSTIC_FORMAT = "<|a_{}|>"
UNUSED_FORMAT = "<|unused_{}|>"


def audio_token_names(layout: AudioTokenLayout) -> list[str]:
    """Names of the ids ``[layout.semantic_offset, layout.vocab_size)``, in id order."""
    return ([SEMANTIC_FORMAT.format(k) for k in range(layout.semantic_vocab_size)]
            + [ACOUSTIC_FORMAT.format(k) for k in range(layout.acoustic_vocab_size)])


# ----- sentencepiece -> tokenizers ----------------------------------------------------------
def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _proto_fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a serialised protobuf message (varint and length-delimited fields)."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos:pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def _normalizer_spec(model_proto: bytes) -> dict[str, Any]:
    """The sentencepiece model's NormalizerSpec (field 3 of ModelProto): rule name, charsmap and whitespace rules."""
    spec: dict[str, Any] = {"name": None, "charsmap": b"", "add_dummy_prefix": True, "remove_extra_whitespaces": True}
    for number, value in _proto_fields(model_proto):
        if number != 3 or not isinstance(value, bytes):
            continue
        for inner, inner_value in _proto_fields(value):
            if inner == 1 and isinstance(inner_value, bytes):
                spec["name"] = inner_value.decode("utf-8", "replace")
            elif inner == 2:
                spec["charsmap"] = inner_value
            elif inner == 3:
                spec["add_dummy_prefix"] = bool(inner_value)
            elif inner == 4:
                spec["remove_extra_whitespaces"] = bool(inner_value)
    return spec


def normalizer_name(model_proto: bytes) -> str | None:
    """The name of a serialised sentencepiece model's normalisation rule (e.g. ``nmt_nfkc_cf``)."""
    return _normalizer_spec(model_proto)["name"]


def sentencepiece_to_tokenizers(sp: Any, add_bos: bool = True) -> Any:
    """A ``tokenizers.Tokenizer`` that encodes text as the (unigram) sentencepiece model ``sp`` does."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    spec = _normalizer_spec(sp.serialized_model_proto())
    vocab = [(sp.id_to_piece(i), float(sp.get_score(i))) for i in range(sp.get_piece_size())]
    tok = Tokenizer(Unigram(vocab, unk_id=int(sp.unk_id()), byte_fallback=False))
    steps = [normalizers.Precompiled(spec["charsmap"])] if spec["charsmap"] else []
    if spec["remove_extra_whitespaces"]:
        steps += [normalizers.Strip(left=True, right=True), normalizers.Replace(Regex(" {2,}"), " ")]
    if steps:
        tok.normalizer = normalizers.Sequence(steps)
    prepend = "always" if spec["add_dummy_prefix"] else "never"
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=prepend, split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=prepend, split=True)
    bos = int(sp.bos_id())
    if add_bos and bos >= 0:
        piece = sp.id_to_piece(bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{piece} $A", pair=f"{piece} $A {piece} $B", special_tokens=[(piece, bos)])
    return tok


# ----- the exported tokenizer ------------------------------------------------------------------
def _append_layout_tokens(backend: Any, layout: AudioTokenLayout) -> None:
    """Add fillers, the layout's specials and every audio id to ``backend`` at their layout ids."""
    from tokenizers import AddedToken

    start = backend.get_vocab_size(with_added_tokens=True)
    if start > layout.text_vocab_size:
        raise ValueError(f"the text tokenizer has {start} ids but layout.text_vocab_size={layout.text_vocab_size}.")
    fillers = [UNUSED_FORMAT.format(k) for k in range(layout.text_vocab_size - start)]
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in fillers])
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in layout.special_tokens])
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in audio_token_names(layout)])
    for name, expected in ((layout.special_tokens[0], layout.special_offset),
                           (SEMANTIC_FORMAT.format(0), layout.semantic_offset),
                           (ACOUSTIC_FORMAT.format(layout.acoustic_vocab_size - 1), layout.vocab_size - 1)):
        if backend.token_to_id(name) != expected:  # a name the text tokenizer already had
            raise ValueError(f"{name} got id {backend.token_to_id(name)} instead of {expected}: the text "
                             "tokenizer already has a token of that name.")


def build_hf_tokenizer(tokenizer: Any) -> Any:
    """The ``transformers.PreTrainedTokenizerFast`` of an ``AudioTextTokenizer``: same text ids,
    every layout id an added token; pad is ``<|pad|>``; bos (prepended when the
    ``AudioTextTokenizer`` prepends it) and unk are the text tokenizer's."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from semantilm.tokens.layout import PAD

    layout = tokenizer.layout
    kwargs: dict[str, Any] = {}
    if tokenizer.kind == "sentencepiece":
        sp = tokenizer.text_tokenizer
        backend = sentencepiece_to_tokenizers(sp, add_bos=tokenizer.add_bos)
        for key, index in (("bos_token", sp.bos_id()), ("eos_token", sp.eos_id()), ("unk_token", sp.unk_id())):
            if index >= 0:
                kwargs[key] = sp.id_to_piece(index)
    else:
        text = tokenizer.text_tokenizer
        source = getattr(text, "backend_tokenizer", None)
        if source is None:
            raise TypeError(f"{type(text).__name__} is not a fast (tokenizers-backed) tokenizer.")
        backend = Tokenizer.from_str(source.to_str())
        for key in ("bos_token", "eos_token", "unk_token"):
            if getattr(text, key, None) is not None:
                kwargs[key] = str(getattr(text, key))
        kwargs["model_max_length"] = getattr(text, "model_max_length", None)
        if len(text) != backend.get_vocab_size(with_added_tokens=True):
            raise ValueError(f"the text tokenizer has {len(text)} ids but its backend "
                             f"{backend.get_vocab_size(with_added_tokens=True)}.")
        if len(text) > layout.text_vocab_size:  # already extended (a checkpoint read back)
            return text
    _append_layout_tokens(backend, layout)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, **kwargs)


def generation_config_for(layout: AudioTokenLayout, bos_id: int | None = None) -> Any:
    """The ``GenerationConfig`` of a checkpoint: stop at ``<|audio_end|>``, pad with ``<|pad|>``."""
    from transformers import GenerationConfig

    return GenerationConfig(bos_token_id=bos_id, eos_token_id=layout.audio_end_id, pad_token_id=layout.pad_id)
