"""Per-connection rate limiting: a token bucket, and a strike count before disconnecting.

A socket lives on one server process for its whole life, so its bucket can live there too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float  # tokens added per second
    burst: float  # bucket size
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


@dataclass
class FloodGuard:
    """Refuses events over the rate; after `max_strikes` refusals the client is cut off."""

    bucket: TokenBucket
    max_strikes: int
    strikes: int = 0

    def admit(self, now: float) -> bool:
        if self.bucket.take(now):
            return True
        self.strikes += 1
        return False

    @property
    def exhausted(self) -> bool:
        return self.strikes >= self.max_strikes
