"""``local``: the rows one after another on this machine, each forked by its backend's warm worker server.

The default, and the suite's behaviour before executors existed: a row's record is appended before the
next row starts, so a row never shares the machine with another of its run; so too a row's MFU peak measured on
an unloaded node serves the later rows with its key (``peaks``, bench.measure.mfu.reusable_peak).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.core.placement import Placement, RowOutcome
from bench.measure.mfu import reusable_peak
from bench.run.executors import Echo, Row
from bench.run.workers import Workers


class Local:
    name = "local"
    sequential = True

    def __init__(self, job_dir: Path) -> None:
        self.workers = Workers(job_dir)
        self.placement = Placement(self.name, socket.gethostname())
        self._running: list[Row] = []
        self.peaks: dict[str, list[float]] = {}  # MFU peaks its rows measured, for its later rows (mfu.reusable_peak)

    @property
    def running(self) -> list[Row]:
        return list(self._running)

    def start(self, backends: list[str], echo: Echo) -> None:
        cold = [b for b in backends if not self.workers.warm(b)]  # not kept warm by an earlier run (shared_servers)
        if cold:
            echo(f"starting worker servers: importing {', '.join(cold)} once for every run")
        self.workers.start(backends)

    def run(self, rows: Iterator[Row], timeout_s: float, echo: Echo) -> Iterator[tuple[Row, RowOutcome]]:
        for row in rows:
            self._running = [row]
            row.job.peaks = dict(self.peaks)
            rec = self.workers.run(row.job, row.limit(timeout_s), echo)
            if kept := reusable_peak(rec):
                self.peaks[kept[0]] = kept[1]
            self._running = []
            rec.update(self.placement.fields(0))
            yield row, RowOutcome(rec, placement=self.placement)

    def close(self) -> None:
        self.workers.close()


def make(opts: Any, run_dir: Path) -> Local:
    return Local(run_dir / ".jobs")
