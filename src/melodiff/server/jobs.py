"""Sampling jobs: a bounded queue in front of ``max_concurrent`` worker threads, with progress for polling.

A burst of requests becomes queued jobs (cheap: a request and a closure each) rather than concurrent model runs, so
memory stays bounded by ``max_concurrent``; past ``max_queued`` waiting jobs new ones are refused (HTTP 503). Finished
jobs are kept for polling until ``keep_finished`` newer ones have finished.

Progress counts denoiser calls: the pipeline plans them (diffusion/windows.py) and reports every one to the job's
``report``, so ``calls / planned`` is the fraction of sampling done. ``report`` is also where a running job stops
when the server shuts down."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from melodiff.errors import MelodiffError
from melodiff.server.schemas import JobStatus

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """Too many jobs are waiting; the client should retry later."""


class _Stopping(Exception):
    """Raised inside a running job's denoiser call once the queue shuts down, so the server stops promptly."""


@dataclass
class Job:
    id: str
    kind: str
    seq: int  # submission order, for queue positions
    status: JobStatus = JobStatus.QUEUED
    planned_calls: int = 0  # denoiser calls the job will make (reported by the pipeline)
    calls: int = 0
    result: Any = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def report(self, calls: int, planned: int) -> None:
        """The pipeline's progress callback: after every denoiser call."""
        if self.stop.is_set():
            raise _Stopping
        self.calls, self.planned_calls = calls, planned

    @property
    def progress(self) -> float:
        if self.status is JobStatus.DONE:
            return 1.0
        if self.status is not JobStatus.RUNNING or self.planned_calls <= 0:
            return 0.0
        return min(self.calls / self.planned_calls, 0.99)  # decoding follows the last step


class JobQueue:
    def __init__(self, max_concurrent: int = 1, max_queued: int = 64, keep_finished: int = 256) -> None:
        if max_concurrent < 1 or max_queued < 1:
            raise MelodiffError("max_concurrent and max_queued must be at least 1")
        self.max_concurrent, self.max_queued, self.keep_finished = max_concurrent, max_queued, keep_finished
        self._executor = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="melodiff-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._seq = 0

    # ---- submitting and polling --------------------------------------------------------------------------------
    def submit(self, kind: str, work: Callable[[Job], Any]) -> Job:
        """Queue ``work(job)``; its return value becomes ``job.result``. A MelodiffError it raises becomes
        ``job.error`` (its message); any other exception is logged and reported as an internal error."""
        with self._lock:
            if self.count(JobStatus.QUEUED) >= self.max_queued:
                raise QueueFull(f"{self.max_queued} jobs are already waiting; try again in a moment")
            self._seq += 1
            job = Job(uuid.uuid4().hex, kind, self._seq)
            self._jobs[job.id] = job
            self._forget_old()
        self._executor.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def count(self, status: JobStatus) -> int:
        return sum(job.status is status for job in list(self._jobs.values()))

    def position(self, job: Job) -> int:
        """Queued jobs submitted before ``job`` (0 once it runs)."""
        if job.status is not JobStatus.QUEUED:
            return 0
        return sum(j.status is JobStatus.QUEUED and j.seq < job.seq for j in list(self._jobs.values()))

    def shutdown(self) -> None:
        """Cancel queued jobs and stop running ones at their next denoiser call (or before they start)."""
        with self._lock:
            for job in self._jobs.values():
                job.stop.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ---- internals -------------------------------------------------------------------------------------------------
    def _run(self, job: Job, work: Callable[[Job], Any]) -> None:
        job.status = JobStatus.RUNNING
        try:
            if job.stop.is_set():
                raise _Stopping
            job.result = work(job)
            job.status = JobStatus.DONE
        except MelodiffError as exc:
            job.error, job.status = str(exc), JobStatus.FAILED
        except _Stopping:
            job.error, job.status = "the server is stopping", JobStatus.FAILED
        except Exception:
            log.exception("job %s (%s) failed", job.id, job.kind)
            job.error, job.status = "internal error while sampling (see the server log)", JobStatus.FAILED
        finally:
            job.done.set()

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.done.is_set()]
        for job in finished[:max(len(finished) - self.keep_finished, 0)]:
            del self._jobs[job.id]
