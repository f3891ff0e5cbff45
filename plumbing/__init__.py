"""Generic helpers that both ``codec`` and ``semantilm`` use and that know nothing of either:
file writing (``plumbing.io``), argument checks (``plumbing.checks``), YAML/dataclass configs
(``plumbing.config_file``), progress bars (``plumbing.progress``) and lazy package exports
(``plumbing.lazy_exports``)."""
