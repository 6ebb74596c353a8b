"""Serves SavedModels over TF Serving's gRPC and REST protocols, flags as tensorflow_model_server.

The entry point of the development server (``mmnas_tf.devserver``); the exports it serves are
written by ``mmnas_tf.serving`` (``python -m mmnas_tf.export``), and ``tf_serving/`` holds the
config files it shares with the real TF Serving.

    python -m mmnas_tf.serve --model_name=vqa --model_base_path=/models/vqa
    python -m mmnas_tf.serve --model_config_file=tf_serving/models.config \
        --enable_batching --batching_parameters_file=tf_serving/batching_parameters.txt
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence

from absl import app, flags

from mmnas_tf import cli


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_integer("port", 8500, "gRPC port.", flag_values=fv)
    flags.DEFINE_integer(
        "rest_api_port", 8501, "REST port; 0 disables the REST API (as TF Serving).", flag_values=fv
    )
    flags.DEFINE_string(
        "host", "127.0.0.1", "Interface to bind (0.0.0.0 exposes the server).", flag_values=fv
    )
    flags.DEFINE_string(
        "model_name", "default", "Model name, with --model_base_path.", flag_values=fv
    )
    flags.DEFINE_string(
        "model_base_path", None, "Directory holding numeric version directories.", flag_values=fv
    )
    flags.DEFINE_string(
        "model_config_file", None, "ModelServerConfig text proto (several models).", flag_values=fv
    )
    flags.DEFINE_bool(
        "enable_batching", False, "Merge concurrent requests into batches.", flag_values=fv
    )
    flags.DEFINE_string(
        "batching_parameters_file", None, "BatchingParameters text proto.", flag_values=fv
    )
    flags.DEFINE_float(
        "file_system_poll_wait_seconds",
        1.0,
        "Seconds between looks for new versions; 0 = only at start.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "model_config_file_poll_wait_seconds",
        0.0,
        "Seconds between looks for a changed --model_config_file; 0 = read it once.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "grpc_max_message_bytes",
        64 * 1024 * 1024,
        "Largest gRPC message and REST body, in bytes.",
        flag_values=fv,
    )


def main(argv: Sequence[str]) -> None:
    fv = cli.parse(define_flags, argv)
    if bool(fv.model_base_path) == bool(fv.model_config_file):
        raise app.UsageError("give exactly one of --model_base_path or --model_config_file")
    if fv.batching_parameters_file and not fv.enable_batching:
        raise app.UsageError("--batching_parameters_file needs --enable_batching")
    from mmnas_tf.devserver import server as server_lib
    from mmnas_tf.devserver.batching import BatchingOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if fv.model_config_file:
        models = server_lib.read_model_config_file(fv.model_config_file)
    else:
        models = server_lib.single_model_config(fv.model_name, fv.model_base_path)
    batching = None
    if fv.enable_batching:
        batching = (
            server_lib.read_batching_parameters_file(fv.batching_parameters_file)
            if fv.batching_parameters_file
            else BatchingOptions()
        )
    server = server_lib.ModelServer(
        models,
        host=fv.host,
        grpc_port=fv.port,
        rest_port=fv.rest_api_port or None,
        batching=batching,
        poll_wait_seconds=fv.file_system_poll_wait_seconds,
        max_message_bytes=fv.grpc_max_message_bytes,
        config_file=fv.model_config_file,
        config_poll_seconds=fv.model_config_file_poll_wait_seconds,
    )
    server.start()
    # SIGTERM (docker stop, kill) shuts down like Ctrl-C: in-flight requests finish first.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # A line tests and scripts can wait for.
    print(f"SERVING grpc={server.host}:{server.grpc_port} rest={server.rest_port}", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    cli.run(main)
