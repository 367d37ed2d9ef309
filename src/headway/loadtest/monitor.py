"""Watch the service while a load test runs: its memory and database pool, read from its
own ``/metrics`` and (with the admin token) ``/health/ready`` and ``/admin/config``."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from headway.loadtest.criteria import Service

__all__ = ["Monitor", "read_metrics"]

MEMORY = "headway_process_resident_memory_bytes"
POOL_OUT = "headway_db_pool_checked_out"


def read_metrics(text: str) -> dict[str, float]:
    """``{memory, pool_out}`` from a Prometheus text page: resident bytes of every web
    process, and the most connections checked out of one database (all processes)."""
    memory, pools = 0.0, dict[str, float]()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == MEMORY:
                memory += sample.value
            elif sample.name == POOL_OUT:
                db = sample.labels.get("db", "")
                pools[db] = pools.get(db, 0.0) + sample.value
    return {"memory": memory, "pool_out": max(pools.values(), default=0.0)}


def _saturated(tree: Any) -> bool | None:
    """The ``pool_saturated`` flag anywhere in a readiness detail (None when absent)."""
    if isinstance(tree, dict):
        if isinstance(tree.get("pool_saturated"), bool):
            return bool(tree["pool_saturated"])
        found = [_saturated(v) for v in tree.values()]
        flags = [f for f in found if f is not None]
        return any(flags) if flags else None
    return None


class Monitor:
    """Samples the service every ``interval`` seconds in a thread until stopped."""

    def __init__(self, host: str, admin_token: str | None, interval: float = 2.0) -> None:
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self.client = httpx.Client(base_url=host, headers=headers, timeout=10)
        self.admin = admin_token is not None
        self.interval = interval
        self.service = Service()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="loadtest-monitor", daemon=True)

    def start(self) -> None:
        self.service.pool_max = self._pool_max()
        self.sample()
        self._thread.start()

    def stop(self) -> Service:
        self._stop.set()
        self._thread.join(30)
        self.sample()
        self.client.close()
        return self.service

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def _pool_max(self) -> int | None:
        if not self.admin:
            return None
        try:
            value = self.client.get("/admin/config").json().get("HEADWAY_POOL_MAX")
        except (httpx.HTTPError, ValueError):
            return None
        return int(value) if isinstance(value, int) else None

    def sample(self) -> None:
        """One reading of /metrics (and /health/ready with the admin token)."""
        s = self.service
        try:
            response = self.client.get("/metrics")
            response.raise_for_status()
            values = read_metrics(response.text)
        except (httpx.HTTPError, ValueError) as exc:
            s.errors.append(f"/metrics: {type(exc).__name__}: {exc}")
            return
        s.samples += 1
        if values["memory"] > 0:
            s.memory_first = values["memory"] if s.memory_first is None else s.memory_first
            s.memory_last = values["memory"]
            s.memory_peak = max(s.memory_peak or 0.0, values["memory"])
        s.pool_peak = max(s.pool_peak, values["pool_out"])
        if self.admin:
            self._sample_ready()

    def _sample_ready(self) -> None:
        try:
            flag = _saturated(self.client.get("/health/ready").json())
        except (httpx.HTTPError, ValueError):
            return
        if flag is not None:
            self.service.pool_checked = True
            self.service.pool_saturated += int(flag)
