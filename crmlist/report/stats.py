"""Statistics of targets against controls: response uplift (Wald, z-test) and revenue per head (Welch)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

# scipy.special holds the distribution functions scipy.stats calls, at a quarter of its import time.
from scipy.special import ndtr, ndtri, stdtr, stdtrit

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Group:
    """One side of a comparison: contacts, distinct responders and exact revenue sums in cents."""

    n: int = 0
    responders: int = 0
    cents: int = 0  # sum over contacts of revenue, in cents (non-responders add 0)
    cents_sq: int = 0  # sum over contacts of squared revenue, in cents squared

    def __add__(self, other: Group) -> Group:
        return Group(
            self.n + other.n,
            self.responders + other.responders,
            self.cents + other.cents,
            self.cents_sq + other.cents_sq,
        )

    @property
    def revenue(self) -> Decimal:
        return Decimal(self.cents).scaleb(-2)

    @property
    def rate(self) -> float | None:
        return self.responders / self.n if self.n else None

    @property
    def per_head(self) -> float | None:
        return float(Fraction(self.cents, 100 * self.n)) if self.n else None

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1) of revenue per contact, exact until the final float."""
        if self.n < 2:
            return None
        return float(Fraction(self.n * self.cents_sq - self.cents**2, 10_000 * self.n * (self.n - 1)))


@dataclass(frozen=True)
class Interval:
    """An estimate with its two-sided 95% interval."""

    estimate: float
    low: float | None
    high: float | None

    def scaled(self, factor: float) -> Interval:
        low = None if self.low is None else self.low * factor
        high = None if self.high is None else self.high * factor
        return Interval(self.estimate * factor, low, high)


@dataclass(frozen=True)
class Uplift:
    """Response rates compared: absolute uplift with a Wald interval, relative uplift, pooled z-test."""

    absolute: Interval
    relative: float | None
    p_value: float | None


@dataclass(frozen=True)
class RevenueDifference:
    """Revenue per head compared with Welch's t: the difference, its interval and p-value."""

    difference: Interval
    df: float | None
    p_value: float | None


def response_uplift(targets: Group, control: Group) -> Uplift | None:
    """rate_t - rate_c, its unpooled 95% Wald interval and the pooled two-proportion z-test p-value."""
    if not targets.n or not control.n:
        return None
    p_t = targets.responders / targets.n
    p_c = control.responders / control.n
    uplift = p_t - p_c
    half = float(ndtri(0.5 + CONFIDENCE / 2)) * math.sqrt(p_t * (1 - p_t) / targets.n + p_c * (1 - p_c) / control.n)
    pooled = (targets.responders + control.responders) / (targets.n + control.n)
    p_value = None
    # With no responder (or only responders) the test is undefined, as chi2_contingency refuses it.
    if 0 < pooled < 1:
        z = uplift / math.sqrt(pooled * (1 - pooled) * (1 / targets.n + 1 / control.n))
        p_value = float(2 * ndtr(-abs(z)))
    relative = uplift / p_c if p_c else None
    return Uplift(Interval(uplift, uplift - half, uplift + half), relative, p_value)


def revenue_difference(targets: Group, control: Group) -> RevenueDifference | None:
    """Per-head revenue difference with a Welch-t 95% interval (Welch-Satterthwaite degrees of freedom)."""
    if targets.per_head is None or control.per_head is None:
        return None
    diff = targets.per_head - control.per_head
    v_t, v_c = targets.variance, control.variance
    # One contact in a group, or no spread on either side: no interval, as scipy gives nan.
    if v_t is None or v_c is None or v_t + v_c == 0:
        return RevenueDifference(Interval(diff, None, None), None, None)
    a, b = v_t / targets.n, v_c / control.n
    se = math.sqrt(a + b)
    df = (a + b) ** 2 / (a**2 / (targets.n - 1) + b**2 / (control.n - 1))
    half = float(stdtrit(df, 0.5 + CONFIDENCE / 2)) * se
    p_value = float(2 * stdtr(df, -abs(diff / se)))
    return RevenueDifference(Interval(diff, diff - half, diff + half), df, p_value)
