"""Execute and Discover (rate limits): token buckets, one per sender.

``TokenBucket`` refills at ``rate`` tokens per second up to ``burst``; gossip keeps one per
sending peer, the A2A server one per anonymous client address (``KeyedRateLimiter``). The
keyed limiter holds at most ``max_keys`` buckets: to make room it forgets buckets that have
refilled completely (a full bucket is what a new sender gets anyway, so forgetting one resets
nobody), and when every bucket is in use it refuses new senders rather than reset anyone."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    stamp: float = field(default_factory=time.monotonic)

    def refill(self, now: float) -> float:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens

    def take(self, count: int = 1) -> bool:
        if self.refill(time.monotonic()) < count:
            return False
        self.tokens -= count
        return True

    def wait_s(self, count: int = 1) -> float:
        """Seconds until ``count`` tokens are there."""
        missing = count - self.refill(time.monotonic())
        return max(0.0, missing / self.rate) if self.rate > 0 else math.inf


class KeyedRateLimiter:
    """One token bucket per key (a client address), in bounded memory."""

    def __init__(self, *, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys and not self._forget_full():
                return 1.0  # every bucket in use: no room for a new sender right now
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self.burst)
        else:
            self._buckets.move_to_end(key)
        if bucket.take():
            return 0.0
        return max(bucket.wait_s(), 1e-3)

    def _forget_full(self) -> bool:
        """Forget the least recently used buckets that have refilled; True if any was."""
        now = time.monotonic()
        forgotten = False
        for key in list(self._buckets):
            if self._buckets[key].refill(now) < self.burst:
                break  # oldest first: a busy bucket here means busy ones follow, mostly
            del self._buckets[key]
            forgotten = True
        return forgotten
