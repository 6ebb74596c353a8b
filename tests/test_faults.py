"""Faults a user can cause or meet end an entry point with one line naming the file or flag and
what to do, and a non-zero exit status (``mmnas_tf.cli.run_main``, which ``cli.run`` calls): each
fault is caused for real -- bytes flipped in a shard, a shard cut short, a small tmpfs that fills
up, a missing or unreadable file, a bad flag, a server that is not there. A training stopped by a
full disk leaves no ``ckpt-N_temp/`` behind and, once space is freed, resumes from its last good
checkpoint."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from mmnas_tf import cli, evaluate, inspect_genotype, predict, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARD = "train-00000-of-00001.tfrecord"
BAD_RECORD, RECORDS = 5, 20  # vqa tiny with 20 images: one training shard of 20 questions
RERUN = "run the same command again (a training or search continues from its last checkpoint)"


@pytest.fixture(scope="module")
def vqa_data(tmp_path_factory):
    from mmnas_tf.synthbench import benchmark
    from mmnas_tf.tasks import get_task

    path = str(tmp_path_factory.mktemp("vqa"))
    benchmark.generate(get_task("vqa"), path, "tiny", num_images=20)
    assert sum(1 for _ in tf.data.TFRecordDataset(os.path.join(path, SHARD))) == RECORDS
    return path


@pytest.fixture(autouse=True)
def default_verbosity(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)  # it would set the verbosity


def _train_argv(data_dir, model_dir, *extra):
    return [
        "train",
        "--config=vqa_tiny",
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        "--steps_per_epoch=2",
        "--noprogress",
        *extra,
    ]


def _fault(capsys, main, argv) -> tuple[int, str]:
    """(exit status, stderr) of an entry point that must fail."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.run_main(main, argv)
    return e.value.code, capsys.readouterr().err


def _one_line(err: str, program: str = "mmnas_tf.train") -> str:
    """The error line, checked to be the last line of stderr."""
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"{program}: error: "), err[-3000:]
    return last[len(f"{program}: error: ") :]


def _corrupt_copy(data_dir, out, how: str) -> str:
    """A copy of ``data_dir`` whose training shard has record BAD_RECORD damaged: one byte of its
    payload flipped (a checksum mismatch) or the file cut in the middle of it."""
    shutil.copytree(data_dir, out)
    path = os.path.join(out, SHARD)
    lengths = [len(r.numpy()) + 16 for r in tf.data.TFRecordDataset(path)]  # 12 + payload + 4
    middle = sum(lengths[:BAD_RECORD]) + lengths[BAD_RECORD] // 2
    data = bytearray(open(path, "rb").read())
    if how == "truncate":
        data = data[:middle]
    else:
        data[middle] ^= 0x40
    with open(path, "wb") as f:
        f.write(bytes(data))
    return path


def _corrupt_message(path: str) -> str:
    return (
        f"corrupt or truncated TFRecord file {path}: record {BAD_RECORD} is unreadable (read "
        f"{BAD_RECORD} of {RECORDS} records); write the data again with the command that made it "
        "(mmnas_tf.convert or mmnas_tf.synthetic)"
    )


@pytest.mark.parametrize("how, verbosity", [("flip", None), ("truncate", None), ("flip", 2)])
def test_a_damaged_shard_is_one_line_naming_file_and_record(
    vqa_data, tmp_path, capsys, how, verbosity
):
    path = _corrupt_copy(vqa_data, tmp_path / "data", how)
    extra = [f"--verbosity={verbosity}"] if verbosity is not None else []
    status, err = _fault(capsys, train.main, _train_argv(tmp_path / "data", tmp_path / "m", *extra))
    assert status == 1
    assert _one_line(err) == _corrupt_message(path)
    if verbosity == 2:  # the traceback, then the same line
        assert "Traceback (most recent call last)" in err and "InvalidArgumentError" in err
    else:
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err[-3000:]


