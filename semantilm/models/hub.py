"""LM checkpoints in the hub format: one folder, pushed and pulled as it is.

A checkpoint folder holds

* the transformers weights and config (``model.safetensors``, ``config.json``) or a LoRA
  adapter (``adapter_config.json`` + ``adapter_model.safetensors``),
* the text tokenizer (``semantilm_tokenizer.json`` + its files),
* the token layout with the codec variant (``semantilm_config.json``),
* where the codec that decodes its tokens comes from (``semantilm_codec.json``: hub repo or
  folder, token rate, vocabulary), so that ``semantilm generate --checkpoint`` needs nothing else.

``push_to_hub`` uploads such a folder with ``huggingface_hub``; ``resolve_checkpoint`` turns a
hub id into a local folder (downloaded once into the Hugging Face cache) and leaves local
folders as they are, so ``load_lm`` reads both.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from plumbing.io import write_json

__all__ = [
    "CODEC_REFERENCE_FILE",
    "CodecReference",
    "save_codec_reference",
    "load_codec_reference",
    "check_checkpoint_folder",
    "resolve_checkpoint",
    "check_weight_files",
    "refuse_checkpoint_folder",
    "remove_stale_checkpoint_files",
    "base_location",
    "load_adapter_base",
    "push_to_hub",
    "checkpoint_summary",
]

CODEC_REFERENCE_FILE = "semantilm_codec.json"


@dataclass
class CodecReference:
    """Where the codec of an LM checkpoint comes from (arguments of ``codec_api.load_codec``).

    name:       hub repo, local folder, ``"tiny"`` or ``"tiny-random"``.
    token_rate: official variant's tokens per second (None: the codec's own).
    vocab:      official semantic vocabulary (None: the codec's own).
    variant:    the codec's variant name, as recorded in the layout.

    ``token_rate`` / ``vocab`` choose among official variants; a codec whose files fix its variant (``tiny``,
    a ``save_pretrained`` folder) does not use them (:func:`codec.checkpoints.official_selectors`), and the
    variant check of :meth:`load` makes sure the loaded codec is the recorded one.
    """

    name: str
    token_rate: int | None
    vocab: int | None
    variant: str

    def selectors(self) -> tuple[int | None, int | None]:
        """(token_rate, vocab) as far as they choose this codec's variant."""
        from codec.checkpoints import official_selectors

        return official_selectors(self.name, self.token_rate, self.vocab)

    def command_line(self) -> str:
        """The ``--codec`` (``--token-rate`` / ``--vocab``) options that load this codec."""
        token_rate, vocab = self.selectors()
        flags = [f"--codec {self.name}"]
        flags += [f"--token-rate {token_rate}"] if token_rate is not None else []
        flags += [f"--vocab {vocab}"] if vocab is not None else []
        return " ".join(flags)

    def load(self, device: str = "cpu", cache_dir: str | None = None, decoder: bool = True,
             decoder_dtype: str | None = None) -> Any:
        """The codec itself (checked against the recorded variant); ``decoder_dtype`` as ``load_codec``."""
        from semantilm.codec_api import load_codec

        token_rate, vocab = self.selectors()
        codec = load_codec(self.name, token_rate, vocab, device, cache_dir, decoder=decoder, decoder_dtype=decoder_dtype)
        if codec.variant != self.variant:
            raise ValueError(
                f"codec {self.name!r} loaded as variant {codec.variant!r}, but the checkpoint was trained with "
                f"{self.variant!r}; pass the right codec explicitly."
            )
        return codec


def save_codec_reference(directory: str | os.PathLike, reference: CodecReference) -> Path:
    """Write ``semantilm_codec.json`` into ``directory`` (atomically)."""

    path = Path(directory) / CODEC_REFERENCE_FILE
    return write_json(path, asdict(reference))


def load_codec_reference(directory: str | os.PathLike) -> CodecReference | None:
    """The codec reference of a checkpoint folder, or None when it has none."""
    path = Path(directory) / CODEC_REFERENCE_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    try:
        return CodecReference(**data)
    except TypeError as err:
        raise ValueError(f"{path} is not a codec reference: {err}") from None


_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")


def check_checkpoint_folder(directory: str | os.PathLike) -> list[str]:
    """Raise ``ValueError`` unless ``directory`` is a complete LM checkpoint; return its files."""
    from semantilm.tokens.layout import LAYOUT_FILE
    from semantilm.tokens.tokenizer import TOKENIZER_INFO_FILE

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{str(directory)!r} is not a folder; save the LM with semantilm.save_lm first.")
    names = sorted(p.name for p in directory.iterdir())
    problems = []
    if LAYOUT_FILE not in names:
        problems.append(f"the token layout {LAYOUT_FILE}")
    if not any(n in names for n in _WEIGHT_FILES):
        problems.append(f"weights (one of {list(_WEIGHT_FILES)})")
    if TOKENIZER_INFO_FILE not in names:
        problems.append(f"the text tokenizer ({TOKENIZER_INFO_FILE})")
    if problems:
        raise ValueError(
            f"{directory} is not a complete LM checkpoint: it lacks {', '.join(problems)}. "
            "Save it with semantilm.save_lm(model, layout, folder, tokenizer=...)."
        )
    return names


def _missing_checkpoint(text: str, path: Path) -> FileNotFoundError:
    """The error for a checkpoint path that does not exist, with close names from its nearest existing folder."""
    import difflib

    parent = path.parent
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
    hint = ""
    if parent.is_dir() and parent != path:
        children = [p.name for p in parent.iterdir() if p.is_dir()]
        wanted = path.relative_to(parent).parts[0] if path.is_relative_to(parent) else path.name
        close = difflib.get_close_matches(wanted, children, n=3)
        if close:
            hint = f" Did you mean {', '.join(repr(str(parent / c)) for c in close)}?"
    return FileNotFoundError(
        f"LM checkpoint {text!r} does not exist (no such folder, and not a hub id of the form owner/name).{hint} "
        "Give the folder written by semantilm.save_lm or by training, or a hub repository id."
    )


def resolve_checkpoint(
    name_or_path: str | os.PathLike,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> Path:
    """A local folder for an LM checkpoint: the folder itself when it exists, else the snapshot of the
    hub repository ``owner/name``.

    What looks like a path (a ``Path``, a leading ``.``, ``/`` or ``~``, more than one ``/``, a ``\\``,
    or a first part that exists here) never becomes a hub lookup: when it does not exist it is a
    ``FileNotFoundError`` naming it, as is a file where a folder is expected.
    """
    import re

    from codec.checkpoints import looks_like_a_path

    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise FileNotFoundError(f"LM checkpoint {text!r} is a file, not a checkpoint folder; give the folder "
                                "that holds it (written by semantilm.save_lm or by training).")
    is_repo_id = re.fullmatch(r"[\w.-]+/[\w.-]+", text) is not None
    if not isinstance(name_or_path, str) or not is_repo_id or looks_like_a_path(text) or Path(text.split("/")[0]).exists():
        raise _missing_checkpoint(text, path)
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import RepositoryNotFoundError, RevisionNotFoundError

    try:
        return Path(snapshot_download(text, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only))
    except (RepositoryNotFoundError, RevisionNotFoundError) as err:
        raise FileNotFoundError(f"LM checkpoint {text!r} is not a local folder, and the hub has no such repository "
                                f"(or revision) you can read: {type(err).__name__}: {err}") from None
    except Exception as err:  # offline, network, cache errors
        raise OSError(f"LM checkpoint {text!r} is not a local folder, and it could not be fetched from the hub "
                      f"({type(err).__name__}: {err}). Check the name and the network, or pass a local folder.") from err


# Files of a checkpoint that a new save into the same folder must not leave behind (another model's
# weights, adapter, tokenizer or codec), by glob pattern.
CHECKPOINT_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "model*.safetensors",
                    "model.safetensors.index.json", "pytorch_model*.bin", "semantilm_codec.json",
                    "semantilm_text.model", "semantilm_tokenizer.json", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json", "generation_config.json", "config.json", "semantilm_config.json")


def refuse_checkpoint_folder(directory: str | os.PathLike, overwrite: bool) -> None:
    """An ``OutputExistsError`` when ``directory`` holds files and ``overwrite`` is false: a save there
    would replace another checkpoint's files."""
    from plumbing.io import OutputExistsError

    directory = Path(directory)
    if overwrite or not directory.is_dir():
        return
    names = sorted(p.name for p in directory.iterdir())
    if names:
        raise OutputExistsError(
            f"{str(directory)!r} is not empty (it holds {', '.join(names[:4])}{', ...' if len(names) > 4 else ''}); "
            "nothing was written. Pass overwrite=True to replace the checkpoint in it, or save to a new folder."
        )


def remove_stale_checkpoint_files(directory: Path, written: set[str]) -> None:
    """Delete the checkpoint files of an earlier save in ``directory`` that the new save did not write."""
    for pattern in CHECKPOINT_FILES:
        for path in directory.glob(pattern):
            if path.name not in written and path.is_file():
                path.unlink()


def base_location(name: str | None) -> str | None:
    """A base LM's name as a LoRA adapter records it: a local folder as an absolute path, a hub id as it is."""
    if not name:
        return name
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name


def load_adapter_base(adapter_dir: Path, **kwargs: Any) -> Any:
    """The base LM of the LoRA adapter in ``adapter_dir`` (``kwargs``: of ``from_pretrained``); a base
    that cannot be found or loaded is named, with what to do."""
    from peft import PeftConfig
    from transformers import AutoModelForCausalLM

    from codec.checkpoints import looks_like_a_path

    base = PeftConfig.from_pretrained(adapter_dir).base_model_name_or_path
    fix = (f"put the base LM there, or set base_model_name_or_path in {str(adapter_dir / 'adapter_config.json')!r} to "
           "its folder (an absolute path) or hub id; semantilm.models.lora.merge_lora_checkpoint then writes a "
           "checkpoint that needs no base")
    if not base:
        raise ValueError(f"the LoRA adapter in {str(adapter_dir)!r} does not name its base LM; {fix}.")
    path = Path(base).expanduser()
    if not path.is_dir() and (path.exists() or looks_like_a_path(base)):
        raise FileNotFoundError(f"the LoRA adapter in {str(adapter_dir)!r} was trained on the base LM {base!r}, which "
                                f"is not a folder here (a relative path is relative to the working folder); {fix}.")
    try:
        return AutoModelForCausalLM.from_pretrained(base, **kwargs)
    except OSError as err:
        raise OSError(f"the base LM {base!r} of the LoRA adapter in {str(adapter_dir)!r} could not be loaded "
                      f"({type(err).__name__}: {err}); {fix}.") from err


def check_weight_files(directory: str | os.PathLike) -> list[Path]:
    """The ``*.safetensors`` files of a checkpoint folder, each checked to open (header and size).

    A damaged file (truncated, not safetensors) is a ``ValueError`` naming it; a folder with no
    weights at all (no safetensors, no ``pytorch_model.bin``) a ``FileNotFoundError``.
    """
    from safetensors import SafetensorError, safe_open

    directory = Path(directory)
    files = sorted(directory.glob("*.safetensors"))
    if not files and not any((directory / n).is_file() for n in ("pytorch_model.bin", "model.safetensors.index.json")):
        raise FileNotFoundError(f"{str(directory)!r} holds no model weights (one of {list(_WEIGHT_FILES)}); save the "
                                "LM with semantilm.save_lm, or download the checkpoint again.")
    for file in files:
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{str(file)!r} is damaged: {err} (a truncated or interrupted download or copy?). "
                             "Download the checkpoint again, or re-save it with semantilm.save_lm.") from None
    return files


def push_to_hub(
    directory: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str = "Upload semantilm checkpoint",
) -> str:
    """Upload an LM checkpoint folder (``save_lm`` output or a training ``checkpoint-N``) to the hub.

    The folder is checked first (layout, weights, tokenizer); the repository is created when
    missing. Returns the URL of the commit.
    """
    check_checkpoint_folder(directory)
    if load_codec_reference(directory) is None:
        import logging

        logging.getLogger(__name__).warning(
            "%s has no %s: users will have to name the codec themselves.", directory, CODEC_REFERENCE_FILE
        )
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        folder_path=str(directory), repo_id=repo_id, repo_type="model", revision=revision,
        commit_message=commit_message, ignore_patterns=["optimizer.pt", "scheduler.pt", "rng_state*.pth", "trainer_state.json", "training_args.bin"],
    )
    return str(getattr(info, "commit_url", info))


