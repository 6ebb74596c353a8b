"""Version discovery: hot pick-up of new versions, half-written exports, policies and labels."""

import os
import shutil
import time

import grpc
import numpy as np
import pytest

from mmnas_tf.devserver.client import ServingClient, ServingClientError
from mmnas_tf.devserver.repository import ModelRepository, list_versions
from mmnas_tf.devserver.server import ModelServer
from mmnas_tf.serving.errors import ServingError


def wait_for(condition, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_new_version_is_picked_up_without_restart(tmp_path, helpers):
    base = tmp_path / "vqa"
    v1, v2 = helpers.stand_in("vqa", seed=1), helpers.stand_in("vqa", seed=2)
    helpers.export(v1, str(base), 1)
    inputs = v1.example_inputs(1)
    server = ModelServer(
        [helpers.model_config("vqa", base)], grpc_port=0, rest_port=0, poll_wait_seconds=0.1
    ).start()
    try:
        for rest in (False, True):
            port = server.rest_port if rest else server.grpc_port
            with ServingClient(f"127.0.0.1:{port}", "vqa", rest=rest) as client:
                np.testing.assert_allclose(
                    client.predict(inputs)["logits"],
                    v1(inputs)["logits"].numpy(),
                    rtol=1e-5,
                    atol=1e-6,
                )
        # A half-written export (no saved_model.pb yet) must be ignored, not fail the model.
        os.makedirs(base / "3" / "variables")
        helpers.export(v2, str(base), 2)
        with ServingClient(f"127.0.0.1:{server.grpc_port}", "vqa") as client:
            want = v2(inputs)["logits"].numpy()
            assert wait_for(lambda: np.allclose(client.predict(inputs)["logits"], want, atol=1e-5))
            # latest-1 policy: version 1 is unloaded once 2 is available.
            assert wait_for(lambda: _missing(client, 1))
            np.testing.assert_allclose(
                client.predict(inputs)["logits"], v2(inputs)["logits"].numpy(), rtol=1e-5, atol=1e-6
            )
        states = {s.version: s.state for s in server.repository.status("vqa")}
        assert states == {2: "AVAILABLE", 1: "END"}
    finally:
        server.stop()


def _missing(client: ServingClient, version: int) -> bool:
    pinned = ServingClient(client.target, client.model_name, version=version)
    try:
        pinned.signatures()
        return False
    except ServingClientError as e:
        return e.code == grpc.StatusCode.NOT_FOUND
    finally:
        pinned.close()


def test_list_versions_ignores_non_numeric_and_incomplete(tmp_path, helpers):
    helpers.export(helpers.stand_in("itm"), str(tmp_path), 4)
    os.makedirs(tmp_path / "7")  # being written
    os.makedirs(tmp_path / "tmp-export")
    (tmp_path / "10").write_text("a file, not a version")
    assert list_versions(str(tmp_path)) == [4]
    assert list_versions(str(tmp_path / "absent")) == []


@pytest.fixture(scope="module")
def three_versions(tmp_path_factory, helpers):
    base = tmp_path_factory.mktemp("versions") / "itm"
    models = {v: helpers.stand_in("itm", seed=v) for v in (1, 2, 3)}
    for version, model in models.items():
        helpers.export(model, str(base), version)
    return base, models


@pytest.mark.parametrize(
    "policy, loaded", [("", [3]), ("all", [1, 2, 3]), ("specific:1,3", [1, 3])]
)
def test_version_policies(three_versions, helpers, policy, loaded):
    base, _ = three_versions
    repository = ModelRepository([helpers.model_config("itm", base, policy=policy)])
    repository.poll()
    try:
        assert sorted(s.version for s in repository.status("itm")) == loaded
        assert repository.get("itm").version == max(loaded)
    finally:
        repository.close()


def test_version_labels(three_versions, helpers):
    base, models = three_versions
    config = helpers.model_config("itm", base, labels={"stable": 1, "canary": 2}, policy="all")
    server = ModelServer([config], grpc_port=0, rest_port=0, poll_wait_seconds=0).start()
    inputs = models[1].example_inputs(2)
    try:
        for rest in (False, True):
            port = server.rest_port if rest else server.grpc_port
            for label, version in (("stable", 1), ("canary", 2)):
                with ServingClient(
                    f"127.0.0.1:{port}", "itm", rest=rest, version_label=label
                ) as client:
                    np.testing.assert_allclose(
                        client.predict(inputs)["score"],
                        models[version](inputs)["score"].numpy(),
                        rtol=1e-5,
                    )
            with ServingClient(f"127.0.0.1:{port}", "itm", rest=rest) as client:
                np.testing.assert_allclose(
                    client.predict(inputs)["score"], models[3](inputs)["score"].numpy(), rtol=1e-5
                )
            with ServingClient(f"127.0.0.1:{port}", "itm", rest=rest, version_label="beta") as c:
                with pytest.raises(ServingClientError, match="beta.*canary"):
                    c.predict(inputs)
    finally:
        server.stop()


def test_broken_version_keeps_old_one_serving(tmp_path, helpers):
    base = tmp_path / "vg"
    model = helpers.stand_in("vg")
    helpers.export(model, str(base), 1)
    repository = ModelRepository([helpers.model_config("vg", base)])
    repository.poll()
    shutil.copytree(base / "1", base / "2")
    (base / "2" / "saved_model.pb").write_bytes(b"garbage")
    repository.poll()
    try:
        assert repository.get("vg").version == 1
        status = {s.version: s for s in repository.status("vg")}
        assert status[2].state == "END" and "failed to load" in status[2].error
        assert status[1].state == "AVAILABLE"
    finally:
        repository.close()


def test_changed_config_file_is_applied(tmp_path, helpers):
    """Labels, policies and the model list follow the config file (canary promotion)."""
    from mmnas_tf.devserver.server import ConfigFileWatcher, read_model_config_file

    models = {v: helpers.stand_in("itm", seed=v) for v in (1, 2)}
    for version, model in models.items():
        helpers.export(model, str(tmp_path / "itm"), version)
    helpers.export(helpers.stand_in("vg"), str(tmp_path / "vg"), 1)
    config = tmp_path / "models.config"

    def write(labels: str, extra: str = "") -> None:
        config.write_text(
            "model_config_list { config { name: 'itm' base_path: 'itm' "
            f"model_version_policy {{ all {{}} }} {labels} }} {extra} }}"
        )
        os.utime(config, ns=(time.time_ns(), time.time_ns()))  # a new mtime even within one tick

    write("version_labels { key: 'stable' value: 1 }")
    repository = ModelRepository(read_model_config_file(str(config)))
    repository.poll()
    watcher = ConfigFileWatcher(str(config), repository, wait_seconds=60)
    try:
        assert repository.get("itm", label="stable").version == 1
        assert not watcher.check()  # unchanged file: nothing to do
        write("version_labels { key: 'stable' value: 2 }", "config { name: 'vg' base_path: 'vg' }")
        assert watcher.check()
        assert repository.get("itm", label="stable").version == 2
        assert repository.get("vg").version == 1
        config.write_text("model_config_list { config { nme: 'broken' } }")
        os.utime(config, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
        assert not watcher.check()  # a broken file keeps the last good config
        assert repository.model_names == ["itm", "vg"]
        write("version_labels { key: 'stable' value: 2 }")
        assert watcher.check()
        with pytest.raises(ServingError, match="'vg' is not served"):
            repository.get("vg")
    finally:
        repository.close()
