"""The process's bounded worker pool for generation jobs.

Owned by the process (the cached Studio object), not by a browser session: closing a tab does not stop a job.
A heartbeat renews the lease of every job this process holds, including ones still waiting for a free worker,
so another process never mistakes them for abandoned work, and every ``maintenance_s`` it picks up what a dead
process or a database outage left behind (``GenerationService.maintain``).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from studio_core.services.generation import GenerationService

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(self, generation: GenerationService, *, workers: int, maintenance_s: float = 60.0) -> None:
        self.generation = generation
        self.maintenance_s = maintenance_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="studio-job")
        self._lock = threading.Lock()
        self._in_flight: dict[int, Future] = {}
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name="studio-job-heartbeat", daemon=True)
        self._heartbeat.start()

    def enqueue(self, job_id: int) -> Future:
        with self._lock:
            future = self._in_flight.get(job_id)
            if future is not None and not future.done():
                return future  # already queued or running here
            future = self._pool.submit(self._run, job_id)
            self._in_flight[job_id] = future
            return future

    def _run(self, job_id: int) -> None:
        try:
            self.generation.run_job(job_id)
        finally:
            with self._lock:
                self._in_flight.pop(job_id, None)

    def resume_unfinished(self) -> tuple[int, int]:
        resumed, voided = self.generation.resume_unfinished(self.enqueue)
        if resumed or voided:
            log.info("resumed %d unfinished generation jobs, voided %d", resumed, voided)
        return resumed, voided

    def _beat(self) -> None:
        interval = min(max(1.0, self.generation.lease_s / 3), self.maintenance_s)
        next_maintenance = time.monotonic() + self.maintenance_s
        while not self._stop.wait(interval):
            with self._lock:
                ids = list(self._in_flight)
            try:
                self.generation.renew_leases(ids)
                if time.monotonic() >= next_maintenance:
                    next_maintenance = time.monotonic() + self.maintenance_s
                    resumed, voided, expired = self.generation.maintain(self.enqueue)
                    if resumed or voided or expired:
                        log.info("maintenance: resumed %d jobs, voided %d, expired %d holds",
                                 resumed, voided, expired)
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the heartbeat
                log.warning("job heartbeat failed; trying again in %.0f s", interval, exc_info=True)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """For tests and shutdown: wait until every queued job has finished."""
        with self._lock:
            futures = list(self._in_flight.values())
        from concurrent.futures import wait

        done, pending = wait(futures, timeout=timeout)
        return not pending

    def shutdown(self, wait: bool = True) -> None:
        self._stop.set()
        self.generation.stop()
        self._pool.shutdown(wait=wait, cancel_futures=True)
