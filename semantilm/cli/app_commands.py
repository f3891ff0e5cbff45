"""``semantilm app``: the web app (Gradio) on LM checkpoints and their codec."""

from __future__ import annotations

import argparse
from pathlib import Path

from semantilm.cli.common import CliError, int_arg

DEMO_CHECKPOINT = Path("outputs") / "demo" / "lm"  # where `semantilm demo` leaves its LM (run from the same folder)

APP_EPILOG = """examples:
  semantilm demo && semantilm app           # the demo's LM (outputs/demo/lm) on http://127.0.0.1:7860
  semantilm app --checkpoint runs/a --checkpoint runs/b --port 8000   # compare two checkpoints
  semantilm app --checkpoint runs/a --codec tiny --host 0.0.0.0       # serve the local network

The page has three tabs: Text to audio, Continuation, Codec. Gradio's API offers /generate
(caption, seconds -> wav) and /roundtrip (audio -> decoded wav, metrics); see the page's "Use via API".
No public share link is made; the app reads only the checkpoint folders given and its upload folder.
"""


def checkpoint_folders(given: list[str] | None) -> dict[str, Path]:
    """Name -> folder of each ``--checkpoint`` (the demo's LM when none), each checked to be an LM checkpoint."""
    from semantilm.app.backend import AppInputError, check_checkpoint

    if not given:
        if not DEMO_CHECKPOINT.is_dir():
            raise CliError(f"no --checkpoint given and the demo's checkpoint {str(DEMO_CHECKPOINT)!r} does not exist "
                           "here; run `semantilm demo` first (in this folder), or pass --checkpoint FOLDER.")
        given = [str(DEMO_CHECKPOINT)]
    folders: dict[str, Path] = {}
    for text in given:
        try:
            folder = check_checkpoint(text)
        except AppInputError as err:
            raise CliError(f"--checkpoint {err}") from None
        name = text if text not in folders else f"{text} ({len(folders)})"
        folders[name] = folder
    return folders


def cmd_app(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    try:
        from semantilm.app.backend import AppInputError, Backend
        from semantilm.app.ui import ServeSettings, build_app, launch
    except ImportError as err:
        raise CliError(f"the app needs Gradio ({err}); install it with pip install -e \".[app]\"") from None
    folders = checkpoint_folders(args.checkpoint)
    try:
        backend = Backend(folders, codec=args.codec, device=args.device)
    except AppInputError as err:
        raise CliError(str(err)) from None
    work_dir = Path(tempfile.mkdtemp(prefix="semantilm-app-"))
    try:
        app = build_app(backend, work_dir)
        _, url, _ = launch(app, work_dir, ServeSettings(host=args.host, port=args.port), block=False)
        print(f"semantilm app: {', '.join(folders)} on {url} (Ctrl-C stops it)", flush=True)
        app.block_thread()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


def add_commands(sub: argparse._SubParsersAction, epilog: str) -> None:
    """Register ``app``."""
    p = sub.add_parser("app", help="web app to listen: text to audio, continuation, codec round trip (Gradio)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=APP_EPILOG)
    p.add_argument("--checkpoint", action="append", default=None, metavar="FOLDER",
                   help=f"LM checkpoint folder; repeat it to offer several (default {DEMO_CHECKPOINT}, the demo's)")
    p.add_argument("--codec", default=None,
                   help="codec that encodes and decodes: tiny, a save_pretrained folder or a hub repo "
                        "(default: the one the first checkpoint records)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 serves the network)")
    p.add_argument("--port", type=int_arg(minimum=1, maximum=65535), default=None,
                   help="port (default 7860, or the next free one)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.set_defaults(func=cmd_app, keeps_freed_memory=True)  # it decodes (see semantilm.cli.main)
