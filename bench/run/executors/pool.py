"""Rows side by side: one row per slot (a device, a node) at a time, each in a thread that waits for it.

The threads only wait (on a worker server, a Ray task); the records come back to the caller's
thread, which appends them: one writer. ``Beside`` counts, for each finished row, the rows of this run
that were on the same node at any moment of its run -- the record's ``rows_beside``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from bench.core.placement import Placement, RowOutcome
from bench.run.executors import Echo, Row
from bench.run.executors.remote import no_result


class Slot(Protocol):
    node: str  # the host name the slot's rows run on

    def run_row(self, row: Row, timeout_s: float, echo: Echo) -> RowOutcome:
        """Run one row here (blocking): its record, where it ran, and files to write when it ran elsewhere."""
        ...

    def cancel(self) -> None:
        """Stop the row running here now (called from the caller's thread while ``run_row`` waits)."""
        ...


CLOSE_WAIT_S = 30.0  # a cancelled row's thread returns within this (a Ray task killed, a job cancelled)
S = TypeVar("S", bound=Slot)  # an executor's own slot class: its pool reads the slot's own fields


@dataclass
class Beside:
    """Rows' (node, start, end) on one clock; an unfinished row's end is None."""

    spans: dict[tuple, tuple[str, float, float | None]] = field(default_factory=dict)

    def start(self, key: tuple, node: str, at: float) -> None:
        self.spans[key] = (node, at, None)

    def end(self, key: tuple, at: float) -> None:
        node, start, _ = self.spans[key]
        self.spans[key] = (node, start, at)

    def count(self, key: tuple) -> int:
        """Rows that shared ``key``'s node for some of its time (those still running count)."""
        node, start, end = self.spans[key]
        return sum(
            1
            for k, (n, s, e) in self.spans.items()
            if k != key and n == node and s < (end if end is not None else float("inf")) and (e is None or e > start)
        )


class SlotPool(Generic[S]):
    """Run rows on ``slots``, at most one per slot at a time; ``name`` is the executor's."""

    sequential = False

    def __init__(self, name: str, slots: list[S]) -> None:
        self.name = name
        self.slots = slots
        self.beside = Beside()
        self._running: dict[int, Row] = {}  # slot index -> its row
        self._threads: dict[int, threading.Thread] = {}  # slot index -> the thread waiting on its row

    @property
    def running(self) -> list[Row]:
        return list(self._running.values())

    def run(self, rows: Iterator[Row], timeout_s: float, echo: Echo) -> Iterator[tuple[Row, RowOutcome]]:
        done: queue.Queue = queue.Queue()
        free = list(range(len(self.slots)))
        more = True
        while True:
            while free and more:
                row = next(rows, None)
                if row is None:
                    more = False
                    break
                i = free.pop(0)
                self._running[i] = row
                self.beside.start(row.key, self.slots[i].node, time.monotonic())
                echo(f"{row.tag} on {self.slots[i].node} (slot {i})")
                thread = threading.Thread(target=self._one, args=(i, row, timeout_s, echo, done), daemon=True)
                self._threads[i] = thread
                thread.start()
            if not self._running:
                return
            while True:
                try:
                    i, outcome = done.get(timeout=0.2)  # a timeout: Ctrl-C gets through at once
                    break
                except queue.Empty:
                    continue
            row = self._running.pop(i, None)
            if row is None:  # closed meanwhile (close() from another thread): its rows are given up
                return
            free.append(i)
            self.beside.end(row.key, time.monotonic())
            placement = outcome.placement or Placement(self.name, self.slots[i].node)
            outcome.record.update(placement.fields(self.beside.count(row.key)))
            yield row, outcome

    def _one(self, i: int, row: Row, timeout_s: float, echo: Echo, done: queue.Queue) -> None:
        slot = self.slots[i]
        try:
            outcome = slot.run_row(row, row.limit(timeout_s), echo)
        except Exception as e:  # a lost node, task or server: this row fails, the others go on
            outcome = RowOutcome(no_result(row.job.record, lost=f"{type(e).__name__}: {e}"))
        done.put((i, outcome))

    def close(self) -> None:
        """Cancel the rows in flight and wait (up to ``CLOSE_WAIT_S``) for the threads waiting on them to
        return; ``waiting`` says whether any is left. A connection (Ray's) must not be shut down under a
        thread still inside one of its calls: that crashed a Ray driver with SIGSEGV after Ctrl-C."""
        for i in list(self._running):
            self.slots[i].cancel()
        self._running.clear()
        deadline = time.monotonic() + CLOSE_WAIT_S
        for thread in self._threads.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = {i: t for i, t in self._threads.items() if t.is_alive()}

    @property
    def waiting(self) -> bool:
        """A thread still waits on a cancelled row (after ``close``)."""
        return bool(self._threads)
