"""The one reader of a child's output (workers and data-parallel ranks): log, progress, tail, a full disk."""

from __future__ import annotations

import io

from bench.run.pipes import TAIL_LINES, pump, row_prefix


class _FullDisk(io.StringIO):
    def write(self, s: str) -> int:
        raise OSError(28, "No space left on device")


def test_progress_is_shown_other_lines_logged_and_the_tail_keeps_the_last_ones():
    lines = ["@@ epoch 1/2\n", *(f"line {i}\n" for i in range(30)), "\n", "@@ epoch 2/2\n"]
    log, tail, shown = io.StringIO(), [], []
    pump(iter(lines), log, tail, shown.append, "  [t/torch]")
    assert shown == ["  [t/torch] epoch 1/2", "  [t/torch] epoch 2/2"]
    assert log.getvalue() == "".join(lines)  # the log has everything, progress included
    assert tail == [f"line {i}" for i in range(30 - TAIL_LINES, 30)]  # blank lines are not kept


def test_a_log_that_cannot_be_written_is_said_once_and_the_pipe_still_drains():
    tail: list[str] = []
    lines = [f"line {i}\n" for i in range(5)] + ["@@ done\n"]
    shown: list[str] = []
    pump(iter(lines), _FullDisk(), tail, shown.append, ">")
    assert tail[0] == "(log not written: [Errno 28] No space left on device)"
    assert tail[1:] == [f"line {i}" for i in range(5)] and shown == ["> done"]  # every line read
    pump(iter(["@@ rank 1 progress\n"]), None, tail, None, ">")  # a rank whose progress is not shown


def test_a_repeats_progress_lines_say_which_repeat_they_are():
    """Repeats run side by side under devices, Ray and SLURM: their progress lines must differ."""
    rows = [{"task": "t", "backend": "torch", "repeat": r} for r in (0, 1, 2)]
    assert [row_prefix(r) for r in rows] == ["  [t/torch]", "  [t/torch #2]", "  [t/torch #3]"]
