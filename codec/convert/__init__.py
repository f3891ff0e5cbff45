"""Official SemantiCodec checkpoints -> our modules: one key map per submodule, one state-dict check."""
