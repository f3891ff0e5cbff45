"""Tiny judge models (built once per test session, saved like hub checkpoints) and folders of tones and
noise for the generation metrics tests."""

from __future__ import annotations

import pytest

from tests.semantilm.eval.tiny_judges import noise, save_tiny_ast, save_tiny_clap, tone, write_folder

FREQUENCIES = [220, 330, 440, 550, 660, 770, 880, 990, 1100, 1210, 1320]


def captions() -> dict[str, str]:
    return {f"t{f}": f"a sine tone at {f} Hz" for f in FREQUENCIES}


@pytest.fixture(scope="session")
def tiny_clap(tmp_path_factory) -> str:
    return str(save_tiny_clap(tmp_path_factory.mktemp("judges") / "clap"))


@pytest.fixture(scope="session")
def tiny_ast(tmp_path_factory) -> str:
    return str(save_tiny_ast(tmp_path_factory.mktemp("judges") / "ast"))


@pytest.fixture(scope="session")
def sound_folders(tmp_path_factory) -> dict[str, str]:
    """``tones``: one 1 s tone per frequency with its caption; ``same_tones``: the same tones with another
    phase (another recording of the same sounds); ``noise``: white noise under the tones' captions."""
    root = tmp_path_factory.mktemp("sounds")
    names = [f"t{f}" for f in FREQUENCIES]
    folders = {
        "tones": write_folder(root / "tones", {n: tone(f) for n, f in zip(names, FREQUENCIES)}, captions()),
        "same_tones": write_folder(root / "same_tones", {n: tone(f, phase=1.0) for n, f in zip(names, FREQUENCIES)},
                                   captions()),
        "noise": write_folder(root / "noise", {n: noise(i) for i, n in enumerate(names)}, captions()),
    }
    return {k: str(v) for k, v in folders.items()}
