"""The benchmark smoke runs: each is a subprocess that spends most of its time in one Python thread
(tracing, tiny steps), so the runs that the selected tests need start together on first use and
each test waits for its own (on 2 cores: the longest run's time instead of the sum)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: name -> (module, extra flags); every run gets ``--smoke --out=<dir>/<name>.json``.
RUNS = {
    "all": ("bench.run", ("--suite=all",)),
    "searched_vs_random": ("bench.searched_vs_random", ()),
    "search_diagnosis": ("bench.search_diagnosis", ("--variants=gumbel:all",)),
    "search_quality": ("bench.search_quality", ()),  # its default picture: beside --out
}
#: runs started as a user starts them, without TF_CPP_MIN_LOG_LEVEL (their stderr is checked for
#: TensorFlow's chatter); the others get 3
AS_A_USER = ("search_quality",)
#: test name -> the runs it reads
NEEDS = {
    "test_smoke_report_structure": ("all",),
    "test_search_benchmarks_smoke": ("searched_vs_random", "search_diagnosis"),
    "test_smoke_scoreboard": ("search_quality",),
    "test_theta_history_reruns_the_scoreboard_search": ("search_quality",),
}


@dataclass
class Run:
    process: subprocess.Popen
    out: str
    dir: str
    stderr: str | None = None  # once finished

    def result(self, timeout: float = 1800) -> dict:
        """The run's JSON report; fails with its output's tail if it did not succeed."""
        if self.stderr is None:
            stdout, self.stderr = self.process.communicate(timeout=timeout)
            assert self.process.returncode == 0, stdout[-2000:] + self.stderr[-3000:]
        with open(self.out, encoding="utf-8") as f:
            return json.load(f)


class SmokeRuns:
    def __init__(self, session, base):
        self.session, self.base, self.runs = session, base, {}

    def _start(self, name: str) -> Run:
        module, flags = RUNS[name]
        folder = self.base / name
        folder.mkdir()
        out = str(folder / f"{name}.json")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO_ROOT}
        if name in AS_A_USER:
            del env["TF_CPP_MIN_LOG_LEVEL"]
        args = [sys.executable, "-m", module, "--smoke", f"--out={out}"]
        args += [f.format(dir=folder) for f in flags]
        process = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return Run(process, out, str(folder))

    def __getitem__(self, name: str) -> Run:
        if name not in self.runs:  # first use: start every run that a selected test needs
            items = self.session.items
            if os.environ.get("PYTEST_XDIST_WORKER"):  # every worker collects every test, and
                # runs whole files (--dist loadfile): only the runs of the files that need this one
                files = {i.path for i in items if name in NEEDS.get(i.originalname, ())}
                items = [i for i in items if i.path in files]
            selected = {n for item in items for n in NEEDS.get(item.originalname, ())}
            for run in sorted((selected | {name}) - set(self.runs)):
                self.runs[run] = self._start(run)
        return self.runs[name]

    def close(self):
        for run in self.runs.values():
            if run.process.poll() is None:
                run.process.kill()
                run.process.communicate()


@pytest.fixture(scope="session")
def smoke_runs(request, tmp_path_factory):
    runs = SmokeRuns(request.session, tmp_path_factory.mktemp("bench_smoke"))
    yield runs
    runs.close()
