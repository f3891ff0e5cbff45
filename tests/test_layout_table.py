"""The README's Layout tables name every module of ``codec/`` and ``semantilm/``, and nothing that is gone.

Each table row's last cell names files (``model.py``) or folders (``training/``) relative to its package.
A sub-package is covered by its folder or by all of its modules; ``__init__.py`` files need no row.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("plumbing", "codec", "semantilm")


def layout_section(readme: str) -> str:
    match = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", readme, flags=re.S | re.M)
    assert match, "README.md has no '## Layout' section"
    return match.group(1)


def named_paths(section: str) -> dict[str, set[str]]:
    """Package -> the paths its table names (``a.py``, ``sub/``, ``sub/b.py``)."""
    named: dict[str, set[str]] = {}
    package = None
    for line in section.splitlines():
        heading = re.match(r"^`(\w+)/`", line)
        if heading:
            package = heading.group(1)
            named.setdefault(package, set())
        elif package and line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            named[package].update(re.findall(r"`([\w/]+(?:\.py|/))`", cells[-1]))
    return named


def package_paths(package: str) -> tuple[set[str], dict[str, set[str]]]:
    """(top-level modules and sub-package folders, sub-package folder -> its modules) of a package."""
    base = ROOT / package
    top, subpackages = set(), {}
    for path in sorted(base.rglob("*.py")):
        relative = path.relative_to(base)
        if path.name == "__init__.py":
            continue
        if len(relative.parts) == 1:
            top.add(relative.as_posix())
        else:
            folder = relative.parts[0] + "/"
            top.add(folder)
            subpackages.setdefault(folder, set()).add(relative.as_posix())
    return top, subpackages


def missing_and_stale(package: str, named: set[str]) -> tuple[list[str], list[str]]:
    top, subpackages = package_paths(package)
    missing = []
    for entry in sorted(top):
        if entry in named:
            continue
        if entry in subpackages:
            missing += sorted(m for m in subpackages[entry] if m not in named)
        else:
            missing.append(entry)
    stale = sorted(p for p in named if not (ROOT / package / p).exists())
    return missing, stale


def test_layout_tables_name_every_module_and_nothing_that_is_gone():
    named = named_paths(layout_section((ROOT / "README.md").read_text()))
    problems = []
    for package in PACKAGES:
        assert package in named, f"README.md's Layout section has no table headed `{package}/`"
        missing, stale = missing_and_stale(package, named[package])
        if missing:
            problems.append(f"{package}/: not named in the Layout table: {', '.join(missing)}")
        if stale:
            problems.append(f"{package}/: named in the Layout table but not in the package: {', '.join(stale)}")
    assert not problems, "README.md Layout: " + "; ".join(problems)


def test_the_check_names_a_missing_module_and_a_stale_one():
    section = "`codec/` (x)\n\n| concept | file |\n|---|---|\n| a | `model.py`, `gone.py`, `fast/` |\n"
    named = named_paths(section)["codec"]
    missing, stale = missing_and_stale("codec", named)
    assert "config.py" in missing and "fast/switch.py" not in missing
    assert "training/trainer.py" in missing  # a sub-package named neither as a folder nor module by module
    assert stale == ["gone.py"]
