import subprocess
import sys


def test_import_is_cheap():
    code = (
        "import sys, semantilm, semantilm.tokens.layout, semantilm.codec_api;"
        "heavy = [m for m in ('transformers', 'datasets', 'peft', 'accelerate', 'torch') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_exports_resolve():
    import semantilm

    for name in semantilm.__all__:
        assert getattr(semantilm, name) is not None
