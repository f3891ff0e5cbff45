"""Training of the codec: the staged recipe (VAE, semantic codebook, decoder, vocoder), its losses,
and the compact export of a trained codec."""

from plumbing.lazy_exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "recipe": ("load_codec_recipe_config", "run_codec_recipe"),
    "export": ("export_codec",),
})
