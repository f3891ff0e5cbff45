"""Token folders on disk: the output of ``semantilm tokenize`` and what training reads.

Layout of a token folder ``DIR``::

    DIR/semantilm_tokens.json      manifest: codec, token rate, vocabularies, rows, hours, failures, input
    DIR/failures.jsonl             one {"id", "reason", "shard"} line per input that could not be tokenised
    DIR/train/shard-00000.parquet  token rows of input shard 0 (id, semantic_ids, acoustic_ids,
    DIR/train/shard-00001.parquet  num_frames, duration + the carried columns), ...
    DIR/.work/                     run bookkeeping: run.json, done-K.json, failures-K.jsonl (per shard),
                                   busy-K (shard K started), clock-R (process R started)

The shards live in ``train/`` so that ``datasets.load_dataset("parquet", data_dir=DIR)`` finds
exactly them (its split patterns leave the manifest and the hidden folders alone).
``load_token_dataset(DIR)`` returns the rows as a memory-mapped ``datasets.Dataset``, after checking
every shard against the row counts the manifest records (a missing, short or damaged shard is a
``TokenFolderError``); a rerun of ``semantilm tokenize`` encodes such shards again (:func:`damaged_shards`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plumbing.config_file import ConfigError
from plumbing.io import atomic_write, read_json_object, write_json

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

__all__ = [
    "TokenFolderError",
    "damaged_shards",
    "MANIFEST",
    "FAILURES",
    "TOKEN_COLUMNS",
    "is_token_dataset",
    "is_token_folder",
    "load_token_dataset",
    "token_dataset_info",
    "token_record_file",
    "shard_path",
]

MANIFEST = "semantilm_tokens.json"
FAILURES = "failures.jsonl"
SHARDS_DIR = "train"
WORK_DIR = ".work"
FORMAT = "semantilm-tokens"
TOKEN_COLUMNS = ("semantic_ids", "acoustic_ids", "num_frames")  # of every token row (see the layout above)


class TokenFolderError(ValueError):
    """A token folder whose shards do not hold what its manifest records (missing, short or damaged)."""


def shard_path(directory: str | os.PathLike, k: int) -> Path:
    return Path(directory) / SHARDS_DIR / f"shard-{k:05d}.parquet"


def done_path(directory: str | os.PathLike, k: int) -> Path:
    return Path(directory) / WORK_DIR / f"done-{k:05d}.json"


def shard_failures_path(directory: str | os.PathLike, k: int) -> Path:
    return Path(directory) / WORK_DIR / f"failures-{k:05d}.jsonl"


def run_clock(directory: Path, rank: int) -> float:
    """This process's start, on the clock of the folder's file system (a file touched now: its mtime).

    Times compared with it (see :func:`busy_since`) are mtimes from the same file system, so the
    clocks of several machines writing one shared folder need not agree."""
    path = directory / WORK_DIR / f"clock-{rank}"
    path.touch()
    return path.stat().st_mtime


def mark_busy(directory: Path, k: int) -> None:
    """Record that a process starts encoding shard ``k`` now."""
    (directory / WORK_DIR / f"busy-{k:05d}").touch()


def busy_since(directory: Path, k: int, since: float) -> bool:
    """Whether a process started encoding shard ``k`` after ``since`` (a mark left by a run that was
    stopped before is older, and does not count)."""
    try:
        return (directory / WORK_DIR / f"busy-{k:05d}").stat().st_mtime > since
    except FileNotFoundError:
        return False


def is_token_dataset(dataset: Any) -> bool:
    """Whether ``dataset`` already holds codec tokens (its columns)."""
    names = getattr(dataset, "column_names", None) or []
    return all(c in names for c in TOKEN_COLUMNS[:2])


def is_token_folder(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` is a finished token folder (it has the manifest)."""
    return (Path(directory) / MANIFEST).is_file()


