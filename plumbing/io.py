"""Small file and tensor helpers shared by both packages: atomic writes, JSON files, padding.

Every file the toolkit writes goes through :func:`atomic_write`, so a reader never sees a
half-written file and an interrupted run leaves the previous version (or nothing) in place.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "atomic_write", "write_json", "read_json_object", "pad_sequences", "pad_stack", "OutputExistsError",
    "refuse_existing", "follow_umask", "OutputPathError", "check_output_path", "path_list",
]


class OutputExistsError(FileExistsError):
    """An output file is already there and the caller did not ask to replace it."""


def refuse_existing(paths: Sequence[str | os.PathLike], overwrite: bool = False) -> None:
    """An :class:`OutputExistsError` naming the first of ``paths`` that exists, unless ``overwrite``.

    Called with every output of a run before anything is computed or written, so that a refused run
    leaves the folder exactly as it was.
    """
    if overwrite:
        return
    existing = [Path(p) for p in paths if Path(p).exists()]
    if existing:
        raise OutputExistsError(
            f"{len(existing)} of the {len(paths)} output files already exist (first: {str(existing[0])!r}); nothing "
            "was written. Pass overwrite=True (--overwrite on the command line) to replace them, or write to "
            "another folder."
        )


class OutputPathError(OSError):
    """An output path that cannot be written: a file where a folder is needed (or the reverse), a
    parent that is a file, or a location without write permission."""


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _unwritable(folder: Path) -> str | None:
    """Why no file can be created in the existing ``folder``, or None. Tries it with an unnamed temporary
    file (no name appears in the folder), so read-only file systems count as well as permissions."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        return err.strerror or type(err).__name__
    return None


def check_output_path(path: str | os.PathLike, kind: str = "folder", what: str = "output folder") -> Path:
    """``path`` as a Path, or an :class:`OutputPathError` that names it (as ``what``) and says why it
    cannot be written, before any work starts.

    kind: "folder" (created when missing, may exist) or "file" (its folder is created when missing).
    Refused: a file where a folder is meant or a folder where a file is meant, a missing folder under
    a file, and a location where no file can be created (permissions, read-only file system).
    """
    if kind not in ("folder", "file"):
        raise ValueError(f"kind must be 'folder' or 'file', got {kind!r}.")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a path (str or os.PathLike), got {type(path).__name__} ({path!r:.80}).")
    path = Path(path)
    text = f"{what} {str(path)!r}"
    try:
        if kind == "folder" and path.exists() and not path.is_dir():
            raise OutputPathError(f"{text} is a file, not a folder; give a folder (new or existing) for the outputs.")
        if kind == "file" and path.is_dir():
            raise OutputPathError(f"{text} is a folder; give the name of the file to write (e.g. "
                                  f"{str(path / 'result.json')!r}).")
        start = path if kind == "folder" else path.parent
        existing = _nearest_existing(start)
        if not existing.is_dir():
            raise OutputPathError(f"{text} cannot be created: {str(existing)!r} is a file, not a folder; choose "
                                  "a path under a folder.")
    except PermissionError as err:
        raise OutputPathError(f"{text} cannot be used: {err.strerror} ({str(err.filename)!r}).") from None
    reason = _unwritable(existing)
    if reason is not None:
        raise OutputPathError(f"{text} cannot be written: no file can be created in {str(existing)!r} ({reason}); "
                              "choose a writable location.")
    return path


def path_list(paths: str | os.PathLike | Iterable[str | os.PathLike], name: str = "paths") -> list[str | os.PathLike]:
    """One path (a ``str`` or ``os.PathLike``) as a list of one; a list or other iterable of paths as a
    list. A string is never walked character by character. Other items are a ``TypeError`` naming them,
    and no path at all is a ``ValueError``."""
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    if isinstance(paths, (bytes, bytearray)) or not isinstance(paths, Iterable):
        raise TypeError(f"{name} must be a path (str or os.PathLike) or a list of paths, got {type(paths).__name__}.")
    items = list(paths)
    for i, item in enumerate(items):
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"{name}[{i}] must be a path (str or os.PathLike), got {type(item).__name__} ({item!r}).")
    if not items:
        raise ValueError(f"{name} is empty; give at least one file or folder.")
    return items


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def follow_umask(*paths: str | os.PathLike) -> None:
    """Give each file of ``paths`` (a folder: the files directly in it) the permissions of a plain
    ``open(path, "w")``: 0666 less the umask.

    For files that libraries write through private temporary files (``save_pretrained`` of
    transformers and peft writes its safetensors 0600), so that a checkpoint is readable as far
    as the umask allows, like every other file the toolkit writes.
    """
    mode = 0o666 & ~_umask()
    for path in map(Path, paths):
        files = [p for p in path.iterdir() if p.is_file() and not p.is_symlink()] if path.is_dir() else [path]
        for file in files:
            if file.is_file() and (file.stat().st_mode & 0o777) != mode:
                os.chmod(file, mode)


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[str], Any]) -> Path:
    """Write ``path`` through a temporary file in the same folder and an atomic rename.

    data: the bytes or text to write, or a function that writes the file whose path it is given
          (for writers that only take a path, e.g. safetensors or soundfile).
    The file gets the permissions of a plain ``open(path, "w")`` (0666 less the umask), not the
    0600 of a temporary file, so that colleagues on shared storage can read it.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"cannot write {str(path)!r}: it is a folder; give another file name.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError:
        check_output_path(path, "file", "output file")  # says why: a parent that is a file, no permission
        raise
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, data: Any, sort_keys: bool = True) -> Path:
    """``data`` as indented JSON (one trailing newline), written atomically."""
    return atomic_write(path, json.dumps(data, indent=2, sort_keys=sort_keys) + "\n")


def read_json_object(path: str | os.PathLike, what: str, remedy: str) -> dict:
    """A JSON object from ``path``; a ``ValueError`` naming ``what`` and ``remedy`` when the file is damaged."""
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} {str(path)!r} is not valid JSON ({err}): the file is damaged; {remedy}.") from err
    if not isinstance(data, dict):
        raise ValueError(f"{what} {str(path)!r} holds a {type(data).__name__}, not a JSON object; {remedy}.")
    return data


def pad_sequences(sequences: Sequence[Sequence[int]], pad_value: int, side: str = "right") -> torch.Tensor:
    """Lists of ids of different lengths -> LongTensor[B, max_len], padded on ``side``."""
    import torch

    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}.")
    width = max((len(s) for s in sequences), default=0)
    out = torch.full((len(sequences), width), pad_value, dtype=torch.long)
    for i, seq in enumerate(sequences):
        if len(seq):
            row = torch.as_tensor(list(seq), dtype=torch.long)
            if side == "left":
                out[i, width - len(seq) :] = row
            else:
                out[i, : len(seq)] = row
    return out


def pad_stack(tensors: Sequence[torch.Tensor], value: float = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensors ``[T_i, *rest]`` -> (``[B, max T_i, *rest]`` padded with ``value`` after each, LongTensor[B] of T_i).

    The batch keeps the first tensor's dtype and device; an empty list is an error.
    """
    import torch

    if not tensors:
        raise ValueError("pad_stack needs at least one tensor.")
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.long)
    first = tensors[0]
    out = first.new_full((len(tensors), int(lengths.max()), *first.shape[1:]), value)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
    return out, lengths
