"""Every name that ``semantilm`` imports from the codec's public face exists there, including the
imports inside functions (which run only when their function does)."""

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_codec_name_semantilm_imports_resolves():
    unresolved = []
    for path in sorted((ROOT / "semantilm").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "codec"):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if hasattr(module, alias.name):
                    continue
                try:
                    importlib.import_module(f"{node.module}.{alias.name}")
                except ImportError:
                    unresolved.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}")
    assert not unresolved, "names missing from the codec's exports:\n" + "\n".join(unresolved)
