"""Both torch.save formats (zip and the legacy pre-1.6 stream), CPU or CUDA storage locations, with
or without DataParallel ``module.`` prefixes, read without torch; bad files get clear errors.

The legacy fixtures in tests/fixtures/legacy are the reference checkpoints re-saved by torch 2.13
with ``_use_new_zipfile_serialization=False`` (tests/fixtures/make_legacy_checkpoints.py).
"""

import io
import os
import pickle
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from mmnas_tf.compat import import_original, load_state_dict, read_torch_checkpoint
from mmnas_tf.compat.torch_checkpoint import LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION

LEGACY = os.path.join(os.path.dirname(__file__), "..", "fixtures", "legacy")
ITM_LEGACY = os.path.join(LEGACY, "mmnas_itm_small_legacy.pkl")  # bare state dict, CPU
VG_LEGACY_CUDA = os.path.join(LEGACY, "mmnas_vg_small_t_legacy_cuda.pkl")  # module., cuda:0


@pytest.fixture(scope="module")
def references(reference_by_task, trained_reference_by_task):
    return {"itm": reference_by_task["itm"], "vg_t": trained_reference_by_task["vg"]}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_legacy_cpu_bare_state_dict(references):
    raw = read_torch_checkpoint(ITM_LEGACY)
    assert not any(k.startswith("module.") for k in raw)
    assert_same_state(load_state_dict(ITM_LEGACY), load_state_dict(references["itm"].weights_npz))


def test_legacy_cuda_locations_and_module_prefixes(references):
    with open(VG_LEGACY_CUDA, "rb") as f:
        data = f.read()
    assert b"cuda:0" in data and b"cpu" not in data  # the fixture really names a GPU
    raw = read_torch_checkpoint(VG_LEGACY_CUDA)
    assert raw["epoch"] == 0 and set(raw["net_optim"]) == {"state", "param_groups"}
    assert all(k.startswith("module.") for k in raw["state_dict"])
    state = load_state_dict(VG_LEGACY_CUDA)
    assert_same_state(state, load_state_dict(references["vg_t"].weights_npz))
    assert_same_state(state, load_state_dict(references["vg_t"].checkpoint))  # = the zip one


def test_zip_with_cuda_locations(references, tmp_path):
    """The zip reader ignores the location too (patched like the legacy fixture)."""
    src = references["itm"].checkpoint
    path = tmp_path / "cuda.pkl"
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(path, "w") as b:
        for item in a.infolist():
            data = a.read(item)
            if item.filename.endswith("data.pkl"):
                assert data.count(b"X\x03\x00\x00\x00cpu") == 1
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            b.writestr(item, data)
    assert_same_state(load_state_dict(str(path)), load_state_dict(src))


def test_imported_legacy_checkpoint_reproduces_the_original(references):
    ref = references["vg_t"]
    model, _ = import_original("vg", VG_LEGACY_CUDA, ref.arch, **ref.sizes)
    out = model(ref.inputs, training=False)
    np.testing.assert_allclose(
        out["object_scores"], ref.io["pred_scores_logsoftmax"], atol=1e-5, rtol=0
    )
    np.testing.assert_allclose(out["box_deltas"], ref.io["pred_reg"], atol=1e-5, rtol=0)


def test_reading_needs_no_torch(references):
    """Both formats read in a process where ``import torch`` fails."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from mmnas_tf.compat.torch_checkpoint import load_state_dict\n"
        f"a = load_state_dict({VG_LEGACY_CUDA!r}); b = load_state_dict({references['itm'].checkpoint!r})\n"
        "print(len(a), len(b))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["213", "213"]


# Bad files, both formats.


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def legacy_stream(obj_pickle: bytes, keys=()) -> bytes:
    head = b"".join(
        pickle.dumps(x, protocol=2)
        for x in (
            LEGACY_MAGIC_NUMBER,
            LEGACY_PROTOCOL_VERSION,
            {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}},
        )
    )
    return head + obj_pickle + pickle.dumps(list(keys), protocol=2)


def test_foreign_globals_are_refused(tmp_path, capsys):
    evil = pickle.dumps({"state_dict": Evil()}, protocol=2)
    zipped = tmp_path / "evil_zip.pkl"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("evil/data.pkl", evil)
    legacy = tmp_path / "evil_legacy.pkl"
    legacy.write_bytes(legacy_stream(evil))
    for path in (zipped, legacy):
        with pytest.raises(
            ValueError,
            match=f"{re.escape(str(path))}: .*refusing to load global (__builtin__|builtins).print",
        ):
            read_torch_checkpoint(str(path))
    assert "pwned" not in capsys.readouterr().out


def test_pickled_modules_are_refused(tmp_path):
    """torch.save(model) pickles the module class as a ('module', ...) persistent id."""

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("module", "Net", "net.py", "class Net: ...") if obj == "MODULE" else None

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump({"net": "MODULE"})
    path = tmp_path / "model.pkl"
    path.write_bytes(legacy_stream(buf.getvalue()))
    with pytest.raises(
        ValueError, match=f"{re.escape(str(path))}: .*pickled torch.nn.Module.*state_dict"
    ):
        read_torch_checkpoint(str(path))


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, not a checkpoint\n", pickle.dumps({"a": 1}), b"\x1f\x8b\x08gzip"],
    ids=["empty", "text", "plain-pickle", "gzip"],
)
def test_unknown_format(tmp_path, content):
    path = tmp_path / "weights.pkl"
    path.write_bytes(content)
    with pytest.raises(
        ValueError,
        match=f"{re.escape(str(path))} is not a PyTorch checkpoint: neither the zip format .* nor the legacy",
    ):
        read_torch_checkpoint(str(path))


def test_wrong_legacy_protocol(tmp_path):
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps(LEGACY_MAGIC_NUMBER, protocol=2) + pickle.dumps(999))
    with pytest.raises(
        ValueError,
        match=f"{re.escape(str(path))}: legacy PyTorch checkpoint with protocol version 999; only 1001",
    ):
        read_torch_checkpoint(str(path))


def test_truncated_zip(references, tmp_path):
    data = open(references["itm"].checkpoint, "rb").read()
    path = tmp_path / "cut.pkl"
    for size in (len(data) // 2, len(data) - 30):
        path.write_bytes(data[:size])
        with pytest.raises(
            ValueError, match=f"{re.escape(str(path))}: truncated or corrupt zip checkpoint"
        ):
            read_torch_checkpoint(str(path))


@pytest.mark.parametrize(
    "cut, problem",
    [
        (200, "truncated: the file ends inside the object pickle"),
        (-10, "truncated: storage \\d+ needs \\d+ bytes, only \\d+ are left"),
    ],
)
def test_truncated_legacy(tmp_path, cut, problem):
    data = open(VG_LEGACY_CUDA, "rb").read()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[:cut])
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: {problem}"):
        read_torch_checkpoint(str(path))
