"""The package as users install it: the shipped configs are found from any folder (fast tests of
``semantilm.resources`` and the places that read configs), and a wheel installed in a fresh virtual
environment outside the repository runs ``semantilm demo`` (slow)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from semantilm.resources import available_configs, configs_dir, resolve_config

ROOT = Path(__file__).resolve().parents[1]
LM_SIZES = ["base-100m", "base-1b", "mini", "tiny"]


# ----- the shipped configs, from any working directory ---------------------------------------
def test_every_package_folder_and_config_goes_into_the_wheel():
    """pyproject lists the packages by hand (configs/ is mapped to semantilm.configs): a package
    folder missing from the list, or a config the package-data glob misses, would not install."""
    tomllib = pytest.importorskip("tomllib")
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {".".join(p.relative_to(ROOT).parts) for top in ("codec", "semantilm", "plumbing")
               for p in [ROOT / top, *(ROOT / top).rglob("*")] if p.is_dir() and p.name != "__pycache__"}
    assert set(setup["packages"]) == folders | {"semantilm.configs"}
    assert setup["package-dir"] == {"semantilm.configs": "configs"}
    assert setup["package-data"]["semantilm.configs"] == ["**/*.yaml"]
    assert all(p.suffix == ".yaml" for p in (ROOT / "configs").rglob("*") if p.is_file())


def test_names_and_relative_paths_resolve_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = configs_dir() / "lm" / "tiny.yaml"
    assert tiny.is_file() and available_configs("lm") == LM_SIZES
    for given in ("tiny", "tiny.yaml", "lm/tiny.yaml", "configs/lm/tiny.yaml", Path("configs/lm/tiny.yaml")):
        assert resolve_config(given, "lm") == tiny, given
    assert resolve_config("lm/tiny") == tiny  # kind None: relative to configs/
    recipe = configs_dir() / "recipes" / "text_to_audio" / "tiny_cpu.yaml"
    assert resolve_config("text_to_audio/tiny_cpu", "recipes") == recipe
    assert resolve_config("configs/recipes/text_to_audio/tiny_cpu.yaml", "recipes") == recipe
    assert resolve_config("cpu", "accelerate") == configs_dir() / "accelerate" / "cpu.yaml"
    # an existing path is used as it is: a user's own copy wins over the shipped file
    own = tmp_path / "configs" / "lm" / "tiny.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("hidden_size: 8\nnum_attention_heads: 2\n")
    assert resolve_config("configs/lm/tiny.yaml", "lm") == Path("configs/lm/tiny.yaml")
    assert resolve_config(own, "lm") == own


def test_missing_config_names_the_input_where_it_looked_and_the_choices(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        resolve_config("configs/lm/tinny.yaml", "lm", label="model.size")
    message = str(err.value)
    assert message.startswith("model.size='configs/lm/tinny.yaml' is not a file: it does not exist")
    assert str(tmp_path) in message and str(configs_dir() / "lm") in message
    assert "base-100m, base-1b, mini, tiny" in message
    with pytest.raises(FileNotFoundError, match=r"recipe config='../x.yaml' is not a file.*text_to_audio/tiny_cpu"):
        resolve_config("../x.yaml", "recipes")
    with pytest.raises(FileNotFoundError, match="LM size config is empty"):
        resolve_config(" ", "lm")
    with pytest.raises(IsADirectoryError, match=r"config='.*' is a folder, not a YAML file"):
        resolve_config(tmp_path)
    with pytest.raises(ValueError, match="kind must be one of"):
        resolve_config("tiny", "sizes")
    with pytest.raises(TypeError, match="str or os.PathLike"):
        resolve_config(3, "lm")


def test_readers_of_configs_use_the_shipped_ones_and_check_them_first(tmp_path, monkeypatch):
    """The LM size of a recipe is found and checked when the recipe loads (ConfigError), the demo's
    when its config is made, an LMConfig by name; all from a folder without configs/."""
    from plumbing.config_file import ConfigError
    from semantilm.demo import DemoConfig
    from semantilm.models.lm import LMConfig
    from semantilm.training.recipe_config import RecipeConfig, from_dict, load_config

    monkeypatch.chdir(tmp_path)
    config = from_dict(RecipeConfig, {"task": "continuation"})  # default model.size: configs/lm/tiny.yaml
    assert Path(config.model.size) == (configs_dir() / "lm" / "tiny.yaml").resolve()
    assert load_config(RecipeConfig, resolve_config("text_to_audio/tiny_cpu", "recipes")).model.size == config.model.size
    assert LMConfig.from_yaml("mini") == LMConfig.from_yaml(configs_dir() / "lm" / "mini.yaml")
    with pytest.raises(ConfigError, match=r"model: model.size='nowhere/lm.yaml' is not a file.*mini, tiny"):
        from_dict(RecipeConfig, {"task": "continuation", "model": {"size": "nowhere/lm.yaml"}})
    (tmp_path / "bad.yaml").write_text("hidden_size: 16\nlayers: 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown LMConfig keys \['layers'\]"):
        from_dict(RecipeConfig, {"task": "continuation", "model": {"size": "bad.yaml"}})
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ValueError, match=r"list.yaml: an LM size config must be a mapping"):
        LMConfig.from_yaml("list.yaml")
    assert DemoConfig(lm_size="tiny").lm_size == "tiny"
    with pytest.raises(FileNotFoundError, match=r"lm_size='huge' is not a file"):
        DemoConfig(lm_size="huge")


def test_train_command_finds_shipped_recipes_from_any_folder(tmp_path, monkeypatch, capsys):
    """Checked before anything runs: the --recipe mismatch is found in the shipped recipe by name."""
    from semantilm.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "text_to_audio/tiny_cpu", "--recipe", "continuation"]) == 2
    assert "is a text_to_audio config" in capsys.readouterr().err
    assert main(["train", "--config", "configs/recipes/text_to_audio/tiny_cpuu.yaml"]) == 2
    err = capsys.readouterr().err
    assert "--config='configs/recipes/text_to_audio/tiny_cpuu.yaml' is not a file" in err and "tiny_cpu" in err


# ----- a wheel in a fresh environment (slow) ----------------------------------------------------
def _run(args: list, cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _fresh_env_with_wheel(tmp: Path) -> tuple[Path, dict]:
    """A virtual environment (outside the repository) holding only the wheel built from the sources;
    its dependencies come from this interpreter's site-packages through a .pth file, so nothing is
    downloaded. (The .pth files of that folder, e.g. an editable install of this project, do not run.)"""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("codec", "semantilm", "plumbing", "configs"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "wheels", src],
         tmp, env)
    wheel = next((tmp / "wheels").glob("semantilm-*.whl"))
    venv = tmp / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--without-pip", venv], tmp, env)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env).stdout.strip())
    (purelib / "parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", wheel], tmp, env)
    return venv, env


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_demo_from_another_folder(tmp_path):
    import zipfile

    venv, env = _fresh_env_with_wheel(tmp_path)
    wheel = next((tmp_path / "wheels").glob("semantilm-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("semantilm/configs/lm/mini.yaml", "semantilm/configs/recipes/text_to_audio/tiny_cpu.yaml",
                    "semantilm/configs/accelerate/cpu.yaml", "codec/pretrained/tiny/model.safetensors",
                    "codec/pretrained/tiny/student.safetensors"):  # the demo decodes with the shipped student
        assert shipped in names, shipped
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = ("import codec, semantilm; from semantilm.resources import configs_dir, resolve_config;"
             "from semantilm.training.recipe_config import RecipeConfig, load_config;"
             "c = load_config(RecipeConfig, resolve_config('configs/recipes/text_to_audio/tiny_cpu.yaml', 'recipes'));"
             "print(semantilm.__file__); print(codec.__file__); print(configs_dir()); print(c.model.size)")
    lines = _run([bin_dir / "python", "-c", probe], work, env).stdout.split()
    assert all(Path(line).resolve().is_relative_to(venv.resolve()) for line in lines), lines  # the wheel's copy
    assert "--train-steps" in _run([bin_dir / "semantilm", "demo", "--help"], work, env).stdout
    # The short demo: the whole path (tokenise with the embedded codec, train, generate, decode, report).
    done = _run([bin_dir / "semantilm", "demo", "--out", "demo", "--train-steps", "3", "--decode-steps", "1",
                 "--takes", "1"], work, env, timeout=900)
    assert "unseen prompts" in done.stdout
    assert (work / "demo" / "report.md").is_file() and len(list((work / "demo").glob("prompt_*.wav"))) == 8