def _model_row(folder: Path) -> tuple[str, str] | None:
    if (folder / "adapter_config.json").is_file():
        adapter = json.loads((folder / "adapter_config.json").read_text())
        return "model", f"LoRA adapter (r={adapter.get('r')}) on {adapter.get('base_model_name_or_path')}"
    if (folder / "config.json").is_file():
        cfg = json.loads((folder / "config.json").read_text())
        return "model", (f"{cfg.get('model_type')}: {cfg.get('num_hidden_layers')} layers, hidden size "
                         f"{cfg.get('hidden_size')}, context {cfg.get('max_position_embeddings')}")
    return None


def checkpoint_summary(checkpoint: str | os.PathLike) -> list[tuple[str, str]]:
    """(name, value) rows describing an LM checkpoint (folder or hub id): model, pattern, codec, id ranges.

    A folder without a token layout is a ``FileNotFoundError``.
    """
    from semantilm.tokens.layout import LAYOUT_FILE, AudioTokenLayout
    from semantilm.tokens.tokenizer import TOKENIZER_INFO_FILE

    folder = resolve_checkpoint(checkpoint)
    if not (folder / LAYOUT_FILE).is_file():
        raise FileNotFoundError(f"{str(checkpoint)!r} has no {LAYOUT_FILE}: it is not a semantilm LM checkpoint.")
    layout = AudioTokenLayout.from_pretrained(folder)
    rows = [("checkpoint", str(folder))]
    model = _model_row(folder)
    if model is not None:
        rows.append(model)
    rows.append(("pattern", layout.pattern))
    rows.append(("codec", f"{layout.codec_variant} ({layout.frame_rate:g} frames/s = {layout.tokens_per_second:g} "
                          f"LM tokens/s, {layout.sample_rate} Hz)"))
    ref = load_codec_reference(folder)
    rows.append(("decode with", ref.command_line() if ref else f"unknown (no {CODEC_REFERENCE_FILE}): pass --codec"))
    specials = ", ".join(f"{name}={layout.special_id(name)}" for name in layout.special_tokens)
    rows += [
        ("text ids", f"[0, {layout.text_vocab_size})"),
        ("special ids", f"[{layout.special_offset}, {layout.semantic_offset}): {specials}"),
        ("semantic ids", f"[{layout.semantic_offset}, {layout.acoustic_offset}) ({layout.semantic_vocab_size})"),
        ("acoustic ids", f"[{layout.acoustic_offset}, {layout.vocab_size}) ({layout.acoustic_vocab_size})"),
        ("vocabulary", str(layout.vocab_size)),
    ]
    if (folder / TOKENIZER_INFO_FILE).is_file():
        tok = json.loads((folder / TOKENIZER_INFO_FILE).read_text())
        rows.append(("text tokenizer", f"{tok.get('kind')}{', bos first' if tok.get('add_bos') else ''}"))
    return rows
