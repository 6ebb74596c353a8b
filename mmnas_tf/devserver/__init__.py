"""A development stand-in for TF Serving and its clients (a tool around the library; the library
never imports it).

Modules:
  server        ModelServer: gRPC PredictionService / ModelService and the REST API in one process,
                model config files, version policy, hot reload (``python -m mmnas_tf.serve``)
  grpc_service  the gRPC services
  rest          the REST API (TF Serving's JSON forms)
  repository    loaded SavedModel versions and their signatures
  batching      server-side request batching (TF Serving's batching_parameters)
  client        ServingClient for TF Serving or this server (gRPC / REST)
  one_image     a request from one image and one question (``python -m mmnas_tf.predict``)
"""
