"""The real entry points as processes: ``python -m mmnas_tf.serve`` and ``python -m mmnas_tf.predict``,
and, where installed, the real ``tensorflow_model_server`` with our SavedModels and client."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from absl import app

from mmnas_tf import serve
from mmnas_tf.devserver.client import ServingClient, ServingClientError

REPO = Path(__file__).resolve().parents[2]
QUESTION = "what colour is the cat"


def wait_until_serving(process, client: ServingClient) -> None:
    def exited():
        return None if process.poll() is None else f"server exited:\n{process.stdout.read()}"

    client.wait_until_available(90, abort=exited)


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}


def write_models(tmp_path, helpers):
    model = helpers.stand_in("vqa")
    helpers.export(model, str(tmp_path / "vqa"), 1, vocab=helpers.VOCAB)
    inputs = model.example_inputs(1, regions=4)
    np.savez(
        tmp_path / "img.npz",
        x=inputs["image_features"][0, :4].T,
        bbox=inputs["boxes"][0, :4],
        image_h=480.0,
        image_w=640.0,
    )
    return model, inputs


@pytest.mark.slow
def test_serve_and_predict_processes(tmp_path, helpers):
    model, inputs = write_models(tmp_path, helpers)
    config = tmp_path / "models.config"
    config.write_text(f"""model_config_list {{ config {{
        name: "vqa" base_path: "{tmp_path / "vqa"}" model_platform: "tensorflow"
        version_labels {{ key: "stable" value: 1 }} }} }}""")
    grpc_port, rest_port = helpers.free_port(), helpers.free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mmnas_tf.serve",
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            f"--model_config_file={config}",
            "--enable_batching",
            f"--batching_parameters_file={REPO / 'tf_serving' / 'batching_parameters.txt'}",
            "--file_system_poll_wait_seconds=0.5",
        ],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with ServingClient(
            f"127.0.0.1:{rest_port}", "vqa", rest=True, version_label="stable"
        ) as client:
            wait_until_serving(server, client)
            ids = np.zeros([1, model.m], np.int32)
            ids[0, :5] = [3, 4, 5, 6, 7]  # what colour is the cat
            want = model({**inputs, "text_ids": ids})
            by_rest = client.predict({**inputs, "text_ids": ids})
        np.testing.assert_allclose(by_rest["logits"], want["logits"].numpy(), rtol=1e-5, atol=1e-6)
        predict = subprocess.run(
            [
                sys.executable,
                "-m",
                "mmnas_tf.predict",
                f"--server=127.0.0.1:{grpc_port}",
                "--model_name=vqa",
                f"--question={QUESTION}",
                f"--features={tmp_path / 'img.npz'}",
            ],
            env=env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert predict.returncode == 0, predict.stderr
        top = want["top_answers"].numpy()[0][0].decode()
        assert predict.stdout.startswith(f"answer: {top} (score"), predict.stdout
    finally:
        server.send_signal(signal.SIGTERM)  # what docker stop sends
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    output = server.stdout.read()
    assert server.returncode == 0, output
    assert f"SERVING grpc=127.0.0.1:{grpc_port} rest={rest_port}" in output, output


def test_serve_refuses_bad_flags(tmp_path):
    with pytest.raises(app.UsageError, match="--model_base_path or --model_config_file"):
        serve.main(["serve", "--port=0"])
    with pytest.raises(app.UsageError, match="needs --enable_batching"):
        serve.main(["serve", f"--model_base_path={tmp_path}", "--batching_parameters_file=x"])
    with pytest.raises(app.UsageError, match="port"):
        serve.main(["serve", "--port=many"])


@pytest.mark.skipif(
    shutil.which("tensorflow_model_server") is None,
    reason="tensorflow_model_server is not installed (it is not on PyPI or Debian: see the apt "
    "repository or Docker image in serving/README.md); the same checks run against mmnas_tf.serve",
)
def test_real_tensorflow_model_server(tmp_path, helpers):
    model, inputs = write_models(tmp_path, helpers)
    grpc_port, rest_port = helpers.free_port(), helpers.free_port()
    server = subprocess.Popen(
        [
            "tensorflow_model_server",
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            "--model_name=vqa",
            f"--model_base_path={tmp_path / 'vqa'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for rest, port in ((False, grpc_port), (True, rest_port)):
            with ServingClient(f"127.0.0.1:{port}", "vqa", rest=rest) as client:
                wait_until_serving(server, client)
                got = client.predict(inputs)
                with pytest.raises(ServingClientError) as e:
                    client.predict({**inputs, "boxes": inputs["boxes"][:, :, :3]}, pad=False)
                assert e.value.code.name == "INVALID_ARGUMENT"
            np.testing.assert_allclose(
                got["logits"], model(inputs)["logits"].numpy(), rtol=1e-5, atol=1e-6
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
