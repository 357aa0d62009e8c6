"""warroom.core.stats against known values, and scipy as an independent cross-check (tests only)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sp

from warroom.core.stats import (
    chi2_sf_1df,
    normal_isf,
    normal_sf,
    per_look_level,
    sample_ratio_test,
    two_proportion_test,
)


def test_normal_tail_and_its_inverse_at_the_textbook_values():
    assert normal_sf(1.959963984540054) == pytest.approx(0.025, rel=1e-12)
    assert normal_sf(0) == 0.5
    assert normal_isf(0.05) == pytest.approx(1.6448536269514722, rel=1e-9)
    assert normal_isf(0.001) == pytest.approx(3.090232306167813, rel=1e-9)
    with pytest.raises(ValueError):
        normal_isf(0)


def test_chi_square_one_degree_of_freedom_at_the_textbook_values():
    assert chi2_sf_1df(3.841458820694124) == pytest.approx(0.05, rel=1e-9)
    assert chi2_sf_1df(10.827566170662733) == pytest.approx(0.001, rel=1e-9)
    assert chi2_sf_1df(0) == 1.0 and chi2_sf_1df(math.inf) == 0.0


def test_two_proportion_test_worked_example():
    # 18 of 1000 requests failed on the new code, 40 of 10000 on the old: pooled 58/11000.
    # se = sqrt(p(1-p)(1/1000 + 1/10000)) = 0.0024020…, z = (0.018 - 0.004) / se = 5.8286…
    result = two_proportion_test(18, 1000, 40, 10000)
    pooled = 58 / 11000
    se = math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 10000))
    assert result.z == pytest.approx(0.014 / se, rel=1e-12) and result.z == pytest.approx(5.8286, abs=1e-4)
    assert result.p_value == pytest.approx(sp.norm.sf(result.z), rel=1e-9)
    # The same gap on a tenth of the traffic is far weaker evidence.
    assert two_proportion_test(1.8, 100, 4, 1000).p_value > 0.01
    # "Lower is worse" (a success ratio): the sign flips, the p-value is the other tail.
    low = two_proportion_test(950, 1000, 9980, 10000, worse="below")
    assert low.z > 0 and low.p_value < 1e-9
    # No event anywhere: nothing to test.
    assert two_proportion_test(0, 50, 0, 5000).p_value == 1.0
    with pytest.raises(ValueError):
        two_proportion_test(0, 0, 1, 10)


@given(st.integers(0, 500), st.integers(1, 2000), st.integers(0, 5000), st.integers(1, 20000))
def test_two_proportion_test_agrees_with_scipy(x_a, n_a, x_b, n_b):
    x_a, x_b = min(x_a, n_a), min(x_b, n_b)
    result = two_proportion_test(x_a, n_a, x_b, n_b)
    pooled = (x_a + x_b) / (n_a + n_b)
    if pooled in (0, 1):
        assert result.p_value == 1.0
        return
    z = (x_a / n_a - x_b / n_b) / math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    assert result.z == pytest.approx(z, rel=1e-9, abs=1e-12)
    assert result.p_value == pytest.approx(sp.norm.sf(z), rel=1e-6, abs=1e-300)


def test_bonferroni_level_per_look():
    # 1 % over a 30 min soak polled every 5 s: 360 looks.
    level = per_look_level(0.01, 360)
    assert level == pytest.approx(0.01 / 360)
    assert normal_isf(level) == pytest.approx(sp.norm.isf(0.01 / 360), rel=1e-9)
    assert per_look_level(0.01, 0) == 0.01


def test_sample_ratio_mismatch_worked_example():
    # 50 000 against 50 500 for a planned 50/50 split: chi2 = 2 × 250² / 50 250 = 2.4876…, p = 0.11475…
    result = sample_ratio_test(50_000, 50_500, 0.5)
    assert result.chi2 == pytest.approx(2 * 250**2 / 50_250, rel=1e-12)
    assert result.p_value == pytest.approx(sp.chi2.sf(result.chi2, 1), rel=1e-9)
    assert result.p_value == pytest.approx(0.11475, abs=1e-5)
    assert result.observed == pytest.approx(50_000 / 100_500)


@given(st.integers(0, 100_000), st.integers(0, 100_000), st.floats(0.001, 0.999))
def test_sample_ratio_test_agrees_with_scipy(n_new, n_control, share):
    if n_new + n_control == 0:
        return
    result = sample_ratio_test(n_new, n_control, share)
    total = n_new + n_control
    expected = sp.chisquare([n_new, n_control], [total * share, total * (1 - share)])
    assert result.chi2 == pytest.approx(expected.statistic, rel=1e-9, abs=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-300)


def test_sample_ratio_at_the_ends():
    # The flag at 25 % but nobody on the new code: as far off as a split can be.
    nobody = sample_ratio_test(0, 6000, 0.25)
    assert nobody.observed == 0 and nobody.p_value < 1e-100
    # At 100 %, any unit left on the old code is a mismatch; at 100 % with none, a match.
    assert sample_ratio_test(5990, 10, 1.0).p_value == 0.0
    assert sample_ratio_test(6000, 0, 1.0).p_value == 1.0
    with pytest.raises(ValueError):
        sample_ratio_test(0, 0, 0.5)
