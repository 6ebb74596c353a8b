"""The registry loads the built-in tasks only when read, so code that needs the Task protocol
(the engine) loads no concrete task."""

from __future__ import annotations

import os
import subprocess
import sys

import mmnas_tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(mmnas_tf.__file__)))
PROBE = """
import sys
import mmnas_tf.engine.trainer
before = sorted(m for m in sys.modules if m.startswith("mmnas_tf.tasks."))
from mmnas_tf.tasks import task_names
print(before, task_names())
"""


def test_the_engine_loads_the_protocol_not_the_tasks():
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['mmnas_tf.tasks.base'] ('vqa', 'itm', 'vg')"
