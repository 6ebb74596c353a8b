"""bench.profile: the op table of a profiled step, here of the exported model's signature."""

from __future__ import annotations

import re

from bench import profile


def test_serve_mode_profiles_the_exported_signature(tmp_path, capsys):
    profile.main(
        ["--mode=serve", "--smoke", "--batch=1", "--steps=3", f"--logdir={tmp_path}", "--top=50"]
    )
    out = capsys.readouterr().out
    per_step = re.search(r"per step: ([\d.]+) ms of op self time .*, ([\d.]+) ms wall", out)
    assert per_step and 0 < float(per_step[1]) and 0 < float(per_step[2]), out
    rows = re.findall(r"^(\w+)\s+([\d.]+)\s+([\d.]+)%$", out, re.M)
    ops = {op for op, _, _ in rows}
    # the model's matmuls and the signature's own input checks ran in the profiled calls
    assert {"MatMul", "Assert", "LessEqual"} <= ops, ops
    assert abs(sum(float(share) for _, _, share in rows) - 100) < 1.0, rows
