"""FAD, KL and CLAP score as numbers, against references computed another way (closed forms, scipy)."""

import numpy as np
import pytest

from semantilm.eval.clap_score import clap_scores, cosine_similarity
from semantilm.eval.fad import (
    MIN_CLIPS_FOR_SPREAD,
    fad_bootstrap,
    fad_infinity,
    frechet_audio_distance,
    frechet_distance,
    gaussian_stats,
)
from semantilm.eval.kl import kl_divergence, paired_kl


def test_fad_of_a_set_against_itself_is_zero_and_a_shift_adds_its_squared_length():
    x = np.random.default_rng(0).standard_normal((40, 6))
    assert frechet_distance(gaussian_stats(x), gaussian_stats(x)) == pytest.approx(0.0, abs=1e-9)
    shift = np.array([0.5, -1.0, 0.0, 2.0, 0.25, 0.0])
    # Same covariance, means apart by `shift`: FAD = |shift|^2 exactly.
    assert frechet_distance(gaussian_stats(x + shift), gaussian_stats(x)) == pytest.approx(shift @ shift, rel=1e-9)


def test_fad_matches_closed_forms_and_scipy_sqrtm():
    # Diagonal covariances: FAD = |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu = np.array([1.0, 0.0, -1.0])
    stats = [type(gaussian_stats(np.eye(3)))(m, np.diag(c), 10) for m, c in ((mu, a), (np.zeros(3), b))]
    assert frechet_distance(*stats) == pytest.approx(mu @ mu + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    # General covariances, and singular ones (fewer clips than dimensions), against scipy's sqrtm formula.
    from scipy import linalg

    rng = np.random.default_rng(1)
    for rows in (50, 5):
        g, r = rng.standard_normal((rows, 8)) @ rng.standard_normal((8, 8)), rng.standard_normal((rows, 8)) + 0.3
        sg, sr = gaussian_stats(g), gaussian_stats(r)
        root = linalg.sqrtm(sg.cov @ sr.cov)
        expected = np.sum((sg.mean - sr.mean) ** 2) + np.trace(sg.cov + sr.cov - 2 * np.real(root))
        assert frechet_distance(sg, sr) == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_gaussian_stats_refuse_what_has_no_covariance():
    with pytest.raises(ValueError, match="has 1 clip"):
        gaussian_stats(np.zeros((1, 4)), "generated embeddings")
    with pytest.raises(ValueError, match="NaN or Inf"):
        gaussian_stats(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="2-D array"):
        gaussian_stats(np.zeros(4))
    with pytest.raises(ValueError, match="different sizes"):
        frechet_distance(gaussian_stats(np.eye(3)), gaussian_stats(np.eye(4)))


def test_fad_infinity_removes_most_of_the_small_sample_bias():
    """Two samples of one Gaussian: the true FAD is 0; FAD at N is biased upwards, FAD-infinity much less."""
    rng = np.random.default_rng(0)
    g, r = rng.standard_normal((300, 8)), rng.standard_normal((3000, 8))
    biased = frechet_distance(gaussian_stats(g), gaussian_stats(r))
    fit = fad_infinity(g, gaussian_stats(r), seed=0)
    assert biased > 0.02 and abs(fit["value"]) < biased / 3 and fit["slope"] > 0
    assert fad_infinity(g[: MIN_CLIPS_FOR_SPREAD - 1], gaussian_stats(r)) is None


def test_fad_bootstrap_interval_and_caveats():
    rng = np.random.default_rng(0)
    g, r = rng.standard_normal((40, 4)) + 1.0, rng.standard_normal((40, 4))
    result = frechet_audio_distance(g, r, bootstrap=50, seed=0)
    assert result.bootstrap["low"] < result.value < result.bootstrap["high"]
    assert result.value == pytest.approx(frechet_distance(gaussian_stats(g), gaussian_stats(r)))
    assert (result.num_generated, result.num_reference, result.dimensions) == (40, 40, 4)
    assert "biased upwards at small N (here 40 generated, 40 reference clips" in result.notes[0]
    again = frechet_audio_distance(g, r, bootstrap=50, seed=0)
    assert again.bootstrap == result.bootstrap and again.infinity == result.infinity  # seeded
    assert fad_bootstrap(g, r, rounds=0) is None and fad_bootstrap(g[:5], r, rounds=10) is None
    small = frechet_audio_distance(g[:4], r[:4], bootstrap=50)
    assert small.infinity is None and small.bootstrap is None and "fewer than 10 clips" in small.notes[1]


def test_kl_is_zero_for_identical_distributions_and_matches_scipy():
    from scipy.special import rel_entr

    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(6), size=5), rng.dirichlet(np.ones(6), size=5)
    p[0, 2] = 0.0
    p[0] /= p[0].sum()
    np.testing.assert_allclose(kl_divergence(p, p), 0.0, atol=1e-5)
    np.testing.assert_allclose(kl_divergence(p, q), rel_entr(p, q + 1e-6).sum(axis=1), rtol=1e-12)
    assert (kl_divergence(p, q) > 0).all()
    with pytest.raises(ValueError, match="same tagger"):
        kl_divergence(p, q[:, :5])


def test_paired_kl_pairs_clips_by_caption():
    gen = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    ref = np.array([[0.6, 0.4], [0.5, 0.5], [0.1, 0.9]])
    result = paired_kl(gen, ["a dog", " a dog ", "a cat"], ref, ["a dog", "a dog", None])
    expected0 = kl_divergence(ref[:2], gen[[0, 0]]).mean()
    expected1 = kl_divergence(ref[:2], gen[[1, 1]]).mean()
    assert result.per_clip[0] == pytest.approx(expected0) and result.per_clip[1] == pytest.approx(expected1)
    assert result.per_clip[2] is None and result.pairs == [2, 2, 0] and result.num_paired == 2
    assert result.mean == pytest.approx((expected0 + expected1) / 2)
    assert paired_kl(gen, ["x", "y", "z"], ref, ["a", "b", "c"]).mean is None


def test_clap_scores_are_cosines_with_each_clips_caption():
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((4, 5))
    texts = {"a dog": rng.standard_normal(5), "rain": rng.standard_normal(5)}
    asked = []

    def embed(captions):
        asked.append(list(captions))
        return np.stack([texts[c] for c in captions])

    scores = clap_scores(audio, ["a dog", "rain ", None, "a dog"], embed)
    assert asked == [["a dog", "rain"]]  # each distinct caption once
    for i, caption in ((0, "a dog"), (1, "rain"), (3, "a dog")):
        t = texts[caption]
        assert scores[i] == pytest.approx(audio[i] @ t / np.linalg.norm(audio[i]) / np.linalg.norm(t))
    assert scores[2] is None
    assert cosine_similarity(np.zeros((1, 3)), np.ones((1, 3)))[0] == 0.0


def test_semantilm_eval_exports_load_on_first_use():
    import subprocess
    import sys

    import semantilm.eval

    code = ("import sys, semantilm.eval, semantilm.cli.main; "
            "print([m for m in ('torch', 'transformers', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # `semantilm --help` and `import semantilm.eval` stay instant
    assert {"evaluate_generation", "GenerationMetricsSettings", "frechet_audio_distance"} <= set(semantilm.eval.__all__)
    for name in semantilm.eval.__all__:
        assert getattr(semantilm.eval, name) is not None