def test_the_program_exits_with_the_line_alone(vqa_data, tmp_path):
    """``python -m mmnas_tf.train`` on a shard with flipped bytes: exit status 1 and no traceback
    on stderr, only the line (through ``cli.run`` and absl's ``app.run``)."""
    path = _corrupt_copy(vqa_data, tmp_path / "data", "flip")
    argv = _train_argv(tmp_path / "data", tmp_path / "m")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-m", "mmnas_tf.train", *argv[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip() == f"mmnas_tf.train: error: {_corrupt_message(path)}"


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs mounted for the test (needs root, or CAP_SYS_ADMIN)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except FileNotFoundError:
        pytest.skip("no mount command: a full disk cannot be made here")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (root only): {done.stderr.strip()}")
    try:
        yield mount
    finally:  # lazily: TensorFlow may still hold a file of the failed run open
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=60)


def _fill(path):
    """Writes zeros to ``path`` until the disk is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e


def test_a_full_disk_keeps_the_last_checkpoint_and_the_run_resumes(vqa_data, small_disk, capsys):
    """A checkpoint that does not fit, then a run.json that does not fit; the disk freed, the run
    resumes. (That a resumed run ends with an uninterrupted run's weights is test_drivers'
    claim.)"""
    model_dir = small_disk / "run"
    train.main(_train_argv(vqa_data, model_dir, "--epochs=1"))  # ckpt-2
    checkpoint_bytes = sum(
        os.path.getsize(model_dir / name) for name in os.listdir(model_dir) if "ckpt-2" in name
    )
    free = shutil.disk_usage(small_disk).free
    with open(small_disk / "ballast", "wb") as f:  # leave half a checkpoint free
        f.write(b"\0" * (free - checkpoint_bytes // 2))

    status, err = _fault(capsys, train.main, _train_argv(vqa_data, model_dir, "--epochs=2"))
    assert status == 1
    line = _one_line(err)
    assert line.startswith(f"{model_dir}/ckpt-4_temp/") and "No space left on device" in line
    assert line.endswith(
        f"; free space on that disk (or write elsewhere: --model_dir, "
        f"--export_dir, --out_dir) and {RERUN}"
    )
    assert "Traceback" not in err
    left = sorted(os.listdir(model_dir))
    assert not [name for name in left if "ckpt-4" in name or ".tmp" in name], left
    assert tf.train.latest_checkpoint(str(model_dir)) == str(model_dir / "ckpt-2")

    # no byte left: the run's first write (run.json, through a temporary file) fails
    run_json = (model_dir / "run.json").read_text()
    _fill(small_disk / "ballast2")
    status, err = _fault(capsys, train.main, _train_argv(vqa_data, model_dir, "--epochs=2"))
    assert status == 1
    assert _one_line(err).startswith(f"{model_dir}/run.json: No space left on device; free space")
    assert (model_dir / "run.json").read_text() == run_json
    assert sorted(os.listdir(model_dir)) == left

    os.remove(small_disk / "ballast")
    os.remove(small_disk / "ballast2")
    capsys.readouterr()
    resumed = train.main(_train_argv(vqa_data, model_dir, "--epochs=2"))
    assert f"resumed from {model_dir}/ckpt-2 at epoch 1 step 2" in capsys.readouterr().out
    assert [h["epoch"] for h in resumed] == [2]
    assert tf.train.latest_checkpoint(str(model_dir)) == str(model_dir / "ckpt-4")


def test_a_missing_file_is_named(vqa_data, tmp_path, capsys):
    check = "; check the path given on the command line (or in the experiment)"
    missing = tmp_path / "genotype.json"
    status, err = _fault(
        capsys, train.main, _train_argv(vqa_data, tmp_path / "m", f"--genotype={missing}")
    )
    assert (status, _one_line(err)) == (1, f"{missing}: No such file or directory{check}")
    status, err = _fault(
        capsys,
        evaluate.main,
        ["evaluate", "--config=vqa_tiny", f"--data_dir={vqa_data}", f"--checkpoint={missing}"],
    )
    assert status == 1 and _one_line(err, "mmnas_tf.evaluate") == (
        f"checkpoint '{missing}' not found (give a directory or a prefix such as DIR/ckpt-100)"
        + check
    )
    status, err = _fault(capsys, train.main, _train_argv(tmp_path / "nodata", tmp_path / "m"))
    assert status == 1 and _one_line(err).startswith(f"no manifest.json in {tmp_path / 'nodata'}")
    # a folder where a file belongs
    status, err = _fault(
        capsys, train.main, _train_argv(vqa_data, tmp_path / "m", f"--genotype={tmp_path}")
    )
    assert (status, _one_line(err)) == (
        1,
        f"{tmp_path}: Is a directory; check the path given on the command line",
    )


def test_an_unreadable_file_is_named(tmp_path):
    """A genotype file this user may not read. Root reads any file, so as root the program runs
    without the capabilities that allow it (``setpriv``); the message must then say so."""
    locked = tmp_path / "genotype.json"
    locked.write_text("{}")
    locked.chmod(0)
    cmd = [sys.executable, "-m", "mmnas_tf.inspect_genotype", str(locked), "--nodraw"]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root reads every file, and setpriv (to drop that right) is missing")
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip() == (
        f"mmnas_tf.inspect_genotype: error: {locked}: Permission denied; give this user access to it or "
        "choose another path"
    )


def test_a_bad_flag_is_named_with_exit_status_2(vqa_data, tmp_path, capsys):
    status, err = _fault(capsys, train.main, _train_argv(vqa_data, tmp_path, "--epoch=2"))
    assert status == 2
    line = _one_line(err)
    assert line.startswith(
        "Unknown command line flag 'epoch'. Did you mean: epochs ?; mmnas_tf.train accepts "
        "--batch_size, --checkpoint_every_steps, --config"
    )
    assert line.endswith("--verbosity (--help lists the flags)")
    status, err = _fault(capsys, train.main, ["train", "--config=vqa_tiny"])
    assert status == 2
    assert _one_line(err).startswith("flag --model_dir=None: Flag --model_dir must have a value")
    status, err = _fault(capsys, inspect_genotype.main, ["inspect_genotype"])
    assert (status, _one_line(err, "mmnas_tf.inspect_genotype")) == (
        2,
        "give one genotype file: python -m mmnas_tf.inspect_genotype genotypes.json [--flags] "
        "(--help lists the flags)",
    )
    assert "Traceback" not in err


@pytest.mark.parametrize("rest", [False, True], ids=["grpc", "rest"])
def test_an_unreachable_server_is_named(tmp_path, capsys, rest):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    features = tmp_path / "img.npz"
    np.savez(
        features,
        x=np.zeros((2, 8), np.float32),
        bbox=np.zeros((2, 4), np.float32),
        image_h=10.0,
        image_w=10.0,
    )
    argv = [
        "predict",
        f"--server=127.0.0.1:{port}",
        "--question=what",
        f"--features={features}",
        "--timeout=10",
        *(["--rest"] if rest else []),
    ]
    status, err = _fault(capsys, predict.main, argv)
    assert status == 1
    line = _one_line(err, "mmnas_tf.predict")
    assert line.startswith("no answer from the server (UNAVAILABLE: ") and f":{port}" in line
    assert line.endswith(
        "; start it (python -m mmnas_tf.serve or tensorflow_model_server) or give its host:port "
        "with --server (--rest for its REST port)"
    )


def test_a_port_in_use_is_named():
    """gRPC's own error for a taken port (as ``mmnas_tf.serve`` meets it) becomes one line."""
    from concurrent import futures

    import grpc

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        with pytest.raises(RuntimeError) as e:
            server.add_insecure_port(f"127.0.0.1:{port}")
        server.stop(None)
    assert cli.describe_fault(e.value) == (
        f"Failed to bind to address 127.0.0.1:{port}: the port is in use (another server?): stop "
        "that one or choose another --port",
        1,
    )
