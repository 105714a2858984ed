"""Arc shot noise: the effective-gain formula and Poisson statistics."""

from __future__ import annotations

import numpy as np
import pytest

from darkhaloscope.physics.noise import arc_poisson_noise, effective_gain, sky_nanomaggies_per_pixel


def test_sky_and_gain_formula():
    sky = sky_nanomaggies_per_pixel("gr", {"g": 22.5, "r": 20.0}, 0.5)
    assert sky == pytest.approx([0.25, 10 ** (2.5 / 2.5) * 0.25])
    iv = np.full((2, 3, 3), 400.0)
    assert effective_gain(iv, sky)[1, 0, 0] == pytest.approx(400 * 2.5)


def test_poisson_statistics():
    rng = np.random.default_rng(1)
    arc = np.full((1, 200, 200), 0.02)
    iv = np.full((1, 200, 200), 1e4)
    sky = np.array([0.05])  # gain 500 e/nmgy -> 10 electrons per pixel
    noise = arc_poisson_noise(rng, arc, iv, sky)
    assert abs(noise.mean()) < 3 * np.sqrt(0.02 / 500 / noise.size)
    assert noise.var() == pytest.approx(0.02 / 500, rel=0.03)
    # counts are integers: noise * gain + lambda is whole
    frac = (noise * 500 + 10) % 1
    assert np.all((frac < 1e-6) | (frac > 1 - 1e-6))


def test_no_noise_without_data_or_light():
    rng = np.random.default_rng(2)
    arc = np.zeros((1, 4, 4))
    arc[0, 1, 1] = 1.0
    arc[0, 2, 2] = 1.0
    arc[0, 3, 3] = -1.0
    iv = np.ones((1, 4, 4))
    iv[0, 2, 2] = 0
    noise = arc_poisson_noise(rng, arc, iv, np.array([100.0]))
    assert noise[0, 2, 2] == 0 and noise[0, 3, 3] == 0 and noise[0, 0, 0] == 0
    assert np.array_equal(noise, arc_poisson_noise(np.random.default_rng(2), arc, iv, np.array([100.0])))
