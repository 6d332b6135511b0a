"""The job contract (bench.core.job): what crosses to a worker is one typed object, checked on the way in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core.job import DistLayout, Job, JobError
from tests.conftest import REPO

ROW = {"task": "t", "backend": "numpy", "repeat": 0}
DIST = {"workers": 2, "mode": "strong", "per_worker_batch": 8}


def test_a_job_round_trips_through_json_and_names_its_row():
    job = Job(
        dict(ROW),
        spec={"name": "t"},
        data="d.npz",
        classes=["a", "b"],
        transfer=[{"data": "x.npz"}],
        dist=DistLayout(workers=2, mode="strong", per_worker_batch=8),
    )
    assert Job.from_json(json.loads(json.dumps(job.to_json()))) == job
    assert job.key == ("t", "numpy", 0)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ([1, 2], "a job is a JSON object, got list"),
        ({"spec": {}}, "the job has no record"),
        ({"record": {"task": "t", "backend": "b"}}, "job.record has no 'repeat'"),
        ({"record": ROW, "data": 7}, "job.data: expected str, got int"),
        ({"record": ROW, "dist": [2]}, "job.dist: expected dict, got list"),
        ({"record": ROW, "classes": "ab"}, "job.classes: expected list, got str"),
        ({"record": ROW, "dist": {"workers": 2, "mode": "strong"}}, "job.dist has no 'per_worker_batch'"),
        ({"record": ROW, "dist": {**DIST, "workers": "2"}}, "job.dist.workers: expected int, got str"),
        ({"record": ROW, "dist": {**DIST, "local": 1}}, "job.dist.local: expected bool, got int"),
        (
            {"record": ROW, "dist": {**DIST, "per_worker_batch": True}},
            "job.dist.per_worker_batch: expected int, got bool",
        ),
        ({"record": ROW, "dist": {**DIST, "ranks": 2}}, "unknown job.dist key(s): ranks"),
        ({"record": ROW, "shared": {}}, "unknown job field(s): shared"),
    ],
)
def test_a_job_that_is_not_one_names_the_field(raw: object, says: str):
    with pytest.raises(JobError) as err:
        Job.from_json(raw)
    assert str(err.value) == says


def test_the_worker_refuses_a_foreign_job_file_naming_the_field(tmp_path: Path, clean_env):
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"record": ROW, "result": str(tmp_path / "r.json"), "paths": []}))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run.worker", str(path)],
        cwd=REPO,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "JobError: unknown job field(s): paths" in proc.stderr
    assert not (tmp_path / "r.json").exists()