def token_record_file(directory: str | os.PathLike) -> Path | None:
    """The file that records a folder of tokens: the manifest, or the record of a folder an earlier
    version wrote (:mod:`semantilm.data.older_token_folders`); None when there is none."""
    from semantilm.data.older_token_folders import OLDER_RECORDS

    return next((Path(directory) / n for n in (MANIFEST, *OLDER_RECORDS) if (Path(directory) / n).is_file()), None)


def token_dataset_info(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of a token folder (or the record of an older one); None if neither."""
    path = token_record_file(directory)
    return None if path is None else read_json_object(path, "token dataset info", "tokenise the data set again")


def load_token_dataset(directory: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Dataset:
    """The token rows of a token folder, as a memory-mapped ``datasets.Dataset`` (shard order, then input order).

    cache_dir: where ``datasets`` keeps its Arrow copy (default ``DIR/.cache``, hidden from ``data_dir`` loads).
    Folders written by earlier versions are read as they are (see :mod:`semantilm.data.older_token_folders`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features, load_dataset

    directory = Path(directory)
    record = token_record_file(directory)
    if record is not None and record.name != MANIFEST:
        from semantilm.data.older_token_folders import read_older_token_folder

        data, problem = read_older_token_folder(directory, record.name)
        if problem is not None:
            raise TokenFolderError(problem)
        if not is_token_dataset(data):
            raise ValueError(f"{str(directory)!r} has a token record ({record.name}) but no token columns; "
                             "tokenise the data set again.")
        return data
    if record is None:
        raise FileNotFoundError(f"{str(directory)!r} is not a finished token folder (no {MANIFEST}); "
                                "run `semantilm tokenize` (again) to complete it.")
    manifest = token_dataset_info(directory)
    files = check_shards(directory, manifest)
    if not files:
        raise ValueError(f"token folder {str(directory)!r} has no rows (see its {FAILURES}).")
    schemas = [pq.read_schema(f) for f in files]
    features = None
    if any(not s.equals(schemas[0]) for s in schemas[1:]):  # e.g. a metadata column that is all null in a shard
        features = Features.from_arrow_schema(pa.unify_schemas(schemas, promote_options="permissive"))
    cache = str(cache_dir) if cache_dir is not None else str(directory / ".cache")
    try:
        return load_dataset("parquet", data_files=[str(f) for f in files], split="train", cache_dir=cache,
                            features=features)
    except (pa.ArrowException, OSError) as err:  # a shard damaged inside, past its footer
        bad = [f.name for f in files if _unreadable(f)]
        raise _damaged(directory, [f"{name} cannot be read" for name in bad] or [f"{type(err).__name__}: {err}"]) from err


def _unreadable(path: Path) -> bool:
    import pyarrow.parquet as pq

    try:
        pq.read_table(path)
    except Exception:  # noqa: BLE001 - any failure to read the file is what is asked
        return True
    return False


def _damaged(directory: Path, problems: list[str]) -> TokenFolderError:
    return TokenFolderError(
        f"token folder {str(directory)!r} is damaged: {'; '.join(problems)}. Rerun `semantilm tokenize` with the "
        f"same arguments (input, --codec, --shard-size) and --out {str(directory)!r} to repair it: it encodes the "
        "missing shards again and keeps the others.")


def shard_rows(path: Path) -> int | None:
    """Rows of a Parquet shard from its footer; None when the file is missing, cut off or not Parquet."""
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(path).num_rows)
    except Exception:  # noqa: BLE001 - missing, truncated or not Parquet: all mean "not the shard written"
        return None


def _shard_problem(directory: Path, k: int, rows: int) -> str | None:
    """What is wrong with shard ``k`` that should hold ``rows`` rows (None: nothing)."""
    path = shard_path(directory, k)
    if rows == 0:
        return None
    if not path.is_file():
        return f"{SHARDS_DIR}/{path.name} is missing (it should hold {rows} rows)"
    found = shard_rows(path)
    if found is None:
        return f"{SHARDS_DIR}/{path.name} is cut off or not Parquet (it should hold {rows} rows)"
    if found != rows:
        return f"{SHARDS_DIR}/{path.name} holds {found} rows, the manifest records {rows}"
    return None


def check_shards(directory: Path, manifest: dict[str, Any]) -> list[Path]:
    """The shard files of a finished folder, after checking them against the manifest's row counts
    (older manifests record only the total); a ``TokenFolderError`` naming every bad shard."""
    counts = manifest.get("shard_rows")
    files = sorted((directory / SHARDS_DIR).glob("shard-*.parquet"))
    if counts is None:
        found = [shard_rows(f) for f in files]
        problems = [f"{SHARDS_DIR}/{f.name} is cut off or not Parquet" for f, n in zip(files, found) if n is None]
        total = sum(n for n in found if n is not None)
        if not problems and total != manifest.get("rows", total):
            problems.append(f"the shards hold {total} rows, the manifest records {manifest['rows']}")
    else:
        problems = [p for k, rows in enumerate(counts) if (p := _shard_problem(directory, k, int(rows)))]
        extra = sorted(set(files) - {shard_path(directory, k) for k, rows in enumerate(counts) if rows})
        problems += [f"{SHARDS_DIR}/{f.name} is not a shard of this folder's manifest" for f in extra]
    if problems:
        raise _damaged(directory, problems)
    return files


def damaged_shards(directory: Path) -> list[int]:
    """Shards recorded as done whose Parquet file is missing, short or damaged. Their records (and the
    manifest) are removed, so that a run encodes them again."""
    work = directory / WORK_DIR
    damaged = []
    for done in sorted(work.glob("done-*.json")):
        k = int(done.stem.split("-")[1])
        record = read_json_object(done, "shard record", "delete it")
        if _shard_problem(directory, k, int(record.get("rows", 0))) is not None:
            damaged.append(k)
    for k in damaged:
        done_path(directory, k).unlink(missing_ok=True)
        shard_failures_path(directory, k).unlink(missing_ok=True)
        shard_path(directory, k).unlink(missing_ok=True)
    if damaged:
        (directory / MANIFEST).unlink(missing_ok=True)
    return damaged


def start_run(directory: Path, run_info: dict[str, Any]) -> None:
    """Record what this folder is made of, or refuse a folder made with another codec or from another input
    (or by an earlier version, which wrote other files)."""
    record = token_record_file(directory)
    if record is not None and record.name != MANIFEST:
        raise ConfigError(f"the output folder {str(directory)!r} holds tokens written by an earlier version "
                          f"({record.name}); semantilm.load_token_dataset reads them as they are. To tokenise, use "
                          "another --out folder (or delete this one).")
    path = directory / WORK_DIR / "run.json"
    run_info = json.loads(json.dumps(run_info))  # tuples -> lists, as stored
    stored = read_json_object(path, "token folder run record", "delete the folder") if path.is_file() else None
    if stored is None and is_token_folder(directory):
        stored = {k: token_dataset_info(directory).get(k) for k in run_info}
    if stored is not None and stored != run_info:
        diff = sorted(k for k in run_info if stored.get(k) != run_info[k])
        what = "another codec" if "codec" in diff else f"other settings ({', '.join(diff)})"
        variant = (stored.get("codec") or {}).get("variant")
        raise ConfigError(f"the output folder {str(directory)!r} holds tokens made with {what} "
                          f"(codec {variant!r}); use another --out folder, or delete this one.")
    if stored is None:
        write_json(path, run_info)


def token_types() -> dict[str, Any]:
    """Arrow types of the token columns (ids fit in int32: vocabularies are far smaller)."""
    import pyarrow as pa

    return {"id": pa.string(), "semantic_ids": pa.list_(pa.int32()), "acoustic_ids": pa.list_(pa.int32()),
            "num_frames": pa.int32(), "duration": pa.float64()}


def _table(rows: list[dict[str, Any]], types: dict[str, Any]) -> Any:
    """Rows as an Arrow table with every column any row has (missing values null); columns with a known
    type get it (so every shard has the same schema). A column whose values are of kinds Arrow cannot
    hold together is a ``ValueError`` naming it and two inputs."""
    import pyarrow as pa

    names = list(dict.fromkeys(name for row in rows for name in row))
    try:
        table = pa.Table.from_pydict({name: [row.get(name) for row in rows] for name in names})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise ValueError(_mixed_column(rows, names, err)) from err
    for name, kind in types.items():
        if name in table.column_names and table.schema.field(name).type != kind:
            table = table.set_column(table.column_names.index(name), name, table[name].cast(kind))
    return table


def _mixed_column(rows: list[dict[str, Any]], names: list[str], err: Exception) -> str:
    """Which carried column holds values of different kinds (e.g. a number and a text), naming two inputs."""
    import pyarrow as pa

    for name in names:
        try:
            pa.array([row.get(name) for row in rows])
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            kinds: dict[str, str] = {}
            for row in rows:
                kinds.setdefault(type(row.get(name)).__name__, str(row["id"]))
            seen = ", ".join(f"{kind} in {item!r}" for kind, item in kinds.items() if kind != "NoneType")
            return (f"metadata column {name!r} holds values of different kinds ({seen}); give it one kind in "
                    "every input (e.g. all text) and rerun")
    return f"the carried metadata cannot be stored ({err})"


def write_shard(directory: Path, k: int, rows: list[dict[str, Any]], failures: list[dict[str, Any]],
                types: dict[str, Any] | None = None) -> dict:
    """Write shard ``k``: its failure records, then its rows (atomically), then its done marker.
    types: Arrow types of columns (default: the token columns'; others are inferred from the rows)."""
    import pyarrow.parquet as pq

    lines = "".join(json.dumps({**f, "shard": k}, sort_keys=True) + "\n" for f in failures)
    atomic_write(shard_failures_path(directory, k), lines)
    if rows:
        table = _table(rows, {**token_types(), **(types or {})})
        atomic_write(shard_path(directory, k), lambda tmp: pq.write_table(table, tmp))
    else:
        shard_path(directory, k).unlink(missing_ok=True)
    summary = {"rows": len(rows), "seconds": float(sum(r["duration"] for r in rows)), "failures": len(failures),
               "frames": int(sum(r["num_frames"] for r in rows)), "inputs": len(rows) + len(failures)}
    write_json(done_path(directory, k), summary)
    return summary


def shard_done(directory: Path, k: int) -> bool:
    return done_path(directory, k).is_file()


def finish_run(directory: Path, run_info: dict[str, Any], num_shards: int, extra: dict[str, Any]) -> dict | None:
    """When every shard is done: merge the failure records into ``failures.jsonl`` and write the manifest.

    Returns the manifest, or None while shards are missing. Any process may call it: what it writes
    depends only on the shards, so two processes finishing together write the same files.
    """
    if not all(shard_done(directory, k) for k in range(num_shards)):
        return None
    done = [read_json_object(done_path(directory, k), "shard record", "delete it") for k in range(num_shards)]
    lines = "".join(shard_failures_path(directory, k).read_text() for k in range(num_shards)
                    if shard_failures_path(directory, k).is_file())
    atomic_write(directory / FAILURES, lines)
    codec = run_info["codec"]
    manifest = {
        "format": FORMAT, "version": 3, **run_info, **extra,
        "variant": codec["variant"], "frame_rate": codec["frame_rate"], "token_rate": codec["frame_rate"] * 2,
        "semantic_vocab_size": codec["semantic_vocab_size"], "acoustic_vocab_size": codec["acoustic_vocab_size"],
        "num_shards": num_shards, "rows": sum(d["rows"] for d in done), "frames": sum(d["frames"] for d in done),
        "hours": sum(d["seconds"] for d in done) / 3600.0, "failures": sum(d["failures"] for d in done),
        "num_rows": sum(d["rows"] for d in done),
        "inputs": sum(d.get("inputs", d["rows"] + d["failures"]) for d in done),
        "shard_rows": [d["rows"] for d in done],
    }
    write_json(directory / MANIFEST, manifest)
    return manifest
