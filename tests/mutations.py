#!/usr/bin/env python3
"""Mutation check: break one key behaviour at a time in the server's source, rebuild, and require that the
test which pins it fails. A test that still passes on a broken copy proves nothing; this keeps them honest.

Run by `make mutations` (and CI) after `make test`. The source is changed in place and restored after each
mutation (also on Ctrl-C), then the server is rebuilt as it was. Prints one line per mutation and exits 1
if any test survived its mutation.
"""
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("BUILD_DIR", ROOT / "build"))

# (what breaks, file, text to replace, replacement, pytest selection that must fail)
MUTATIONS = [
    ("a payload event's header values are percent-encoded (a request id cannot forge a header)",
     "src/observability/payload_log.cc", "    if (c < 0x21 || c > 0x7e || c == '\"' || c == '%') {", "    if (false) {",
     ["tests/e2e/test_payload_log.py", "-k", "forge"]),
    ("payload logging sends the events of --payload-log-sample-rate of the requests",
     "src/observability/payload_log.cc", "  if ((!requests && !responses) || !Sampled(sample_rate)) return;",
     "  if (!requests && !responses) return;", ["tests/e2e/test_payload_log.py", "-k", "sampling"]),
    ("a model's payload_log_mode none keeps its requests out of the payload log",
     "src/observability/payload_log.cc", '  if (mode == "none") return nullptr;', "",
     ["tests/e2e/test_payload_log.py", "-k", "own_parameters"]),
    ("a traced request's server span is the child of the caller's span (W3C traceparent)",
     "src/observability/tracing.cc", "  s.parent_span_id = r.trace.parent_span_id;", "",
     ["tests/e2e/test_tracing.py", "-k", "under_the_callers_span"]),
    ("sampling is parent-based: an unsampled parent is never traced, a sampled one always",
     "src/observability/tracing.cc", "  if (!trace.parent_span_id.empty()) return trace.parent_sampled;", "",
     ["tests/e2e/test_tracing.py", "-k", "sampling"]),
    ("an execution span links every request of its batch",
     "src/observability/tracing.cc", "      s.links.emplace_back(r->trace.trace_id, r->trace.span_id);",
     "      if (s.links.empty()) s.links.emplace_back(r->trace.trace_id, r->trace.span_id);",
     ["tests/e2e/test_tracing.py", "-k", "links_every_request"]),
    ("repository load/unload is refused unless the model control mode is explicit", "src/core/inference_server.cc",
     "  if (!options_.explicit_model_control) return finish(ModelControlDisabled());",
     "  if (false) return finish(ModelControlDisabled());",
     ["tests/e2e/test_model_control.py", "-k", "refused_unless_explicit"]),
    ("an object key that leaves its model's directory keeps its version from being served",
     "src/sources/s3/s3_source.cc", "    if (!IsPlainRelativePath(file)) {", "    if (false) {",
     ["tests/e2e/test_s3_repository.py", "-k", "leave_their_directory"]),
    ("--strict-readiness=false makes the server ready whatever its models' states", "src/core/inference_server.cc",
     "(!options_.strict_readiness || repository_->AllReady())", "repository_->AllReady()",
     ["tests/e2e/test_health.py", "-k", "strict_readiness"]),
    ("the CA given with --s3-ca-file verifies the object store's certificate", "src/sources/s3/s3_client.cc",
     "  if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());", "",
     ["tests/e2e/test_s3_repository.py", "-k", "over_https"]),
    ("a /v2 body's fields looked up in order from the object's start (not simdjson's unordered wrap-around)",
     "src/frontends/http/v2_json.cc",
     """  if (auto e = object.reset().error())
    return InvalidArgument("request body is not valid JSON (reading " + where + std::string(key) +
                           "): " + JsonError(e));
  od::value v;
  auto e = object.find_field(key).get(v);""",
     """  od::value v;
  auto e = object.find_field_unordered(key).get(v);""",
     ["tests/e2e/test_hostile.py", "-k", "once_crashed"]),
    ("a version whose files could not be fetched is fetched again at the next poll", "src/core/model_repository.cc",
     "    if (!transient) e.failed_fingerprint[v] = fingerprint;", "    e.failed_fingerprint[v] = fingerprint;",
     ["tests/e2e/test_s3_repository.py", "-k", "cut_off_midway"]),
    ("the downloads of a killed server are removed by the next one on the same cache directory",
     "src/sources/download_dir.cc", "  RemoveAbandoned(cache_dir, prefix);", "  if ((false)) RemoveAbandoned(cache_dir, prefix);",
     ["tests/e2e/test_s3_repository.py", "-k", "killed_server"]),
    ("client input quoted in messages is made valid UTF-8", "src/core/status.cc",
     "  if (input.size() <= max) return ValidUtf8(input);", "  if (input.size() <= max) return std::string(input);",
     ["tests/e2e/test_hostile.py", "-k", "not_utf8"]),
    ("a model load runs on the control thread, not on the transport's", "src/core/inference_server.cc",
     "  if (!control_->Post(task)) {", "  if ((task(false), false)) {",
     ["tests/e2e/test_model_control.py", "-k", "slow_load"]),
    ("failed gRPC TLS handshakes are counted", "src/frontends/grpc/grpc_server.cc",
     "  if (!options.tls_cert.empty()) WatchGrpcHandshakes(transport_);", "",
     ["tests/e2e/test_grpc_tls.py", "-k", "never_completes"]),
    ("refusals before routing answer in the path's API shape", "src/frontends/http/http_connection.cc",
     "loop_->server->ErrorBody(current_->request.path, refusal)", "StatusToJson(refusal)",
     ["tests/e2e/test_limits.py", "-k", "shape_of_the_api"]),
    ("every gRPC method asks the authorizer (one skipped)", "src/frontends/grpc/v2_service.cc",
     '    if (auto* refused = gate_.Refuse(ctx, "ModelStatistics")) return refused;', "",
     ["tests/e2e/test_auth.py", "-k", "every_grpc_method_is_refused"]),
    ("every HTTP route says what it does (statistics passed off as health)", "src/frontends/http/v2_routes.cc",
     '{"GET", base + "/stats", Category::kStatistics}', '{"GET", base + "/stats", Category::kHealth}',
     ["tests/e2e/test_auth.py", "-k", "exactly_its_scopes"]),
    ("mutual TLS on HTTP requires a client certificate", "src/tls/tls_context.cc",
     "SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT", "SSL_VERIFY_PEER",
     ["tests/e2e/test_http_tls.py", "-k", "mutual_tls"]),
    ("a TLS handshake that never completes is cut off", "src/frontends/http/http_connection.cc",
     ": handshaking_ ? std::min(request, loop_->options->handshake_timeout_s)", ": handshaking_ ? request",
     ["tests/e2e/test_http_tls.py", "-k", "never_completes"]),
    ("an expired token is refused", "src/auth/authorizer.cc",
     "  if (token->expires && *token->expires <= std::chrono::system_clock::now())", "  if (false)",
     ["tests/e2e/test_auth.py", "-k", "expired"]),
    # (Mutated where the metrics observer records it, not in model_statistics.h: a header most files include
    # would rebuild the server twice, ~4 minutes of CI.)
    ("every phase of an execution is in Triton's statistics", "src/observability/metrics_observer.cc",
     "e.executed - e.stacked, now - e.executed,", "e.executed - e.stacked, std::chrono::nanoseconds(0),",
     ["tests/e2e/test_triton_config.py", "-k", "statistics_extension or perf_analyzer"]),
    ("the model configuration answer has Triton's numbers", "src/frontends/http/v2_json.cc",
     '{"dims",', '{"dimz",',
     ["tests/e2e/test_triton_config.py", "-k", "model_configuration_extension"]),
    ("v2 JSON values are decoded exactly", "src/frontends/http/v2_json.cc",
     "FromDouble<T>(d);", "FromDouble<T>(d * 1.01);",
     ["tests/e2e/test_v2.py::test_plain_json_with_nested_data_and_versioned_path"]),
    ("JSON nesting is bounded before parsing", "src/frontends/http/v2_json.cc",
     "constexpr int kMaxBodyNesting = 32;", "constexpr int kMaxBodyNesting = 1 << 30;",
     ["tests/e2e/test_hostile.py", "-k", "deep_nesting"]),
    ("SIGTERM drains requests in flight", "src/core/inference_server.cc",
     "  const bool idle = idle_cv_.WaitUntil(idle_mu_, deadline, [this] { return inflight_.load() == 0; });",
     "  const bool idle = inflight_.load() == 0;",
     ["tests/e2e/test_lifecycle.py", "-k", "drains_in_flight"]),
    ("a request whose client left is not run", "src/core/scheduler.cc",
     "  if (job.request.cancelled && job.request.cancelled->load()) {", "  if (false) {",
     ["tests/e2e/test_cancellation.py"]),
    ("the dynamic batcher stacks requests", "src/core/scheduler.cc",
     "(!batching_ || forming_rows_", "(true || forming_rows_",
     ["tests/e2e/test_batching.py", "-k", "own_rows"]),
    ("each request of a batch gets its own rows back", "src/core/batch.cc",
     "    begin = static_cast<size_t>(first) * row_bytes;", "    begin = 0;",
     ["tests/e2e/test_batching.py", "-k", "own_rows"]),
    ("a REJECT queue policy's timeout is honoured", "src/core/scheduler.cc",
     "  if (now >= job.timeout_at && !levels_[job.level].policy.delay) {", "  if (false) {",
     ["tests/e2e/test_batching.py", "-k", "time_out_or_pass"]),
    ("the HTTP connection limit holds", "src/frontends/http/http_connection.cc",
     "  if (loop->connections->load() >= loop->options->max_connections) {", "  if (false) {",
     ["tests/e2e/test_hostile.py", "-k", "connections_over_the_limit"]),
    ("dashboard queries are checked with real label values", "deploy/k8s/base/monitoring/grafana/dashboards/inference-server.json",
     'model=~\\"$model\\"', 'modle=~\\"$model\\"',
     ["tests/e2e/test_observability.py", "-k", "dashboard"]),
    ("alert conditions are checked on a healthy server", "deploy/k8s/base/monitoring/prometheus/rules/inference-alerts.yml",
     'expr: up{job="inference-server"} == 0', 'expr: up{job="inference-server"} >= 0',
     ["tests/e2e/test_observability.py", "-k", "alert_condition"]),
    ("alerts fire on their faults", "deploy/k8s/base/monitoring/prometheus/rules/inference-alerts.yml",
     'expr: inference_model_state{state="FAILED"} == 1', 'expr: inference_model_state{state="FAILED"} == 2',
     ["tests/e2e/test_observability.py", "-k", "fire_on_their_faults"]),
    ("a version is compared with its model's other versions, not with itself",
     "deploy/k8s/base/monitoring/prometheus/rules/inference-alerts.yml",
     "          min by (job, model) (job_model_version:inference_error_ratio:rate5m)",
     "          min by (job, model, version) (job_model_version:inference_error_ratio:rate5m)",
     ["tests/e2e/test_observability.py", "-k", "fire_on_their_faults"]),
    ("the request clock starts when the transport has received it", "src/core/inference_server.cc",
     "  if (Status s = CheckRequestId(request.id); !s.ok()) return s;",
     "  request.received = Clock::now();\n  if (Status s = CheckRequestId(request.id); !s.ok()) return s;",
     ["tests/e2e/test_core_accounting.py", "-k", "parse_time"]),
    ("a retired version's series leave /metrics", "src/observability/metrics.cc",
     "  std::unique_ptr<ModelSeries> owned(s);\n", "  std::unique_ptr<ModelSeries> owned(s);\n  if (owned) return;\n",
     ["tests/e2e/test_core_accounting.py", "-k", "retired"]),
    ("both v2 decoders give the same message", "src/frontends/common/v2_codec.cc",
     "  if (in.inputs().empty()) return v2::NoInputs();", "  if (in.inputs().empty()) return InvalidArgument(\"inputs is empty\");",
     ["tests/e2e/test_v2_contract.py::test_the_same_mistake_gets_the_same_answer_over_rest_and_grpc[no inputs]"]),
    ("tree splits compare as LightGBM does (double <= threshold)", "src/backends/trees/evaluator.cc",
     "  if (static_cast<double>(f) > t) f = std::nextafter(f, -kInf);", "  if (false) f = std::nextafter(f, -kInf);",
     ["tests/e2e/test_trees.py", "-k", "predictions_equal_the_library and lgb_"]),
    ("a request whose client left while it executed is counted CANCELLED, not OK", "src/core/scheduler.cc",
     "    if (job.request.cancelled && job.request.cancelled->load()) {\n      Fail(job,",
     "    if ((false)) {\n      Fail(job,",
     ["tests/e2e/test_cancellation.py", "-k", "executes"]),
    ("client input is quoted cut short", "src/core/status.cc",
     "  if (input.size() <= max) return ValidUtf8(input);", "  if (true) return ValidUtf8(input);",
     ["tests/e2e/test_hostile.py", "-k", "huge_strings"]),
]


