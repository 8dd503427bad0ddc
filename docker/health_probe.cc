// leoam-health-probe: exits 0 when a gRPC server answers grpc.health.v1.Health/Check with SERVING.
// Used by the compose healthchecks of leoam-kvstore and leoam-compute (both serve grpc.health.v1), so
// the images need neither grpc_health_probe from the internet nor a Python runtime.
//
//   leoam-health-probe ADDRESS [SERVICE] [TIMEOUT_MS]
//     ADDRESS  unix:///path/to/socket or host:port;  SERVICE  default "" (the whole server)
//   exit 0: SERVING; 1: not serving / unreachable / error (reason on stderr); 2: bad usage.
//
// One file, gRPC only (no generated code): the two health messages have one field each, so they are
// encoded by hand and the call goes through the generic stub. Built by the Dockerfiles with
//   g++ -O2 -std=c++17 docker/health_probe.cc $(pkg-config --cflags --libs grpc++) -o leoam-health-probe
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace {

// HealthCheckRequest{string service = 1;}
std::string EncodeRequest(const std::string& service) {
  if (service.empty()) return "";
  if (service.size() >= 128) return "";  // never: service names are short
  return std::string("\x0a", 1) + static_cast<char>(service.size()) + service;
}

// HealthCheckResponse{ServingStatus status = 1;}: field 1 varint; absent = UNKNOWN (0).
int DecodeStatus(const std::string& bytes) {
  if (bytes.size() >= 2 && bytes[0] == 0x08) return static_cast<unsigned char>(bytes[1]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: %s ADDRESS [SERVICE] [TIMEOUT_MS]\n", argv[0]);
    return 2;
  }
  const std::string address = argv[1];
  const std::string service = argc > 2 ? argv[2] : "";
  const long timeout_ms = argc > 3 ? std::strtol(argv[3], nullptr, 10) : 3000;
  if (timeout_ms <= 0) {
    std::fprintf(stderr, "leoam-health-probe: bad TIMEOUT_MS %s\n", argv[3]);
    return 2;
  }

  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  context.set_wait_for_ready(true);  // a server still starting gets the whole timeout

  const std::string request_bytes = EncodeRequest(service);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::CompletionQueue cq;
  auto call = stub.PrepareUnaryCall(&context, "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  if (!cq.Next(&tag, &ok) || !ok) {
    std::fprintf(stderr, "leoam-health-probe: %s: call did not complete\n", address.c_str());
    return 1;
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) {
    std::fprintf(stderr, "leoam-health-probe: %s: %d %s\n", address.c_str(), static_cast<int>(status.error_code()),
                 status.error_message().c_str());
    return 1;
  }
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  const int serving = DecodeStatus(bytes);
  static const char* kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  std::printf("%s\n", serving >= 0 && serving <= 3 ? kNames[serving] : "INVALID");
  return serving == 1 ? 0 : 1;
}
