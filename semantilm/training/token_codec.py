"""The codec of a recipe run when the data are tokens already: the one the token folder records.

An LM learns the ids of one codec and its checkpoint names that codec (``semantilm_codec.json``),
so tokens made with another codec than the recipe's would train without a sound and give a
checkpoint that ``generate`` cannot decode. :func:`resolve_recipe_codec` settles the recipe's
``codec`` section before any work: keys left unset (null) come from the token folder's record,
keys that are set must describe the codec the tokens came from, or the run is refused naming
both codecs and the override that fixes it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from plumbing.config_file import ConfigError

__all__ = ["TokenRecord", "token_record", "expected_variant", "resolve_recipe_codec", "check_same_codec"]

DEFAULT_TOKEN_RATE = 100
DEFAULT_VOCAB = 16384


@dataclasses.dataclass
class TokenRecord:
    """What a folder of tokens says about the codec that made them.

    path:   the record file.
    codec:  its codec facts (variant, frame_rate, semantic/acoustic vocabulary sizes, maybe ``source``:
            the name, token rate and vocabulary the codec was loaded with).
    """

    path: Path
    codec: dict[str, Any]

    @property
    def source(self) -> dict[str, Any]:
        return dict(self.codec.get("source") or {})

    def describe(self) -> str:
        c = self.codec
        name = self.source.get("name")
        facts = (f"{2 * float(c.get('frame_rate', 0)):g} tokens/s, "
                 f"{c.get('semantic_vocab_size')} semantic / {c.get('acoustic_vocab_size')} acoustic ids")
        if name:
            return f"{name!r} (variant {c.get('variant')!r}, {facts})"
        return f"of variant {c.get('variant')!r} ({facts})"


def token_record(folder: str | os.PathLike | None) -> TokenRecord | None:
    """The codec record of a folder of tokens, or None when ``folder`` is not such a folder."""
    from plumbing.io import read_json_object
    from semantilm.data.token_dataset import token_record_file

    path = token_record_file(Path(folder).expanduser()) if folder is not None else None
    if path is None:
        return None
    codec = read_json_object(path, "token folder record", "tokenise the data again").get("codec")
    if not isinstance(codec, dict) or "variant" not in codec:
        raise ValueError(f"token folder record {str(path)!r} names no codec (no codec.variant); "
                         "tokenise the data again.")
    return TokenRecord(path, codec)


def expected_variant(name: str, token_rate: int | None, vocab: int | None) -> str | None:
    """The variant name of the codec that ``load_codec(name, token_rate, vocab)`` loads, read from
    configs only (no weights are loaded); None when it cannot be told without loading it."""
    from codec.checkpoints import CONFIG_NAME, EMBEDDED_CODECS, is_native_folder
    from codec.config import TINY_RANDOM, SemantiCodecConfig

    if name == TINY_RANDOM:
        return SemantiCodecConfig.tiny(token_rate).name
    folder = EMBEDDED_CODECS.get(name, Path(name).expanduser())
    if is_native_folder(folder):
        try:
            return SemantiCodecConfig.from_json_file(folder / CONFIG_NAME).name
        except (ValueError, TypeError):
            return None  # loading the codec reports the damaged file
    if name in EMBEDDED_CODECS:
        return None
    try:
        return SemantiCodecConfig.official(token_rate, vocab).name
    except ValueError:
        return None


def _same_place(a: str, b: str) -> bool:
    """Whether two codec names load the same weights: equal names, or paths of one folder."""
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def _located(name: str) -> str:
    """A local codec folder as an absolute path (the checkpoint must find it from any folder)."""
    from codec.config import TINY, TINY_RANDOM

    path = Path(name).expanduser()
    return str(path.resolve()) if name not in (TINY, TINY_RANDOM) and path.is_dir() else name


def _fix(record: TokenRecord) -> str:
    """The overrides that name the record's codec."""
    source = record.source
    if source.get("name"):
        keys = [f"codec.name={source['name']}"]
        if str(record.codec.get("variant", "")).startswith(("official-", "tiny-r")):
            keys.append(f"codec.token_rate={source.get('token_rate', DEFAULT_TOKEN_RATE)}")
        if str(record.codec.get("variant", "")).startswith("official-"):
            keys.append(f"codec.vocab={source.get('vocab', DEFAULT_VOCAB)}")
        return " ".join(keys)
    from codec.checkpoints import codec_for_variant

    found = codec_for_variant(str(record.codec["variant"]))
    if found is None:
        return "codec.name=<the codec that made the tokens>"
    return " ".join(f"codec.{key}={value}" for key, value in zip(("name", "token_rate", "vocab"), found)
                    if value is not None)


