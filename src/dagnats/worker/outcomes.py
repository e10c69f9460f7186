"""Typed signals a handler raises to steer retries (outcomes, not errors)."""

from __future__ import annotations

from datetime import timedelta


class PermanentFailure(Exception):  # noqa: N818 - a signal, not an error
    """Raise from a handler to fail the step without any retry."""


class RetryAfter(Exception):  # noqa: N818 - a signal, not an error
    """Raise from a handler to retry after ``delay`` instead of the policy's backoff.

    The attempt still counts against the retry budget; the delay is clamped
    to [100 ms, 1 h].
    """

    def __init__(self, message: str, delay: float | timedelta) -> None:
        super().__init__(message)
        self.delay_s = (
            delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        )
        if self.delay_s <= 0:
            raise ValueError(f"RetryAfter delay must be positive, got {delay!r}")
