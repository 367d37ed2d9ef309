"""Read-replica routing: round robin over the replicas that answered, skipping the others.

A replica whose connection fails is skipped for ``HEADWAY_DB_REPLICA_RETRY`` seconds,
then tried again by the next read that reaches it.
"""

from __future__ import annotations

import time

from headway.settings import mask_url

__all__ = ["ReplicaRouter"]


class ReplicaRouter:
    def __init__(self, urls: list[str], retry: float) -> None:
        self.urls = list(urls)
        self.retry = retry
        self._down_until = dict.fromkeys(self.urls, 0.0)
        self._next = 0
        self.reads = dict.fromkeys(self.urls, 0)
        self.failures = dict.fromkeys(self.urls, 0)

    def order(self) -> list[str]:
        """The healthy replicas, starting with the next one in turn."""
        if not self.urls:
            return []
        start = self._next % len(self.urls)
        self._next += 1
        now = time.monotonic()
        turn = self.urls[start:] + self.urls[:start]
        return [u for u in turn if self._down_until[u] <= now]

    def mark_down(self, url: str) -> None:
        self._down_until[url] = time.monotonic() + self.retry
        self.failures[url] += 1

    def mark_up(self, url: str) -> None:
        self._down_until[url] = 0.0

    def healthy(self, url: str) -> bool:
        return self._down_until[url] <= time.monotonic()

    def status(self) -> list[dict[str, object]]:
        return [
            {
                "url": mask_url(u),
                "healthy": self.healthy(u),
                "reads": self.reads[u],
                "failures": self.failures[u],
            }
            for u in self.urls
        ]
