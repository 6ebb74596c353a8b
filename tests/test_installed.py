"""A non-editable install carries the named experiments and their genotypes (package data)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHECK = """
import json, os, sys
import mmnas_tf
from mmnas_tf.experiments import experiment_names, get_experiment
assert mmnas_tf.__file__.startswith(sys.argv[1]), mmnas_tf.__file__
out = {}
for name in experiment_names():
    exp = get_experiment(name)
    genotype = exp.load_genotype()
    out[name] = [exp.task, len(genotype.encoder), len(genotype.decoder)]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_named_experiments_load_from_an_installed_copy(tmp_path):
    source, target = tmp_path / "source", tmp_path / "site"
    os.makedirs(source)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source)
    shutil.copytree(
        os.path.join(ROOT, "mmnas_tf"),
        source / "mmnas_tf",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(source)  # nothing may come from the source tree
    env = dict(os.environ, PYTHONPATH=str(target), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(target)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(loaded) == ["itm", "itm_tiny", "vg", "vg_tiny", "vqa", "vqa_tiny"]
    # the paper experiments retrain the published 12/18-block genotypes, the tiny ones 2/3 blocks
    assert loaded["vqa"] == ["vqa", 12, 18] and loaded["vg_tiny"] == ["vg", 2, 3]
