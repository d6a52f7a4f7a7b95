"""Sampling jobs: a bounded queue in front of ``max_concurrent`` worker threads, with progress for polling.

A burst of requests becomes queued jobs (cheap: a request and a closure each) rather than concurrent model runs, so
memory stays bounded by ``max_concurrent``; past ``max_queued`` waiting jobs new ones are refused (HTTP 503). Finished
jobs are kept for polling until ``keep_finished`` newer ones have finished.

Progress counts denoiser calls: every sampler makes one per step, so ``calls / planned`` is the fraction of sampling
done. A forward hook on the denoiser adds to the job that the calling worker thread is running (a thread-local), so
concurrent jobs never count each other's steps."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

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
    planned_calls: int = 0  # denoiser calls the job will make (set by its work function)
    calls: int = 0
    result: Any = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def progress(self) -> float:
        if self.status is JobStatus.DONE:
            return 1.0
        if self.status is not JobStatus.RUNNING or self.planned_calls <= 0:
            return 0.0
        return min(self.calls / self.planned_calls, 0.99)  # decoding follows the last step


_current = threading.local()  # .job, .queue: the Job this worker thread is running, and its JobQueue


def current_job() -> Job | None:
    return getattr(_current, "job", None)


class JobQueue:
    def __init__(self, max_concurrent: int = 1, max_queued: int = 64, keep_finished: int = 256) -> None:
        if max_concurrent < 1 or max_queued < 1:
            raise MelodiffError("max_concurrent and max_queued must be at least 1")
        self.max_concurrent, self.max_queued, self.keep_finished = max_concurrent, max_queued, keep_finished
        self._executor = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="melodiff-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._seq = 0
        self._stopping = False
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []

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
        """Cancel queued jobs and stop running ones at their next sampler step (then the hooks go)."""
        self._stopping = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        if not self.count(JobStatus.RUNNING):
            self._remove_hooks()

    # ---- progress --------------------------------------------------------------------------------------------------
    def watch(self, denoiser: torch.nn.Module) -> None:
        """Count ``denoiser`` calls towards the job of the calling worker thread (this queue's workers only: a
        denoiser may serve several apps, as in the tests)."""

        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            job = current_job()
            if job is None or getattr(_current, "queue", None) is not self:
                return
            if self._stopping:
                raise _Stopping
            job.calls += 1

        self._hooks.append(denoiser.register_forward_hook(hook))

    def _remove_hooks(self) -> None:
        while self._hooks:
            self._hooks.pop().remove()

    # ---- internals -------------------------------------------------------------------------------------------------
    def _run(self, job: Job, work: Callable[[Job], Any]) -> None:
        job.status = JobStatus.RUNNING
        _current.job, _current.queue = job, self
        try:
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
            _current.job = _current.queue = None
            job.done.set()
            if self._stopping and not self.count(JobStatus.RUNNING):
                self._remove_hooks()

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.done.is_set()]
        for job in finished[:max(len(finished) - self.keep_finished, 0)]:
            del self._jobs[job.id]
