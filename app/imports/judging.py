"""Reading and judging an import's rows a batch ahead of the builder, in a second process.

Judging is pure Python (the CSV reader, email and phone validation) and took half the
worker's CPU; the builder mostly waits for PostgreSQL. A forked child reads and judges
batch N+1 while the parent builds batch N, so both cores work. The child runs
``judged_batches`` (the same ``RowJudge`` as in the parent) and sends each batch through
a pipe, which holds about one batch: it never runs far ahead. It touches no database
connection, and exits without running the parent's clean-up.
"""

import contextlib
import gc
import itertools
import multiprocessing
from collections.abc import Iterator

from app.imports import reading
from app.imports.rows import JudgedRow, RowJudge

_DONE = "done"


def judged_batches(
    content: bytes,
    layout: reading.CsvLayout,
    mapping: dict[str, int],
    region: str,
    skip: int,
    size: int,
) -> Iterator[list[JudgedRow]]:
    """The rows after the first ``skip``, judged, in lists of ``size`` (the last shorter)."""
    judge = RowJudge(mapping, layout.headers, region)
    rows = itertools.islice(reading.data_rows(content, layout), skip, None)
    while batch := list(itertools.islice(rows, size)):
        yield judge.judge_batch(batch)


@contextlib.contextmanager
def judged_ahead(
    content: bytes,
    layout: reading.CsvLayout,
    mapping: dict[str, int],
    region: str,
    skip: int,
    size: int,
    rows_left: int,
) -> Iterator[Iterator[list[JudgedRow]]]:
    """``judged_batches``, judged in a child process when more than one batch is left."""
    args = (content, layout, mapping, region, skip, size)
    if rows_left <= size:
        yield judged_batches(*args)
        return
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    # The child starts with the collector off and freezes what it inherits before turning
    # it on: no object of the parent's (a pooled connection) is finalised in the child,
    # where that could talk to PostgreSQL on the parent's socket.
    collecting = gc.isenabled()
    gc.disable()
    try:
        child = context.Process(target=_judge_into, args=(sender, *args), daemon=True)
        child.start()
    finally:
        if collecting:
            gc.enable()
    sender.close()
    try:
        yield _received(receiver)
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()  # the parent stopped early (a failure, or another run got there)
        child.join()


def _judge_into(sender, *args) -> None:
    """In the child: send each judged batch, then ``_DONE`` or the error that stopped it."""
    gc.freeze()
    gc.enable()
    try:
        for batch in judged_batches(*args):
            sender.send(batch)
        sender.send(_DONE)
    except BrokenPipeError:
        pass  # the parent is gone or stopped reading
    except Exception as error:  # noqa: BLE001 - handed to the parent, which records it
        try:
            sender.send(_Failure(error))
        except Exception:  # noqa: BLE001 - an error that does not pickle
            sender.send(_Failure(RuntimeError(f"{type(error).__name__}: {error}")))
    finally:
        sender.close()


class _Failure:
    def __init__(self, error: Exception):
        self.error = error


def _received(receiver) -> Iterator[list[JudgedRow]]:
    while True:
        try:
            message = receiver.recv()
        except EOFError:
            raise RuntimeError("the process judging the rows stopped") from None
        if message == _DONE:
            return
        if isinstance(message, _Failure):
            raise message.error
        yield message
