"""TF Serving's gRPC PredictionService (Predict, GetModelMetadata) and ModelService status."""

from __future__ import annotations

import logging

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from mmnas_tf.devserver.repository import DEFAULT_SIGNATURE, ModelRepository
from mmnas_tf.serving.errors import ServingError, invalid_argument
from mmnas_tf.serving.protos import from_tensor_proto, to_tensor_proto

log = logging.getLogger(__name__)


def _resolve(repository: ModelRepository, model_spec):
    version = model_spec.version.value if model_spec.HasField("version") else None
    label = (
        model_spec.version_label
        if model_spec.WhichOneof("version_choice") == "version_label"
        else None
    )
    return repository.get(model_spec.name, version, label)


def _fill_spec(target, servable, signature_name: str) -> None:
    target.name = servable.name
    target.version.value = servable.version
    target.signature_name = signature_name


def _guard(method):
    """Turns ServingErrors into gRPC statuses and unexpected errors into INTERNAL."""

    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as e:
            context.abort(e.code, e.message)
        except Exception as e:  # noqa: BLE001 - report, keep serving
            log.exception("internal error in %s", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")

    wrapper.__name__ = method.__name__
    return wrapper


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata over a ModelRepository (Classify/Regress stay UNIMPLEMENTED)."""

    def __init__(self, repository: ModelRepository):
        self.repository = repository

    @_guard
    def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:
        servable = _resolve(self.repository, request.model_spec)
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        inputs = {k: from_tensor_proto(k, v) for k, v in request.inputs.items()}
        outputs = servable.predict(signature_name, inputs, tuple(request.output_filter))
        response = predict_pb2.PredictResponse()
        _fill_spec(response.model_spec, servable, signature_name)
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(to_tensor_proto(value))
        return response

    @_guard
    def GetModelMetadata(self, request, context) -> get_model_metadata_pb2.GetModelMetadataResponse:
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            raise invalid_argument(
                f"metadata_field must be ['signature_def'] (the only metadata served), got {fields}"
            )
        servable = _resolve(self.repository, request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        _fill_spec(response.model_spec, servable, "")
        response.model_spec.ClearField("signature_name")
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        response.metadata["signature_def"].Pack(signature_map)
        return response


class ModelStatusServicer(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus (HandleReloadConfigRequest stays UNIMPLEMENTED)."""

    def __init__(self, repository: ModelRepository):
        self.repository = repository

    @_guard
    def GetModelStatus(self, request, context) -> get_model_status_pb2.GetModelStatusResponse:
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in self.repository.status(spec.name, version):
            entry = response.model_version_status.add()
            entry.version = status.version
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status.state)
            if status.error:
                entry.status.error_code = grpc.StatusCode.UNKNOWN.value[0]
                entry.status.error_message = status.error
        return response


def add_services(server: grpc.Server, repository: ModelRepository) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(repository), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelStatusServicer(repository), server
    )
