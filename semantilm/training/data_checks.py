"""Checks of the training data before the first step (``train_lm`` runs them on its training and
evaluation sets), so that nothing is cut, dropped or misread without a word:

* token rows need the token columns and at least one row;
* their ids must fit the LM's layout (tokens of another codec do not);
* examples longer than ``max_length`` LM ids (rows padded one example each, no packing) are handled
  by ``on_too_long``: the collator could only cut them, and a cut example never teaches the LM its
  ``<|audio_end|>``. :func:`fit_to_max_length` counts them over the whole data set first, then

  - ``"error"`` (the default): stops, saying how many there are and by how much they are too long;
  - ``"drop"``: leaves them out, with a warning that says the same;
  - ``"cut"``: trains on their first ``max_length`` ids (first whole frames), with that warning;

  packed rows (``packing: true``) cut nothing: examples run on across rows;
* captions with characters the text tokenizer does not know (they would become ``<unk>``) are
  named in a ``CaptionWarning``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

    from semantilm.tokens.tokenizer import AudioTextTokenizer

__all__ = ["ON_TOO_LONG", "LengthReport", "check_training_data", "check_token_ranges", "example_lengths",
           "length_report", "fit_to_max_length"]

logger = logging.getLogger(__name__)
ON_TOO_LONG = ("error", "drop", "cut")
_SHOWN = 5  # rows named in a message


@dataclass
class LengthReport:
    """The examples of a data set longer than ``max_length``.

    rows:   their row numbers; excess: LM ids each one has beyond ``max_length``.
    no_room: rows whose caption alone leaves no room for a frame (they cannot even be cut).
    """

    what: str
    total: int
    max_length: int
    rows: list[int] = field(default_factory=list)
    excess: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the first rows, named (with their ids, when there is an id column)
    no_room: list[int] = field(default_factory=list)

    def describe(self) -> str:
        shown = ", ".join(self.names) + (", ..." if len(self.rows) > len(self.names) else "")
        mean = sum(self.excess) / len(self.excess)
        return (f"{len(self.rows)} of {self.total} examples of the {self.what} are longer than max_length="
                f"{self.max_length} LM ids (by up to {max(self.excess)}, {mean:.1f} on average; {shown})")


def example_lengths(dataset: Dataset, tokenizer: AudioTextTokenizer) -> list[tuple[int, int]]:
    """(prompt ids, LM ids) of each row as the collator builds it with its caption (no dropout)."""
    from semantilm.data.collator import example_length

    names = dataset.column_names or []
    frames = dataset["num_frames"] if "num_frames" in names else [len(s) for s in dataset["semantic_ids"]]
    captions = dataset["caption"] if "caption" in names else [None] * len(frames)
    prompts: dict[str | None, int] = {}
    out = []
    for caption, n in zip(captions, frames, strict=True):
        key = caption or None
        if key not in prompts:
            prompts[key] = len(tokenizer.text_prompt(key))
        out.append((prompts[key], example_length(prompts[key], int(n))))
    return out


def length_report(dataset: Dataset, tokenizer: AudioTextTokenizer, max_length: int, what: str) -> LengthReport:
    """Which rows of ``dataset`` are longer than ``max_length`` LM ids, and by how much."""
    report = LengthReport(what, len(dataset), max_length)
    ids = dataset["id"] if "id" in (dataset.column_names or []) else None
    for i, (prompt, length) in enumerate(example_lengths(dataset, tokenizer)):
        if length > max_length:
            report.rows.append(i)
            report.excess.append(length - max_length)
            if len(report.names) < _SHOWN:
                report.names.append(f"row {i}" + (f" (id {ids[i]!r})" if ids is not None else "") + f": {length} ids")
            if prompt + 2 > max_length:
                report.no_room.append(i)
    return report


def fit_to_max_length(dataset: Dataset, tokenizer: AudioTextTokenizer, max_length: int, on_too_long: str = "error",
                      what: str = "training set") -> Dataset:
    """``dataset`` without its examples longer than ``max_length`` (``"drop"``), or as it is when it has
    none or they may be cut (``"cut"``); ``"error"`` refuses them with a ``ValueError``. See the module
    docstring. The counts are logged as a warning (by the first process only)."""
    if on_too_long not in ON_TOO_LONG:
        raise ValueError(f"on_too_long must be one of {ON_TOO_LONG}, got {on_too_long!r}.")
    report = length_report(dataset, tokenizer, max_length, what)
    if not report.rows:
        return dataset
    if report.no_room and on_too_long == "cut":
        raise ValueError(f"{len(report.no_room)} examples of the {what} have captions that leave no room for audio "
                         f"in max_length={max_length} (first: row {report.no_room[0]}); raise train.max_length or "
                         "shorten the captions.")
    fixes = (f"set on_too_long to 'drop' to leave them out or 'cut' to train on their first {max_length} ids (their "
             f"<|audio_end|> is never learnt), or raise max_length to {max_length + max(report.excess)} "
             "(in a recipe: data.on_too_long, train.max_length)")
    if on_too_long == "error":
        raise ValueError(f"{report.describe()}. Nothing was trained: {fixes}.")
    main = int(os.environ.get("RANK", "0")) == 0
    if on_too_long == "cut":
        if main:
            logger.warning("%s; they are cut to their first %d ids, and their <|audio_end|> is never learnt "
                           "(on_too_long=cut).", report.describe(), max_length)
        return dataset
    keep = sorted(set(range(len(dataset))) - set(report.rows))
    if not keep:
        raise ValueError(f"{report.describe()}: leaving them out (on_too_long=drop) leaves nothing to train on; "
                         f"raise max_length to {max_length + max(report.excess)} or use on_too_long=cut.")
    if main:
        logger.warning("%s; they are left out (on_too_long=drop): %d examples remain.", report.describe(), len(keep))
    return dataset.select(keep)


def check_token_ranges(dataset: Dataset, layout: Any, what: str) -> None:
    """A ``ValueError`` when the token ids of ``dataset`` exceed the layout's vocabularies: tokens of
    another codec than the one the LM is built for (found with Arrow, without reading rows into Python)."""
    import pyarrow.compute as pc

    if getattr(dataset, "_indices", None) is not None:  # a selection: its table holds other rows too
        return
    table = dataset.data.table
    for column, size, stream in (("semantic_ids", layout.semantic_vocab_size, "semantic"),
                                 ("acoustic_ids", layout.acoustic_vocab_size, "acoustic")):
        ids = pc.list_flatten(table.column(column))
        if len(ids) == 0:
            continue
        bounds = pc.min_max(ids).as_py()
        if bounds["min"] < 0 or bounds["max"] >= size:
            raise ValueError(
                f"the {what} holds {stream} ids in [{bounds['min']}, {bounds['max']}] but the LM's layout (codec "
                f"variant {layout.codec_variant!r}) has {size}: the tokens come from another codec. Build the "
                "layout and the LM for the codec that made them, or tokenise the data with this one."
            )


def check_training_data(tokenizer: AudioTextTokenizer, config: Any, train_dataset: Dataset,
                        eval_dataset: Dataset | None) -> tuple[Dataset, Dataset | None]:
    """``train_lm``'s data sets after the checks of the module docstring (long examples dropped when
    ``config.on_too_long == "drop"``; ``config``: the run's ``TrainConfig``); a ``ValueError`` names
    the first problem."""
    from semantilm.data.token_dataset import TOKEN_COLUMNS

    checked = []
    for name, data, what in (("train_dataset", train_dataset, "training set"),
                             ("eval_dataset", eval_dataset, "evaluation set")):
        if data is not None:
            missing = [c for c in TOKEN_COLUMNS[:2] if c not in (data.column_names or [])]
            if missing:
                raise ValueError(f"{name} lacks the token columns {missing}; tokenise it with "
                                 "semantilm.tokenize_corpus (or `semantilm tokenize`) and read the folder with "
                                 "semantilm.load_token_dataset.")
            if len(data) == 0:
                raise ValueError(f"{name} is empty: the {what.split()[0]} split has no rows to train on; check the "
                                 "data source (and its split and filters).")
            check_token_ranges(data, tokenizer.layout, what)
            if not config.packing:
                data = fit_to_max_length(data, tokenizer, config.max_length, config.on_too_long, what)
            if "caption" in (data.column_names or []) and int(os.environ.get("RANK", "0")) == 0:
                tokenizer.warn_unknown_characters(data["caption"], what=f"captions of the {what}")
        checked.append(data)
    return checked[0], checked[1]
