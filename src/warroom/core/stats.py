"""The statistics behind cohort guardrails and the exposure check, in plain Python.

Two tests, both on counts in a query's window:

- **two-proportion z-test** (one-sided): is the new cohort's ratio (errors over requests)
  really worse than the control's, or could noise explain the gap? Pooled variance, the
  normal approximation to the binomial. Run at every look, so the level of one look is
  the false-alarm rate over a phase divided by the looks in its soak (Bonferroni: the
  union bound holds however correlated overlapping windows are).
- **sample-ratio mismatch** (chi-square goodness of fit, one degree of freedom): does the
  new cohort's share of the units assigned match the share the flag was set to?

Only `math` is needed (erfc gives both tails exactly enough); scipy cross-checks the
numbers in the tests and is not a dependency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def normal_isf(p: float) -> float:
    """The z with P(Z > z) = p (0 < p < 1): the critical value of a one-sided test at level p."""
    if not 0 < p < 1:
        raise ValueError("p must be between 0 and 1")
    low, high = -40.0, 40.0
    for _ in range(200):  # bisection: normal_sf is monotonic, 200 halvings reach float precision
        mid = (low + high) / 2
        if normal_sf(mid) > p:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def chi2_sf_1df(x: float) -> float:
    """P(X > x) for a chi-square X with one degree of freedom (the square of a standard normal)."""
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    return math.erfc(math.sqrt(x / 2))


@dataclass(frozen=True)
class ProportionTest:
    """A one-sided two-proportion z-test: is `a` worse than `b` (higher, or lower when `worse` is below)?"""

    z: float  # (p_a - p_b) / standard error, signed so that positive means `a` is worse
    p_value: float  # chance of a gap at least this large in the worse direction if the true ratios were equal


def two_proportion_test(x_a: float, n_a: float, x_b: float, n_b: float, *, worse: str = "above") -> ProportionTest:
    """`x_a` events in `n_a` trials against `x_b` in `n_b`, pooled variance (H0: equal ratios).

    Counts may be fractional (Prometheus' increase() extrapolates); `n_a` and `n_b` must be
    positive. A gap with no variance at all (no event in either cohort) is no evidence.
    """
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both cohorts need at least one trial")
    p_a, p_b = x_a / n_a, x_b / n_b
    pooled = (x_a + x_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return ProportionTest(0.0, 1.0)
    z = (p_a - p_b) / se
    if worse == "below":
        z = -z
    return ProportionTest(z, normal_sf(z))


def per_look_level(false_alarm: float, looks: int) -> float:
    """Bonferroni: the level of one look so that a false alarm at any of `looks` looks has chance ≤ `false_alarm`."""
    return false_alarm / max(1, looks)


@dataclass(frozen=True)
class SampleRatio:
    """The new cohort's observed share of units against the expected one."""

    observed: float  # the new cohort's share, 0..1
    chi2: float
    p_value: float  # chance of a split at least this far off if the assignment worked as planned


def sample_ratio_test(n_new: float, n_control: float, expected: float) -> SampleRatio:
    """Chi-square goodness of fit of (new, control) counts against the expected new share (0..1).

    An expected share of exactly 0 or 1 allows no unit on the other side: any is a mismatch.
    """
    total = n_new + n_control
    if total <= 0:
        raise ValueError("no units to test")
    observed = n_new / total
    chi2 = 0.0
    for seen, share in ((n_new, expected), (n_control, 1 - expected)):
        wanted = total * share
        if wanted > 0:
            chi2 += (seen - wanted) ** 2 / wanted
        elif seen > 0:
            chi2 = math.inf
    return SampleRatio(observed, chi2, chi2_sf_1df(chi2))
