"""The code blocks of docs/lm.md run, with sizes shrunk for CPU tests."""

import re
from pathlib import Path

import pytest
import torch

from tests.semantilm.conftest import make_clip

DOC = Path(__file__).resolve().parents[2] / "docs" / "lm.md"


def blocks():
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def shrink(code, replacements):
    for old, new in replacements.items():
        assert old in code, f"docs/lm.md does not contain {old!r}; update this test to match the guide"
        code = code.replace(old, new)
    return code


def audio_dataset(captions):
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "audio": [{"array": make_clip(i, 0.06).tolist(), "sampling_rate": 16000} for i in range(4)],
            "caption": captions[:4],
        }
    )


def audio_file_dataset(folder, captions):
    """``datasets.Audio`` cells of wav files, as ``load_dataset("audiofolder", ...)`` gives them; decoding
    them the ``datasets`` way needs torchcodec and FFmpeg, which the toolkit does not install."""
    import soundfile as sf
    from datasets import Audio, Dataset

    folder.mkdir()
    paths = []
    for i in range(4):
        paths.append(str(folder / f"clip{i}.wav"))
        sf.write(paths[-1], make_clip(i, 0.06).numpy(), 16000, subtype="PCM_16")
    cells = [{"bytes": None, "path": p} for p in paths]
    return Dataset.from_dict({"audio": cells, "caption": captions[:4]}).cast_column("audio", Audio())


@pytest.mark.parametrize("cells", ["arrays", "audio files"])
def test_from_scratch_snippet(tmp_path, monkeypatch, fake_codec, captions, cells):
    monkeypatch.chdir(tmp_path)
    tiny = Path(__file__).resolve().parents[2] / "configs" / "lm" / "tiny.yaml"
    code = shrink(
        blocks()[0],
        {
            "vocab_size=8000": "vocab_size=48",
            '"configs/lm/base-100m.yaml"': repr(str(tiny)),
            "max_steps=20_000": "max_steps=2, disable_tqdm=True",
            "seconds=10": "seconds=0.1",
        },
    )
    dataset = audio_dataset(captions) if cells == "arrays" else audio_file_dataset(tmp_path / "clips", captions)
    scope = {"dataset": dataset, "codec": fake_codec}
    exec(compile(code, str(DOC), "exec"), scope)
    assert len(scope["waveforms"]) == 1 and scope["waveforms"][0].ndim == 1
    assert (tmp_path / "runs" / "t2a" / "semantilm_config.json").is_file()


def test_lora_snippet(tmp_path, monkeypatch, fake_codec, captions, hf_pretrained_dir):
    import semantilm as sl

    monkeypatch.chdir(tmp_path)
    code = shrink(
        blocks()[1],
        {"max_steps=5_000": "max_steps=2, disable_tqdm=True", "r=16": "r=2", "seconds=5": "seconds=0.04"},
    )
    settings = sl.TokenizeSettings(caption_column="caption")
    tokens = sl.tokenize_corpus(audio_dataset(captions), fake_codec, tmp_path / "tokens", settings=settings).dataset
    scope = {"sl": sl, "base_model": hf_pretrained_dir, "codec": fake_codec, "tokens": tokens, "clip": make_clip(3, 0.04)}
    exec(compile(code, str(DOC), "exec"), scope)
    prompt = scope["out"].prompt_lengths.tolist()[0]
    assert scope["out"].lengths.tolist()[0] - prompt in (fake_codec.hop, 2 * fake_codec.hop)  # 1..2 new frames
    assert scope["new_audio"][0].shape[0] == scope["out"].lengths.tolist()[0] - prompt
    # Both the adapter checkpoint of the run and the merged model load back with their layout.
    merged = sl.load_lm(tmp_path / "runs" / "lora-merged", codec=fake_codec)
    adapter = sl.load_lm(tmp_path / "runs" / "lora", codec=fake_codec)
    ids = torch.tensor([merged.tokenizer.text_prompt("rain falls")])
    with torch.no_grad():
        torch.testing.assert_close(merged.model.eval()(ids).logits, adapter.model.eval()(ids).logits)


def test_readme_shows_the_tested_snippet():
    """The README's ten-line example is the first block of docs/lm.md, which runs above."""
    readme = (DOC.parents[1] / "README.md").read_text()
    assert blocks()[0] in readme


def test_readme_first_commands_are_the_demo_and_the_test_commands():
    """The README's first block sets up and runs the demo; its second starts with what CI runs
    (every test) and shows the day-to-day command that skips the slow ones."""
    root = DOC.parents[1]
    blocks = re.findall(r"```bash\n(.*?)```", (root / "README.md").read_text(), flags=re.S)
    assert blocks[0].strip().endswith("semantilm demo")
    assert "pip install -e" in blocks[0]
    ci = [line.strip() for line in (root / ".ci" / "run").read_text().splitlines() if line.strip()]
    commands = blocks[1].strip().splitlines()
    assert ci[-1] == commands[0] == "python -m pytest -q"
    assert commands[1:] == ['python -m pytest -q -m "not slow"']
    assert '"slow:' in (root / "pyproject.toml").read_text()  # the marker is registered


def test_docs_name_existing_paths_and_modules():
    """Paths (``dir/file.py``) and dotted module names (``package.module.name``) in backticks in
    the README (outside its layout tables, checked above) and docs/lm.md exist (a name a package
    imports into itself counts as its own)."""
    root = DOC.parents[1]
    readme = (root / "README.md").read_text()
    head, tail = readme.split("## Layout", 1)
    texts = {"README.md": head + "\n## ".join(tail.split("\n## ")[1:]), "lm.md": DOC.read_text()}
    missing = []
    for doc, text in texts.items():
        names = set(re.findall(r"`([^`\s]+)`", text)) | set(re.findall(r"`((?:codec|semantilm)(?:\.\w+){2,})", text))
        for name in sorted(names):
            if "/" in name and name.endswith(".py"):
                if not ((root / name).exists() or (root.parent / name.removeprefix("../")).exists()):
                    missing.append(f"{doc}: {name}")
            elif re.fullmatch(r"(codec|semantilm)(\.\w+){2,}", name):
                parts = name.split(".")
                modules = [k for k in range(len(parts), 0, -1)
                           if (root / "/".join(parts[:k])).with_suffix(".py").is_file()
                           or (root / "/".join(parts[:k]) / "__init__.py").is_file()]
                k = modules[0] if modules else 0
                rest = parts[k:]
                source = ""
                if k:
                    base = root / "/".join(parts[:k])
                    source = (base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py").read_text()
                defined = rf"(def|class) {rest[0]}\b|^{rest[0]} =|^from \S+ import .*\b{rest[0]}\b" if rest else ""
                if not k or len(rest) > 1 or (rest and not re.search(defined, source, re.M)):
                    missing.append(f"{doc}: {name}")
    assert not missing, missing
