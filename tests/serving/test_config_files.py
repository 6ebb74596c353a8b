"""The shipped serving/ files parse as TF Serving reads them and say what the README promises."""

from pathlib import Path

import pytest

from mmnas_tf.devserver.batching import BatchingOptions
from mmnas_tf.devserver.server import read_batching_parameters_file, read_model_config_file

SERVING = Path(__file__).resolve().parents[2] / "tf_serving"


def test_models_config_has_three_tasks_with_stable_and_canary():
    models = read_model_config_file(str(SERVING / "models.config"))
    assert [m.name for m in models] == ["vqa", "itm", "vg"]
    for model in models:
        assert model.base_path == f"/models/{model.name}"
        assert model.model_platform == "tensorflow"
        assert list(model.model_version_policy.specific.versions) == [1, 2]
        assert dict(model.version_labels) == {"stable": 1, "canary": 2}


def test_batching_parameters_parse():
    options = read_batching_parameters_file(str(SERVING / "batching_parameters.txt"))
    assert options == BatchingOptions(
        max_batch_size=32, batch_timeout_micros=2000, max_enqueued_batches=100, num_batch_threads=2
    )


def test_serving_folder_is_not_a_package():
    assert not (SERVING / "__init__.py").exists()


def test_readme_gives_the_commands():
    readme = (SERVING / "README.md").read_text()
    for text in (
        "tensorflow_model_server --port=8500 --rest_api_port=8501",
        "--model_config_file=",
        "--enable_batching --batching_parameters_file=",
        "docker run --rm -p 8500:8500 -p 8501:8501",
        "--mount type=bind,",
        "tensorflow/serving",
        "storage.googleapis.com/tensorflow-serving-apt",
        "python -m mmnas_tf.serve",
        "python -m mmnas_tf.predict",
        "python -m mmnas_tf.export",
    ):
        assert text in readme, text


def test_bad_config_files_are_named(tmp_path):
    (tmp_path / "bad.config").write_text("model_config_list { config { nme: 'x' } }")
    with pytest.raises(ValueError, match="bad.config"):
        read_model_config_file(str(tmp_path / "bad.config"))
    (tmp_path / "relative.config").write_text(
        "model_config_list { config { name: 'x' base_path: 'models/x' } }"
    )
    [model] = read_model_config_file(str(tmp_path / "relative.config"))
    assert model.base_path == str(tmp_path / "models" / "x")
