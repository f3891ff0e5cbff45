"""Which `semantilm` commands keep freed memory in the process (``codec.fast.keep_freed_memory``): those that decode."""

from __future__ import annotations


def test_the_commands_that_decode_keep_freed_memory_and_the_others_do_not():
    from semantilm.cli.main import build_parser

    parser = build_parser()

    def keeps(*argv: str) -> bool:
        return bool(getattr(parser.parse_args(list(argv)), "keeps_freed_memory", False))

    assert keeps("decode", "tokens", "--out", "wav")
    assert keeps("generate", "--checkpoint", "outputs/lm", "--text", "a tone", "--out", "gen")
    assert keeps("eval-codec", "audio", "--out", "eval.json")
    assert keeps("demo") and keeps("app")
    assert not keeps("encode", "audio", "--out", "tokens")
    assert not keeps("info")