def check_same_codec(name: str, token_rate: int | None, vocab: int | None, record: TokenRecord, what: str) -> None:
    """A ``ConfigError`` unless the codec ``(name, token_rate, vocab)`` is the one that made the tokens
    of ``record`` (``what``: how the user named the tokens, e.g. ``data.dataset='x'``).

    Compared: the variant the codec loads as (from its config), and for codecs that are not the
    official ones the name too (two folders of one variant may hold different weights).
    """
    recorded_variant = str(record.codec["variant"])
    variant = expected_variant(name, token_rate, vocab)
    source_name = record.source.get("name")
    differs = variant is not None and variant != recorded_variant
    if source_name and not recorded_variant.startswith("official-") and not _same_place(str(source_name), name):
        differs = True  # e.g. tiny-random and a codec trained from its configuration: one variant, other weights
    if differs:
        shown = f"variant {variant!r}" if variant else "a variant known once it loads"
        raise ConfigError(
            f"{what} holds tokens of the codec {record.describe()} (recorded in {str(record.path)!r}), but the "
            f"recipe's codec is {name!r}{'' if token_rate is None else f' at {token_rate} tokens/s'} ({shown}): the checkpoint would name the wrong "
            f"codec and generate could not decode its tokens. Set {_fix(record)} (--override {_fix(record)}), "
            "or leave codec.name, codec.token_rate and codec.vocab unset (null) to take the token folder's codec, "
            "or tokenise the data again with the recipe's codec."
        )


def resolve_recipe_codec(section: Any, dataset: str) -> Any:
    """The recipe's ``CodecSection`` with name, token rate and vocabulary all set: unset keys from the
    token folder ``dataset`` (when it is one) or the defaults; a local codec folder made absolute.
    A ``ConfigError`` when the section names another codec than the one that made the tokens."""
    from codec.checkpoints import EMBEDDED_CODECS, is_native_folder, looks_like_a_path
    from codec.config import OFFICIAL_REPO

    record = token_record(dataset) if Path(dataset).expanduser().is_dir() else None
    name, token_rate, vocab = section.name, section.token_rate, section.vocab
    if record is not None:
        source = record.source
        token_rate = token_rate if token_rate is not None else source.get("token_rate")
        vocab = vocab if vocab is not None else source.get("vocab")
        if name is None:
            if source.get("name"):
                name = str(source["name"])
            else:
                from codec.checkpoints import codec_for_variant

                found = codec_for_variant(str(record.codec["variant"]))
                if found is None:
                    raise ConfigError(
                        f"codec.name is not set and the token folder {dataset!r} does not record where its codec "
                        f"{record.describe()} comes from; set codec.name to that codec (its save_pretrained folder).")
                name, token_rate, vocab = found[0], token_rate or found[1], vocab or found[2]
            if looks_like_a_path(name) and not Path(name).expanduser().is_dir():
                raise ConfigError(
                    f"the token folder {dataset!r} records its codec as {name!r}, which is not a folder here (a "
                    "relative path is relative to where the tokens were made); set codec.name to that codec's folder.")
    name = name if name is not None else OFFICIAL_REPO
    fixed = name in EMBEDDED_CODECS or is_native_folder(Path(name).expanduser())  # its files fix rate and vocabulary
    if fixed:  # a rate or vocabulary the token folder recorded beside such a codec is a stale default, not a choice
        token_rate = section.token_rate
        vocab = section.vocab
    token_rate = int(token_rate) if token_rate is not None else None if fixed else DEFAULT_TOKEN_RATE
    vocab = int(vocab) if vocab is not None else None if fixed else DEFAULT_VOCAB
    if record is not None:
        check_same_codec(name, token_rate, vocab, record, f"data.dataset={dataset!r}")
    return dataclasses.replace(section, name=_located(name), token_rate=token_rate, vocab=vocab)
