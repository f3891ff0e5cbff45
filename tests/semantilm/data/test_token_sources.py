"""Every input kind of ``tokenize_corpus`` (folder, datasets, Parquet, stream, tar), carried metadata,
and the token folder readers."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import soundfile as sf

from tests.semantilm.data.clips import RATE, clip


@pytest.fixture(scope="module")
def codec():
    from semantilm.codec_api import load_codec

    return load_codec("tiny-random", 50, 16384, "cpu", None, decoder=False)


def tokenize(source, out, codec, **fields):
    from semantilm.data.corpus_tokens import tokenize_corpus
    from semantilm.data.token_dataset import load_token_dataset
    from semantilm.data.tokenize_settings import TokenizeSettings

    settings = TokenizeSettings(**{"num_workers": 0, **fields})
    result = tokenize_corpus(source, codec, out, settings=settings, progress=False)
    assert result.manifest is not None
    return {r["id"]: r for r in load_token_dataset(out)}


def wav_bytes(wave: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def test_the_same_clip_gives_the_same_tokens_through_folder_dataset_parquet_and_tar(tmp_path, codec, one_torch_thread):
    from datasets import Audio, Dataset

    waves = {f"clip{i}": clip(i, 0.4 + 0.1 * i) for i in range(3)}
    folder = tmp_path / "folder"
    folder.mkdir()
    for key, wave in waves.items():
        (folder / f"{key}.wav").write_bytes(wav_bytes(wave))
    (folder / "metadata.jsonl").write_text("".join(
        json.dumps({"file_name": f"{k}.wav", "caption": f"about {k}", "score": i}) + "\n" for i, k in enumerate(waves)))
    by_folder = tokenize(str(folder), tmp_path / "t_folder", codec)

    cells = [{"bytes": wav_bytes(w), "path": None} for w in waves.values()]
    data = Dataset.from_dict({"audio": cells, "caption": [f"about {k}" for k in waves], "id": list(waves)})
    data = data.cast_column("audio", Audio())
    by_dataset = tokenize(data, tmp_path / "t_dataset", codec)
    data.to_parquet(str(tmp_path / "data.parquet"))
    by_parquet = tokenize(str(tmp_path / "data.parquet"), tmp_path / "t_parquet", codec)
    by_stream = tokenize(data.to_iterable_dataset(), tmp_path / "t_stream", codec, shard_size=2)
    data.save_to_disk(str(tmp_path / "saved"))
    by_saved = tokenize(str(tmp_path / "saved"), tmp_path / "t_saved", codec)

    tar_path = tmp_path / "shards" / "part-000.tar"
    tar_path.parent.mkdir()
    with tarfile.open(tar_path, "w") as tar:
        for key, wave in waves.items():
            for name, payload in ((f"{key}.wav", wav_bytes(wave)), (f"{key}.json", json.dumps({"score": 1}).encode()),
                                  (f"{key}.txt", f"about {key}".encode())):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    by_tar = tokenize(str(tar_path.parent), tmp_path / "t_tar", codec)
    assert tokenize(str(tar_path.parent / "*.tar"), tmp_path / "t_glob", codec) == by_tar

    for i, key in enumerate(waves):
        reference = by_folder[f"{key}.wav"]
        assert reference["caption"] == f"about {key}" and reference["score"] == i
        assert reference["num_frames"] == len(reference["semantic_ids"]) >= len(waves[key]) / RATE * 25
        assert reference["duration"] == pytest.approx(len(waves[key]) / RATE)
        for rows, row_id in ((by_dataset, str(i)), (by_parquet, str(i)), (by_stream, str(i)), (by_saved, str(i)),
                             (by_tar, key)):
            row = rows[row_id]
            assert (row["semantic_ids"], row["acoustic_ids"]) == (reference["semantic_ids"], reference["acoustic_ids"])
            assert row["caption"] == f"about {key}"
    assert by_dataset["0"]["source_id"] == "clip0"  # a carried column named like a token column is renamed
    assert by_tar["clip0"]["score"] == 1


def test_caption_column_is_renamed_and_checked(tmp_path, codec, one_torch_thread):
    from datasets import Dataset

    from plumbing.config_file import ConfigError

    data = Dataset.from_dict({"audio": [{"array": clip(0), "sampling_rate": RATE}], "text": ["a noise"]})
    rows = tokenize(data, tmp_path / "t", codec, caption_column="text")
    assert rows["0"]["caption"] == "a noise" and "text" not in rows["0"]
    with pytest.raises(ConfigError, match="caption_column 'words' is not a column"):
        tokenize(data, tmp_path / "t2", codec, caption_column="words")


def test_multichannel_follows_the_mono_rule_and_int_pcm_is_scaled(tmp_path, codec, one_torch_thread):
    from datasets import Dataset

    first, second = clip(1), clip(2)
    stereo = tmp_path / "stereo" / "x.wav"
    stereo.parent.mkdir()
    sf.write(stereo, np.stack([first, second], axis=1), RATE, subtype="FLOAT")
    mono = tmp_path / "mono" / "x.wav"
    mono.parent.mkdir()
    sf.write(mono, first, RATE, subtype="FLOAT")
    from_stereo = tokenize(str(stereo.parent), tmp_path / "t1", codec)["x.wav"]
    from_mono = tokenize(str(mono.parent), tmp_path / "t2", codec)["x.wav"]
    assert from_stereo["semantic_ids"] == from_mono["semantic_ids"]
    assert from_stereo["acoustic_ids"] == from_mono["acoustic_ids"]

    pcm = np.round(first * 32767).astype(np.int16)
    data = Dataset.from_dict({"audio": [{"array": pcm.tolist(), "sampling_rate": RATE}]})
    ints = tokenize(data.with_format(None), tmp_path / "t3", codec)["0"]
    floats = tokenize(Dataset.from_dict({"audio": [{"array": (pcm / 32768.0).astype(np.float32), "sampling_rate": RATE}]}),
                      tmp_path / "t4", codec)["0"]
    assert (ints["semantic_ids"], ints["acoustic_ids"]) == (floats["semantic_ids"], floats["acoustic_ids"])


def test_token_folder_readers(tmp_path, codec, one_torch_thread):
    import datasets

    from codec.data.corpus import load_corpus
    from plumbing.config_file import ConfigError
    from semantilm import load_token_dataset
    from semantilm.data.token_dataset import is_token_dataset, token_dataset_info

    folder = tmp_path / "audio"
    folder.mkdir()
    for i in range(3):
        sf.write(folder / f"{i}.wav", clip(i), RATE)
    out = tmp_path / "tokens"
    tokenize(str(folder), out, codec, shard_size=2)
    data = load_token_dataset(out)
    assert data.num_rows == 3 and list(data["id"]) == ["0.wav", "1.wav", "2.wav"]
    assert data.cache_files  # memory-mapped Arrow
    plain = datasets.load_dataset("parquet", data_dir=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert plain.to_dict() == data.to_dict()
    assert is_token_dataset(load_corpus(str(out)))  # the folder also reads as a Parquet corpus (eval-lm)
    assert token_dataset_info(out)["codec"]["variant"] == "tiny-r50"
    with pytest.raises(ConfigError, match="already holds tokens"):
        tokenize(str(out), tmp_path / "again", codec)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        tokenize(str(folder), tmp_path / "half", codec, dtype="bfloat16")
    with pytest.raises(FileNotFoundError, match="not a finished token folder"):
        load_token_dataset(tmp_path)
