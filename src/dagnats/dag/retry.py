"""Retry policy arithmetic: how many retries a step gets and how long to wait."""

from __future__ import annotations

from dataclasses import dataclass

from dagnats.dag.model import RetryPolicy, StepDef, WorkflowDef

LEGACY_RETRY_DELAY_NS = 5_000_000_000
LEASE_ONLY_RETRIES = 2
_MIN_DELAY_NS = 1_000_000
_MAX_DELAY_NS = 3_600_000_000_000
_MIN_RETRY_AFTER_MS = 100
_MAX_RETRY_AFTER_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    """The retry policy that applies to one step, after precedence."""

    policy: RetryPolicy | None

    @property
    def max_retries(self) -> int:
        """Retries allowed after a failure (``max_attempts`` counts retries)."""
        return self.policy.max_attempts if self.policy else 0

    @property
    def lease_retries(self) -> int:
        """Retries allowed after lost leases: the policy's, or 2 without one."""
        return self.policy.max_attempts if self.policy else LEASE_ONLY_RETRIES


def effective_policy(defn: WorkflowDef, step: StepDef) -> EffectivePolicy:
    """Step ``retry`` > workflow ``default_retry`` > legacy ``retries`` > none."""
    if step.retry is not None:
        return EffectivePolicy(step.retry)
    if defn.default_retry is not None:
        return EffectivePolicy(defn.default_retry)
    if step.retries > 0:
        legacy = RetryPolicy(
            max_attempts=step.retries,
            strategy="fixed",
            initial_delay=LEGACY_RETRY_DELAY_NS,
        )
        return EffectivePolicy(legacy)
    return EffectivePolicy(None)


def retry_delay_ns(policy: RetryPolicy, retry_number: int, unit: float) -> int:
    """Delay before retry ``retry_number`` (1 = the first retry).

    ``unit`` is a number in [0, 1) used for jitter: ``d × (1 − jitter·unit)``,
    so jitter only shortens a delay and never exceeds ``max_delay``.
    """
    initial = policy.initial_delay
    if policy.strategy == "linear":
        delay = float(initial * retry_number)
    elif policy.strategy == "exponential":
        delay = initial * policy.multiplier ** (retry_number - 1)
    else:
        delay = float(initial)
    if policy.max_delay > 0:
        delay = min(delay, float(policy.max_delay))
    delay = min(max(delay, _MIN_DELAY_NS), _MAX_DELAY_NS)
    return round(delay * (1.0 - policy.jitter * unit))


def clamp_retry_after_ms(retry_after_ms: int) -> int:
    """A worker-requested delay clamped to [100 ms, 1 h]."""
    return min(max(retry_after_ms, _MIN_RETRY_AFTER_MS), _MAX_RETRY_AFTER_MS)
