"""What a worker process runs: a renderer of its own, built once, turning batches into encoded letters."""

from __future__ import annotations

import gc
from pathlib import Path

import pyarrow as pa

from crmlist.errors import CrmlistError
from crmlist.letters.job import LetterJob, RenderedChunk
from crmlist.letters.limits import limit_worker_memory
from crmlist.letters.render import Renderer
from crmlist.workspace import Workspace

_renderer: Renderer | None = None


class WorkerError:
    """A CrmlistError raised in a worker, carried back as plain fields (its constructor does not pickle)."""

    def __init__(self, exc: CrmlistError) -> None:
        self.kind, self.where, self.what, self.hint = type(exc), exc.where, exc.what, exc.hint

    def error(self) -> CrmlistError:
        return self.kind(self.where, self.what, self.hint)


def start_renderer(ws: Workspace, job: LetterJob, names: list[str], out_dir: Path) -> None:
    """The worker's initializer: compile the templates once, then cap the memory letters may take."""
    global _renderer
    _renderer = Renderer(ws, job, out_dir)
    _renderer.prepare(names)
    limit_worker_memory()
    gc.freeze()  # modules and compiled templates live as long as the worker: keep them out of every GC pass


def render_in_worker(batch: pa.RecordBatch) -> RenderedChunk | WorkerError:
    """One batch rendered and encoded; bad input comes back as a value, to be raised in the parent."""
    assert _renderer is not None, "worker started without its renderer"
    try:
        return _renderer.render_chunk(batch)
    except CrmlistError as exc:
        return WorkerError(exc)
