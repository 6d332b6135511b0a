"""Rows side by side: one row per slot (a device, a node) at a time, each in a thread that waits for it.

The threads only wait (on a worker server, a Ray task); the records come back to the caller's
thread, which appends them: one writer. ``Beside`` counts, for each finished row, the rows of this run
that were on the same node at any moment of its run -- the record's ``rows_beside``.

A slot whose node died is retired (``Slot.gone``): the row it had is recorded lost, as any lost row, and the rows
to come go to the slots left; a row a dead slot refused before it started (``SlotGone``) goes to the next live
slot. Until 2026-12-08 the pool gave a dead Ray node's slot row after row, each failing at once ("The node
specified via NodeAffinitySchedulingStrategy doesn't exist"): 2 of 6 rows ran. With no slot left, ``NoSlotLeft``.
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

    def gone(self, error: Exception) -> str | None:
        """Why this slot can run no more rows, its row having ended in ``error`` (its node died), or None."""
        ...


class SlotGone(Exception):
    """Raised by ``Slot.run_row`` for a row that never started there because the slot can run no more rows (its
    node is gone); the message says why. The row goes to another slot."""


class NoSlotLeft(RuntimeError):
    """Every slot is gone (``Slot.gone``) with rows still to run; the message says why each went."""


CLOSE_WAIT_S = 30.0  # a cancelled row's thread returns within this (a Ray task killed, a job cancelled)
S = TypeVar("S", bound=Slot)  # an executor's own slot class: its pool reads the slot's own fields


@dataclass
class Beside:
    """Rows' (node, start, end) on one clock; an unfinished row's end is None."""

    spans: dict[tuple, tuple[str, float, float | None]] = field(default_factory=dict)

    def start(self, key: tuple, node: str, at: float) -> None:
        self.spans[key] = (node, at, None)

    def drop(self, key: tuple) -> None:
        """Forget a row that never ran (a slot refused it: ``SlotGone``)."""
        self.spans.pop(key, None)

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
        gone: dict[int, str] = {}  # retired slot -> why
        refused: list[Row] = []  # rows a gone slot gave back unstarted: they go first
        more = True
        while True:
            while free and (refused or more):
                row = refused.pop(0) if refused else next(rows, None)
                if row is None:
                    more = False
                    break
                self._start(free.pop(0), row, timeout_s, echo, done)
            if not self._running:
                if refused or (more and (row := next(rows, None)) is not None):  # rows left, every slot gone
                    raise NoSlotLeft("; ".join(f"slot {i} on {self.slots[i].node}: {why}" for i, why in gone.items()))
                return
            while True:
                try:
                    i, outcome, why = done.get(timeout=0.2)  # a timeout: Ctrl-C gets through at once
                    break
                except queue.Empty:
                    continue
            row = self._running.pop(i, None)
            if row is None:  # closed meanwhile (close() from another thread): its rows are given up
                return
            if why is None:
                free.append(i)
            else:
                gone[i] = why
                left = len(self.slots) - len(gone)
                echo(
                    f"{self.name}: slot {i} on {self.slots[i].node} is out of the run ({why}); "
                    + (f"the rows to come go to the {left} slot(s) left" if left else "no slot is left")
                )
            if outcome is None:  # refused unstarted: the next live slot runs it
                self.beside.drop(row.key)
                refused.append(row)
                continue
            self.beside.end(row.key, time.monotonic())
            placement = outcome.placement or Placement(self.name, self.slots[i].node)
            outcome.record.update(placement.fields(self.beside.count(row.key)))
            yield row, outcome

    def _start(self, i: int, row: Row, timeout_s: float, echo: Echo, done: queue.Queue) -> None:
        self._running[i] = row
        self.beside.start(row.key, self.slots[i].node, time.monotonic())
        echo(f"{row.tag} on {self.slots[i].node} (slot {i})")
        thread = threading.Thread(target=self._one, args=(i, row, timeout_s, echo, done), daemon=True)
        self._threads[i] = thread
        thread.start()

    def _one(self, i: int, row: Row, timeout_s: float, echo: Echo, done: queue.Queue) -> None:
        """Run ``row`` on slot ``i``; put (i, its outcome or None where the slot refused it, why the slot is gone)."""
        slot = self.slots[i]
        try:
            outcome: RowOutcome | None = slot.run_row(row, row.limit(timeout_s), echo)
            why = None
        except SlotGone as e:  # the row never started: another slot runs it
            outcome, why = None, str(e)
        except Exception as e:  # a lost node, task or server: this row fails, the others go on
            outcome = RowOutcome(no_result(row.job.record, lost=f"{type(e).__name__}: {e}"))
            try:
                why = slot.gone(e)
            except Exception:  # the engine cannot say (its head unreachable): the slot's next row finds out
                why = None
        done.put((i, outcome, why))

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
