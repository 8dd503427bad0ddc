"""A small Python client of the LeoAM generation service (leoam.v1.Generation over gRPC).

Uses Debian's python3-grpcio (run with /usr/bin/python3). The protobuf/gRPC stubs are generated at
build time into <build>/client/python/stubs (never checked in); this module finds them through
$LEOAM_PY_STUBS, or else in build/client/python/stubs beside the repository.

    from leoam_client import LeoamClient
    with LeoamClient("unix:///tmp/leoam/compute.sock") as client:
        for response in client.generate(text="Once upon a time", max_tokens=32):
            if response.HasField("chunk"):
                print(response.chunk.text, end="", flush=True)
"""

import os
import sys

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _stubs_dir():
    env = os.environ.get("LEOAM_PY_STUBS")
    if env:
        return env
    return os.path.join(_REPO_ROOT, "build", "client", "python", "stubs")


def _import_stubs():
    stubs = _stubs_dir()
    if not os.path.isfile(os.path.join(stubs, "leoam", "v1", "generation_pb2.py")):
        raise ImportError(
            "LeoAM Python stubs not found in %s: build the target leoam_python_stubs "
            "(cmake --build build --target leoam_python_stubs) or set LEOAM_PY_STUBS" % stubs)
    if stubs not in sys.path:
        sys.path.insert(0, stubs)
    from leoam.v1 import generation_pb2, generation_pb2_grpc  # noqa: E402  (path set above)
    return generation_pb2, generation_pb2_grpc


import grpc  # noqa: E402  (Debian: python3-grpcio)

pb, pb_grpc = _import_stubs()

# grpc.health.v1.HealthCheckResponse.ServingStatus values.
HEALTH_SERVING = 1
HEALTH_NOT_SERVING = 2


def channel_target(server):
    """gRPC target for an address: unix:/path, unix:///path, a bare /path (a unix socket), or host:port."""
    if server.startswith("/"):
        return "unix://" + server
    return server


def _encode_health_request(service):
    # HealthCheckRequest{string service = 1}: the message is small enough to encode by hand, which
    # spares us a second generated module (Debian ships no grpcio-health-checking).
    data = service.encode("utf-8")
    if len(data) >= 128:
        raise ValueError("health service name too long")
    return (b"\x0a" + bytes([len(data)]) + data) if data else b""


def _decode_health_response(data):
    # HealthCheckResponse{ServingStatus status = 1}: field 1, varint; absent means UNKNOWN (0).
    if len(data) >= 2 and data[0] == 0x08:
        return data[1]
    return 0


class LeoamClient:
    """One channel to a leoam-compute server; every call takes an optional timeout in seconds."""

    def __init__(self, server, timeout=None):
        self._channel = grpc.insecure_channel(channel_target(server))
        self._stub = pb_grpc.GenerationStub(self._channel)
        self._timeout = timeout
        self._health = self._channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=_encode_health_request,
            response_deserializer=_decode_health_response)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_ready(self, timeout):
        """Blocks until the channel connects; raises grpc.FutureTimeoutError after `timeout` s."""
        grpc.channel_ready_future(self._channel).result(timeout=timeout)

    def health(self, service="", timeout=5.0):
        """grpc.health.v1 Check: HEALTH_SERVING (1), HEALTH_NOT_SERVING (2) or 0 (unknown)."""
        return self._health(service, timeout=timeout)

    def generate(self, text=None, token_ids=None, messages=None, max_tokens=0, temperature=0.0,
                 top_k=0, top_p=0.0, min_p=0.0, seed=None, stop_strings=(), stop_token_ids=(),
                 ignore_eos=False, request_id="", report_progress=False, time_limit_ms=0,
                 timeout=None):
        """Starts a streaming generation; returns the call, an iterator of GenerateResponse.

        The call can be cancelled with .cancel(). Errors raise grpc.RpcError on iteration.
        """
        request = pb.GenerateRequest(
            request_id=request_id, max_tokens=max_tokens, stop_strings=list(stop_strings),
            stop_token_ids=list(stop_token_ids), ignore_eos=ignore_eos,
            time_limit_ms=time_limit_ms, report_progress=report_progress)
        if text is not None:
            request.text = text
        if token_ids is not None:
            request.token_ids.extend(token_ids)
        for role, content in (messages or ()):
            request.messages.add(role=role, content=content)
        request.sampling.temperature = temperature
        request.sampling.top_k = top_k
        request.sampling.top_p = top_p
        request.sampling.min_p = min_p
        if seed is not None:
            request.sampling.seed = seed
            request.sampling.has_seed = True
        return self._stub.Generate(request, timeout=timeout or self._timeout)

    def generate_all(self, **kwargs):
        """Runs generate to the end; returns (token_ids, text, final: FinalResult, progress list)."""
        ids, text, final, progress = [], [], None, []
        for response in self.generate(**kwargs):
            kind = response.WhichOneof("payload")
            if kind == "chunk":
                ids.extend(response.chunk.token_ids)
                text.append(response.chunk.text)
            elif kind == "progress":
                progress.append(response.progress)
            elif kind == "final":
                final = response.final
        return ids, "".join(text), final, progress

    def abort(self, request_id):
        self._stub.Abort(pb.AbortRequest(request_id=request_id), timeout=self._timeout)

    def tokenize(self, text, add_special=False):
        response = self._stub.Tokenize(pb.TokenizeRequest(text=text, add_special=add_special),
                                       timeout=self._timeout)
        return list(response.token_ids)

    def detokenize(self, token_ids, render_special=False):
        response = self._stub.Detokenize(
            pb.DetokenizeRequest(token_ids=list(token_ids), render_special=render_special),
            timeout=self._timeout)
        return response.text

    def model_info(self):
        return self._stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=self._timeout)

    def server_info(self):
        return self._stub.GetServerInfo(pb.GetServerInfoRequest(), timeout=self._timeout)


def finish_reason_name(value):
    return pb.FinishReason.Name(value).replace("FINISH_REASON_", "").lower()
