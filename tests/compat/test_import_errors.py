"""The importer reads checkpoints safely and refuses mismatches with clear messages."""

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from mmnas_tf.compat import import_original, load_state_dict, read_torch_checkpoint
from mmnas_tf.genotype import Genotype


def test_reader_equals_npz(reference_by_task):
    for ref in reference_by_task.values():
        a, b = load_state_dict(ref.checkpoint), load_state_dict(ref.weights_npz)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
        raw = read_torch_checkpoint(ref.checkpoint)
        assert raw["epoch"] == 0 and "net_optim" in raw


def test_reader_refuses_arbitrary_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    buf = io.BytesIO()
    pickle.dump({"state_dict": Evil()}, buf, protocol=2)
    path = tmp_path / "evil.pkl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", buf.getvalue())
    with pytest.raises(ValueError, match="refusing to load global (__builtin__|builtins).print"):
        read_torch_checkpoint(str(path))
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="is not a PyTorch checkpoint: neither the zip format"):
        read_torch_checkpoint(str(plain))
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        read_torch_checkpoint(str(tmp_path / "missing.pkl"))


def test_wrong_task_and_missing_keys(reference_by_task, tmp_path):
    vqa = reference_by_task["vqa"]
    with pytest.raises(ValueError, match="holds a 'vqa' model, not a 'vg' one"):
        import_original("vg", vqa.checkpoint, vqa.arch)
    sd = load_state_dict(vqa.weights_npz)
    del sd["backnone.cells_dec.0.dag.6.0.mhatt.linear_r.bias"]
    path = tmp_path / "broken.npz"
    np.savez(path, **sd)
    with pytest.raises(ValueError, match="lacks 1 keys.*linear_r.bias"):
        import_original("vqa", str(path), vqa.arch, **vqa.sizes)


def test_genotype_checkpoint_mismatch(reference_by_task, tmp_path):
    vqa = reference_by_task["vqa"]
    g = Genotype.load(vqa.arch)
    swapped = Genotype(g.encoder, ("FFN",) + g.decoder[1:], g.head_size)
    with pytest.raises(
        ValueError, match="dec block 0: the genotype says FFN but the checkpoint holds SA/GA"
    ):
        import_original("vqa", vqa.checkpoint, swapped, **vqa.sizes)
    short = Genotype(g.encoder[:-1], g.decoder, g.head_size)
    with pytest.raises(ValueError, match="11"):
        import_original("vqa", vqa.checkpoint, short, **vqa.sizes)
    wrong_heads = Genotype(g.encoder, g.decoder, 16)
    with pytest.raises(ValueError, match="RSA relation layers have 4 heads"):
        import_original("vqa", vqa.checkpoint, wrong_heads, **vqa.sizes)


def test_model_rejects_bad_inputs(reference_by_task):
    vqa = reference_by_task["vqa"]
    model, _ = import_original("vqa", vqa.checkpoint, vqa.arch, **vqa.sizes)
    good = vqa.inputs
    with pytest.raises(ValueError, match="missing input 'boxes'"):
        model({k: v for k, v in good.items() if k != "boxes"})
    with pytest.raises(
        ValueError, match="input 'image_features' has shape .*expected \\[batch, regions, 64\\]"
    ):
        model(dict(good, image_features=good["image_features"][0]))
    with pytest.raises(ValueError, match="input 'boxes' has shape"):
        model(dict(good, boxes=good["boxes"][..., :3]))
    with pytest.raises(ValueError, match="'text_ids' must be an integer"):
        model(dict(good, text_ids=good["text_ids"].astype("float32")))


LEGACY_VG = os.path.join(
    os.path.dirname(__file__), "..", "fixtures", "legacy", "mmnas_vg_small_t_legacy_cuda.pkl"
)


@pytest.mark.slow
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-cuda"])
def test_import_official_cli_writes_servable_model(
    reference_by_task, trained_reference_by_task, tmp_path, legacy
):
    vg = trained_reference_by_task["vg"] if legacy else reference_by_task["vg"]
    checkpoint = LEGACY_VG if legacy else vg.checkpoint
    cmd = [
        sys.executable,
        "-m",
        "mmnas_tf.import_official",
        "--task=vg",
        f"--checkpoint={checkpoint}",
        f"--arch={vg.arch}",
        f"--export_dir={tmp_path}",
        "--version=2",
        "--max_regions=10",
    ]
    # the refused imports run beside the export (each process loads TensorFlow: on 2 CPUs the
    # test then takes about one import's time instead of two or three)
    missing, cut = tmp_path / "nope.pkl", tmp_path / "cut.pkl"
    bad_checkpoints = [missing]
    if legacy:  # a truncated file: one line naming the file and the problem
        with open(checkpoint, "rb") as f:
            cut.write_bytes(f.read()[:-100])
        bad_checkpoints.append(cut)
    processes = [
        subprocess.Popen(
            cmd[:4] + [f"--checkpoint={path}"] + cmd[5:] if path else cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in [None, *bad_checkpoints]
    ]
    try:
        results = [(p.communicate(timeout=300), p.returncode) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    ((stdout, stderr), status), *refused = results
    assert status == 0, stderr[-2000:]
    assert "SavedModel written to" in stdout
    import tensorflow as tf

    sig = tf.saved_model.load(str(tmp_path / "2")).signatures["serving_default"]
    out = sig(**{k: tf.constant(v) for k, v in vg.inputs.items()})
    np.testing.assert_allclose(
        out["box"].numpy(), vg.io["eval_decoded_boxes_clipped_argmax"], atol=5e-4, rtol=0
    )
    from support.session_loader import SessionModel

    with SessionModel(str(tmp_path / "2")) as session:  # TF Serving's loader path
        by_session = session.run(vg.inputs)
        assert len(session.replay_warmup()) == 2  # serving_default at batch sizes 1 and 8
    for key, value in out.items():
        np.testing.assert_allclose(by_session[key], value.numpy(), atol=1e-5, err_msg=key)
    messages = [
        f"checkpoint not found: {missing}",
        f"mmnas_tf.import_official: error: {cut}: truncated: storage",
    ]
    for ((_, stderr), status), message in zip(refused, messages):
        assert status != 0 and message in stderr, stderr[-2000:]
        assert "Traceback" not in stderr
    assert len(refused) == 1 + legacy
    json.dumps(out["object_index"].numpy().tolist())
