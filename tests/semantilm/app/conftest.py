"""Fixtures of the app tests: a tiny trained demo checkpoint, the app served by `semantilm app` in a
subprocess, and the rule for tools the tests need (Gradio, Chromium).

Under CI (the environment variable ``CI`` set, as ``.ci/run`` runs) a missing tool fails the test:
``.ci/run`` installs them, so a missing one is a broken set-up, never a reason to skip. Elsewhere
the test is skipped with the command that installs what is missing.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

INSTALL = {
    "gradio": 'pip install -e ".[app]"',
    "gradio_client": 'pip install -e ".[app]"',
    "selenium": "pip install selenium",
    "chromium": "apt-get install chromium chromium-driver",
}


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def need(what: str, present: bool) -> None:
    """Fail under CI, skip elsewhere, when ``what`` is missing."""
    if present:
        return
    message = f"{what} is missing; install it with: {INSTALL[what]}"
    if in_ci():
        pytest.fail(f"{message} (.ci/run installs it, so CI must have it)")
    pytest.skip(message)


def need_module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        need(name, False)


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory) -> Path:
    """A folder holding ``outputs/demo`` of a short `semantilm demo` (two tones, 100 LM steps, about 40 s):
    the checkpoint ``semantilm app`` opens by default when started in this folder."""
    import torch

    from semantilm.demo import DemoConfig, run_demo

    root = tmp_path_factory.mktemp("app_demo")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models run fastest on one thread (tests/conftest.py, one_torch_thread)
    try:
        run_demo(DemoConfig(output_dir=str(root / "outputs" / "demo"), frequencies=(300.0, 500.0),
                            clips_per_caption=2, train_steps=100, takes=1, decode_steps=2))
    finally:
        torch.set_num_threads(threads)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def app_url(demo_folder):
    """``semantilm app`` with no checkpoint argument, started in ``demo_folder`` on a free port; its URL."""
    need_module("gradio")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    code = "import sys; from semantilm.cli.main import main; sys.exit(main())"
    log = demo_folder / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", code, "app", "--port", str(port)], cwd=demo_folder,
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"semantilm app exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"semantilm app did not answer within 180 s:\n{log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
