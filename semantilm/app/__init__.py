"""``semantilm app``: a web page to listen to an LM checkpoint and its codec (Gradio, ``pip install -e ".[app]"``).

``backend``   the one door into the library: checkpoints and codec loaded once, streams, token files, metrics.
``runs``      a generation run: stream chunks -> page updates, then the clips as wav, token file, spectrogram.
``pictures``  spectrograms and token pictures (matplotlib).
``widgets``   the settings panel, the clip grid and the error wrapper shared by the tabs.
``text_tab``, ``continuation_tab``, ``codec_tab``  the three tabs.
``ui``        the app: tabs, the ``/generate`` and ``/roundtrip`` API, the queue, the launch.

Importing ``semantilm.app.ui`` imports Gradio; this module switches Gradio's usage reporting off first
(``GRADIO_ANALYTICS_ENABLED=False``), so that the app never calls home.
"""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
