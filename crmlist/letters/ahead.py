"""DuckDB's work for the next range of letters, done in a thread while the workers render this one."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import duckdb

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Ahead(Generic[T]):
    """Iterates what produce() yields, produced in a thread at most `depth` items ahead of the reader.

    DuckDB releases the GIL while it runs a query, so the next range's query runs beside the rendering
    instead of leaving the workers idle while the parent waits for it. produce() must use `con` alone,
    and nothing else may use `con` until the `with` block is left: leaving it (normally, by an error or
    a signal) stops the thread, interrupting a query under way, and waits for it.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, produce: Callable[[], Iterator[T]], depth: int = 1) -> None:
        self.con = con
        self.produce = produce
        self.items: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="crmlist-letters-ahead", daemon=True)

    def __enter__(self) -> Ahead[T]:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        while self.thread.is_alive():
            self.con.interrupt()  # a query under way stops at once
            with contextlib.suppress(queue.Empty):
                self.items.get(timeout=0.05)  # a put under way goes through
        self.thread.join()

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self.items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]

    def _run(self) -> None:
        try:
            for item in self.produce():
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the reader, raised there
            if not self.stopping.is_set():
                self._put(_Failure(exc))

    def _put(self, item: object) -> bool:
        while not self.stopping.is_set():
            try:
                self.items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False
