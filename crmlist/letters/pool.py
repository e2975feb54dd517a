"""Worker processes that map a function over a stream in order, few items in flight, dying with their parent."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from crmlist.errors import CrmlistError, UsageError

T = TypeVar("T")
R = TypeVar("R")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
IN_FLIGHT_PER_WORKER = 2  # enough to keep every worker busy while the parent writes; memory stays flat


def pool_size(jobs: int | None) -> int:
    """Worker processes for `jobs`: the number given, else the cores this process may run on."""
    if jobs is not None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise UsageError("--jobs", f"must be a whole number >= 1, got {jobs!r}", "e.g. --jobs 4")
        return jobs
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux), so no worker outlives a killed run."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _start_worker(parent_pid: int, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us
    initializer(*initargs)


def _ready() -> None:
    """A first task for each worker, so that all of them start at once."""


def _stop(workers: list[BaseProcess]) -> None:
    """Terminate these workers now (SIGTERM, SIGINT or an error in the parent) and reap them."""
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.terminate()
    for worker in workers:
        worker.join(timeout=2)
        if worker.is_alive():
            worker.kill()
            worker.join(timeout=2)


class WorkerPool:
    """`jobs` spawned worker processes, started at once so that they load while the parent goes on.

    Each worker runs initializer(*initargs) once (a renderer's templates). With tasks_per_worker, a
    fresh set of workers takes over after jobs x tasks_per_worker tasks (for libraries whose caches
    only grow); the pool does this itself, since max_tasks_per_child can deadlock before Python 3.14
    (gh-115634). Workers are spawned: they share nothing with the parent (no DuckDB connection).
    Leaving the `with` block by an exception terminates them at once; leaving it normally waits.
    """

    def __init__(
        self,
        jobs: int,
        initializer: Callable[..., None],
        initargs: tuple[Any, ...] = (),
        tasks_per_worker: int | None = None,
    ) -> None:
        self.jobs = jobs
        self.start_args = (os.getpid(), initializer, initargs)
        self.tasks_per_set = jobs * tasks_per_worker if tasks_per_worker else None
        self.workers: list[BaseProcess] = []  # every worker ever started, to stop or reap them
        self.executor = self._start()
        self.submitted = 0

    def _start(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=self.start_args,
        )
        for _ in range(self.jobs):  # each submit starts one more worker while none is idle
            executor.submit(_ready)
        self.workers.extend(getattr(executor, "_processes", {}).values())  # private; 3.11 has no public way
        return executor

    def submit(self, func: Callable[[T], R], item: T) -> Future[R]:
        """func(item) in a worker; the workers give way to a fresh set after their share of tasks."""
        if self.tasks_per_set is not None and self.submitted >= self.tasks_per_set:
            self.executor.shutdown(wait=False)  # its workers finish what they were given, then exit
            self.executor = self._start()
            self.submitted = 0
        self.submitted += 1
        return self.executor.submit(func, item)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is None:
            self.executor.shutdown(wait=True)
            for worker in self.workers:
                worker.join()
        else:
            self.executor.shutdown(wait=False, cancel_futures=True)
            _stop(self.workers)

    def map_in_order(self, func: Callable[[T], R], items: Iterable[T]) -> Generator[R, None, None]:
        """func(item) for every item, yielded in the items' order.

        At most IN_FLIGHT_PER_WORKER x jobs items are submitted and not yet yielded, so memory stays
        flat whatever the stream's length.
        """
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(self.submit(func, item))
                if len(pending) >= IN_FLIGHT_PER_WORKER * self.jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            self.__exit__(BrokenProcessPool, None, None)
            raise CrmlistError(
                "letters", "a worker process died (killed, or out of memory)", "retry with fewer jobs"
            ) from None
        except BaseException as exc:
            self.__exit__(type(exc), exc, None)
            raise


def map_in_order(
    func: Callable[[T], R],
    items: Iterable[T],
    jobs: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...] = (),
    tasks_per_worker: int | None = None,
) -> Generator[R, None, None]:
    """func(item) for every item in a WorkerPool of its own, yielded in the items' order."""
    with WorkerPool(jobs, initializer, initargs, tasks_per_worker) as pool:
        yield from pool.map_in_order(func, items)
