#include "frontends/grpc/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "frontends/grpc/call_gate.h"
#include "frontends/grpc/handshake_watch.h"
#include "frontends/grpc/health_service.h"
#include "observability/logger.h"

namespace serving::frontends {

namespace {

TraceContext TraceFrom(const grpc::CallbackServerContext* ctx) {
  auto value = [ctx](const char* key) {
    auto it = ctx->client_metadata().find(key);
    return it == ctx->client_metadata().end() ? std::string_view()
                                              : std::string_view(it->second.data(), it->second.size());
  };
  return ParseTraceContext(value("traceparent"), value("tracestate"));
}

Clock::time_point DeadlineFrom(const grpc::CallbackServerContext* ctx) {
  auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return Clock::time_point::max();
  auto remaining = deadline - std::chrono::system_clock::now();
  if (remaining > std::chrono::hours(24 * 365)) return Clock::time_point::max();
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(remaining);
}

// gRPC's reflection plugin registers itself with every ServerBuilder once grpc++_reflection is linked; this
// option takes it out again when reflection is not wanted.
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const auto& plugin) { return plugin->name() == "proto_server_reflection"; });
  }
};

// Plaintext, or TLS from files gRPC's own watcher re-reads when they change (it keeps the previous
// certificate when a new file does not load, and logs why).
StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const GrpcServer::Options& o) {
  if (o.tls_cert.empty() && o.tls_key.empty()) return grpc::InsecureServerCredentials();
  if (o.tls_cert.empty() || o.tls_key.empty()) return InvalidArgument("gRPC TLS needs both a certificate and a key");
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      o.tls_key, o.tls_cert, o.tls_client_ca, static_cast<unsigned int>(o.tls_reload_s));
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (!o.tls_client_ca.empty()) {
    tls.watch_root_certs();
    tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(tls);
}

}  // namespace

InferRequest TransportRequest(const grpc::CallbackServerContext* ctx, const char* protocol,
                              const CancellableReactor& reactor, std::string principal, std::string tls_identity) {
  InferRequest request;
  request.protocol = protocol;
  request.trace = TraceFrom(ctx);
  request.deadline = DeadlineFrom(ctx);
  request.cancelled = reactor.cancelled;
  request.principal = std::move(principal);
  request.tls_identity = std::move(tls_identity);
  return request;
}

grpc::Status ToGrpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

GrpcServer::GrpcServer(InferenceServer* server, TransportMetrics* transport) : server_(server), transport_(transport) {}

GrpcServer::~GrpcServer() {
  if (grpc_server_) Shutdown(std::chrono::system_clock::now());
}

StatusOr<int> GrpcServer::Start(const Options& options) {
  // Our own health service (health_service.h) instead of gRPC's, so health calls pass the authorizer too.
  grpc::EnableDefaultHealthCheckService(false);
  const bool mutual_tls = !options.tls_client_ca.empty();
  health_ = std::make_unique<HealthService>(options.authorizer, mutual_tls);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  v1_ = NewV1Service(server_, transport_, options.authorizer, mutual_tls);
  v2_ = NewV2Service(server_, transport_, options.authorizer, mutual_tls);
  SERVING_ASSIGN_OR_RETURN(auto credentials, Credentials(options));
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, credentials, &port);
  if (!options.reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, options.handshake_timeout_s * 1000);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(v1_.get());
  builder.RegisterService(v2_.get());
  builder.RegisterService(health_.get());
  grpc_server_ = builder.BuildAndStart();
  if (!grpc_server_ || port == 0) return Unavailable("cannot listen for gRPC on " + options.address);
  if (!options.tls_cert.empty()) WatchGrpcHandshakes(transport_);
  UpdateHealth();
  return port;
}

void GrpcServer::UpdateHealth() {
  MutexLock lock(health_mu_);
  if (!grpc_server_ || shut_down_) return;
  const bool draining = server_->draining();
  health_->SetStatus("", server_->Ready());
  for (const auto& m : server_->ListModels()) {
    bool ready = false;
    for (const auto& v : m.versions) ready |= v.state == VersionState::kReady;
    health_->SetStatus(m.name, ready && !draining);
  }
}

void GrpcServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  {
    MutexLock lock(health_mu_);
    if (!grpc_server_ || shut_down_) return;
    shut_down_ = true;
    health_->Shutdown();
  }
  grpc_server_->Shutdown(deadline);
  grpc_server_->Wait();
  WatchGrpcHandshakes(nullptr);
  logging::Info("grpc server stopped");
}

void CountMalformed(TransportMetrics* transport) {
  if (transport) transport->Count(TransportEvent::kGrpcMalformed);
}

}  // namespace serving::frontends
