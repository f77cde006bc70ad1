"""Reading and judging an import's rows a batch ahead of the builder, in a second process.

Judging is pure Python (the CSV reader, email and phone validation) and took half the
worker's CPU; the builder mostly waits for PostgreSQL. A forked child reads and judges
batch N+1 while the parent builds batch N, so both cores work; a thread of the parent's
reads and unpickles each batch while the builder waits for PostgreSQL. The child runs
``judged_batches`` (the same ``RowJudge`` as in the parent) and sends each batch through
a pipe; the thread keeps at most one batch waiting, so the child runs at most about two
batches ahead. The child touches no database connection, and exits without running the
parent's clean-up.
"""

import contextlib
import gc
import itertools
import multiprocessing
import queue
import threading
from collections.abc import Iterator

from app.imports import reading
from app.imports.rows import JudgedRow, RowJudge

_DONE = "done"
_END_OF_BATCH = "end of batch"
PART_ROWS = 250  # judged rows per message


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
    receiving = _Receiving(receiver)
    try:
        yield receiving.batches()
    finally:
        if child.is_alive():
            child.kill()  # the parent stopped early (a failure, or another run got there)
        child.join()  # its end of the pipe is closed now: the receiving thread ends
        receiving.stop()
        receiver.close()


def _judge_into(sender, *args) -> None:
    """In the child: send each judged batch, then ``_DONE`` or the error that stopped it."""
    gc.freeze()
    gc.enable()
    try:
        for batch in judged_batches(*args):
            # In parts: the parent's thread unpickles each holding the GIL, so it must not
            # hold it long while the builder has Python to run.
            for start in range(0, len(batch), PART_ROWS):
                sender.send(batch[start : start + PART_ROWS])
            sender.send(_END_OF_BATCH)
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


class _Receiving:
    """The child's batches, read from the pipe and unpickled by a thread of the parent's,
    one batch ahead: that work overlaps the builder's waits for PostgreSQL."""

    def __init__(self, receiver):
        self.receiver = receiver
        self.ahead: queue.Queue = queue.Queue(maxsize=1)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self) -> None:
        batch: list[JudgedRow] = []
        while True:
            try:
                message = self.receiver.recv()
            except (EOFError, OSError):
                message = _Failure(RuntimeError("the process judging the rows stopped"))
            if isinstance(message, list):
                batch += message
                continue
            if message == _END_OF_BATCH:
                message, batch = batch, []
            while not self.stopping.is_set():
                with contextlib.suppress(queue.Full):
                    self.ahead.put(message, timeout=0.1)
                    break
            if self.stopping.is_set() or not isinstance(message, list):
                return

    def batches(self) -> Iterator[list[JudgedRow]]:
        while True:
            message = self.ahead.get()
            if isinstance(message, _Failure):
                raise message.error
            if message == _DONE:
                return
            yield message

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
