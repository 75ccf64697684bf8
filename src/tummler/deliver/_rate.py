"""A per-connector async token bucket: at most ``rate`` sends a second, bursts up to ``burst``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tummler.core.errors import ConfigError

__all__ = ["TokenBucket"]


class TokenBucket:
    """Paces sends so that a provider's rate limit is not hit in the first place.

    The bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second; each send
    takes one, waiting until one is there. Time comes from ``monotonic`` and waiting from
    ``sleep``, both injected, so that tests run a simulated hour in no time.

    Parameters
    ----------
    rate
        Tokens added per second (sends per second, sustained). Must be positive.
    burst
        Most tokens held at once (sends allowed back to back after a quiet spell); at least 1.
    monotonic
        Seconds from a monotonic clock; default :func:`time.monotonic`.
    sleep
        Awaitable sleep; default :func:`asyncio.sleep`.

    Examples
    --------
    >>> import asyncio
    >>> now = [0.0]
    >>> async def fake_sleep(seconds: float) -> None:
    ...     now[0] += seconds
    >>> bucket = TokenBucket(2.0, burst=1, monotonic=lambda: now[0], sleep=fake_sleep)
    >>> async def three() -> None:
    ...     for _ in range(3):
    ...         await bucket.acquire()
    >>> asyncio.run(three())
    >>> now[0]
    1.0
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not rate > 0:
            raise ConfigError(f"rate must be a positive number of sends per second, got {rate!r}")
        if burst < 1:
            raise ConfigError(f"burst must be at least 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = monotonic()
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate:g}, burst={self.burst})"

    async def acquire(self) -> None:
        """Take one token, waiting as long as the rate requires.

        Waiters are served one at a time in arrival order (the lock is fair), so a burst of
        concurrent sends leaves the bucket at the configured rate, never faster.
        """
        async with self._lock:
            self._refill()
            if self._tokens < 1.0:
                await self._sleep((1.0 - self._tokens) / self.rate)
                self._refill()
                # The sleep may return a hair early on a real clock; never go below one send's worth.
                self._tokens = max(self._tokens, 1.0)
            self._tokens -= 1.0

    def _refill(self) -> None:
        now = self._monotonic()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