def build(check=True):
    """Builds the server; with check=False says whether it built (a mutation that does not compile is a stale
    row, reported as one, not a reason to stop the others)."""
    out = subprocess.run(["cmake", "--build", str(BUILD), "--target", "inference-server"], cwd=ROOT, check=check,
                         stdout=subprocess.DEVNULL)
    return out.returncode == 0


def run_tests(selection):
    env = dict(os.environ, INFERENCE_SERVER=str(BUILD / "inference-server"), PYTHONPATH=str(ROOT / "tests"),
               PATH=f"{ROOT / '.venv' / 'bin'}:{ROOT / '.deps' / 'bin'}:{os.environ['PATH']}")
    env.pop("CI", None)  # a skip is not a failure here: it would not count as the test failing either
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no_silent_skips",
                          *selection],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    return out.returncode, last


def main():
    survivors = []
    try:
        for what, file, old, new, selection in MUTATIONS:
            path = ROOT / file
            original = path.read_text()
            if old not in original:
                print(f"MUTATION STALE  {what}: {file} no longer holds the text to mutate; update tests/mutations.py")
                survivors.append(what)
                continue
            path.write_text(original.replace(old, new, 1))  # the first occurrence
            try:
                start = time.time()
                built = build(check=False)
                rc, last = run_tests(selection) if built else (None, "the mutated server does not build")
            finally:
                path.write_text(original)
            # Killed only when tests ran and failed (pytest's exit code 1); a selection that matches nothing,
            # or a usage error, proves nothing.
            verdict = "killed" if rc == 1 else "NO BUILD" if rc is None else "SURVIVED"
            print(f"{verdict:8} {what} ({file}; {' '.join(selection)}: {last}; {time.time() - start:.0f} s)",
                  flush=True)
            if verdict != "killed":
                survivors.append(what)
    finally:
        build()  # the server as it is in the tree
    print(f"{len(MUTATIONS) - len(survivors)} passed, {len(survivors)} failed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
