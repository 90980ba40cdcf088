#!/bin/sh
# Creates (only if missing) the local kind cluster and deploys the whole platform onto it:
# ingress-nginx, metrics-server, the inference server image, Envoy, Prometheus, Grafana, Loki, Alloy and Jaeger.
# Running it again changes nothing that is already right and succeeds.
#
#   sh scripts/restart.sh           create/update the cluster and deploy, then smoke-test it
#   sh scripts/restart.sh --bucket  the same, with the models in a bucket of an in-cluster S3 store
#                                   (SeaweedFS, seeded with the bundled models) instead of the image
#   sh scripts/restart.sh --down    delete the cluster
# Going back from --bucket to the plain run deletes the store and its bucket (they leave the overlay).
#
# Needs docker (Docker Desktop, or colima: `colima start --arch aarch64 --cpu 4 --memory 8`), kind and kubectl.
set -eu

CLUSTER_NAME="${CLUSTER_NAME:-inference-platform}"
INGRESS_NGINX_VERSION="v1.15.1"
METRICS_SERVER_VERSION="v0.8.0"
MIN_KIND_VERSION="0.31.0"
IMAGE_REPO="inference-server"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KIND_CONFIG="$ROOT/deploy/kind/cluster.yaml"
OVERLAY="$ROOT/deploy/k8s/overlays/kind"
BUCKET_OVERLAY="$ROOT/deploy/k8s/overlays/kind-bucket"
BUCKET=""
DESCRIPTOR_DIR="$ROOT/deploy/k8s/base/inference/generated"
# The servers' certificate, the CA Envoy trusts and the bearer tokens (scripts/kind-secrets.sh; never committed).
SECRETS_DIR="$OVERLAY/generated"
SMOKE_TIMEOUT="${SMOKE_TIMEOUT:-180}"

log() { printf '==> %s\n' "$*"; }
die() { printf 'restart.sh: %s\n' "$*" >&2; exit 1; }

require() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is required but not installed. $2"
}

check_prerequisites() {
  require docker "Install Docker, or on macOS: brew install colima docker && colima start --arch aarch64 --cpu 4 --memory 8"
  require kind "Install kind: brew install kind (or https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
  require kubectl "Install kubectl: brew install kubectl"
  require curl "Install curl."
  docker info >/dev/null 2>&1 || die "docker is installed but its engine is not running (colima start --arch aarch64?)"
  # deploy/kind/cluster.yaml's node image (Kubernetes v1.35) needs kind v0.31 or newer.
  kind_version="$(kind version 2>/dev/null | awk '{print $2}' | sed 's/^v//')"
  [ "$(printf '%s\n%s\n' "$MIN_KIND_VERSION" "${kind_version:-0}" | sort -V | head -n 1)" = "$MIN_KIND_VERSION" ] ||
    die "kind ${kind_version:-(unknown version)} is too old for the node image: kind v$MIN_KIND_VERSION or newer is needed (brew upgrade kind)"
}

cluster_exists() {
  kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"
}

create_cluster() {
  if cluster_exists; then
    log "cluster $CLUSTER_NAME exists"
  else
    log "creating kind cluster $CLUSTER_NAME"
    kind create cluster --name "$CLUSTER_NAME" --config "$KIND_CONFIG" --wait 120s
  fi
  kubectl config use-context "kind-$CLUSTER_NAME" >/dev/null
}

install_ingress_nginx() {
  log "ingress-nginx $INGRESS_NGINX_VERSION"
  kubectl apply -f "https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-$INGRESS_NGINX_VERSION/deploy/static/provider/kind/deploy.yaml" >/dev/null
  # Since v1.13 the kind manifest no longer pins the controller to the node that has ports 80/443.
  kubectl -n ingress-nginx patch deployment ingress-nginx-controller --type merge -p \
    '{"spec":{"template":{"spec":{"nodeSelector":{"ingress-ready":"true","kubernetes.io/os":"linux"},"tolerations":[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists","effect":"NoSchedule"}]}}}}' >/dev/null
  # Traces start at the ingress (docs/deploy.md#traces): its OpenTelemetry module sends a span per request to
  # Jaeger and passes it on in `traceparent`, under which Envoy's and the servers' spans go. Every request is
  # traced here (AlwaysOn; a client's sampled traceparent is kept); the controller reloads on the change.
  kubectl -n ingress-nginx patch configmap ingress-nginx-controller --type merge -p \
    '{"data":{"enable-opentelemetry":"true","opentelemetry-trust-incoming-span":"true","otlp-collector-host":"jaeger.monitoring.svc.cluster.local","otlp-collector-port":"4317","otel-service-name":"ingress-nginx","otel-sampler":"AlwaysOn","otel-sampler-parent-based":"true"}}' >/dev/null
  kubectl -n ingress-nginx rollout status deployment/ingress-nginx-controller --timeout=300s
  # The admission webhook answers only once its certificate Jobs are done: applying an Ingress before that
  # fails intermittently on a fresh cluster.
  kubectl -n ingress-nginx wait --for=condition=complete job/ingress-nginx-admission-create \
    job/ingress-nginx-admission-patch --timeout=300s
}

install_metrics_server() {
  log "metrics-server $METRICS_SERVER_VERSION (for the HorizontalPodAutoscaler)"
  kubectl apply -f "https://github.com/kubernetes-sigs/metrics-server/releases/download/$METRICS_SERVER_VERSION/components.yaml" >/dev/null
  # kind's kubelets serve self-signed certificates.
  kubectl -n kube-system patch deployment metrics-server --type json -p \
    '[{"op":"replace","path":"/spec/template/spec/containers/0/args","value":["--cert-dir=/tmp","--secure-port=10250","--kubelet-preferred-address-types=InternalIP,Hostname","--kubelet-use-node-status-port","--metric-resolution=15s","--kubelet-insecure-tls"]}]' >/dev/null
  kubectl -n kube-system rollout status deployment/metrics-server --timeout=300s
}

build_image() {
  log "building $IMAGE_REPO (native architecture of this docker engine)"
  docker build -t "$IMAGE_REPO:dev" "$ROOT"
  # Tag by content so an unchanged image changes nothing in the cluster and a new one rolls out.
  IMAGE_TAG="$(docker image inspect -f '{{.Id}}' "$IMAGE_REPO:dev" | sed 's/^sha256://' | cut -c1-12)"
  docker tag "$IMAGE_REPO:dev" "$IMAGE_REPO:$IMAGE_TAG"
  # The transcoder descriptor is built into the image: copy it out with `docker create` + `docker cp`, which
  # every builder supports (`docker build --output` needs BuildKit's buildx plugin, which
  # `brew install colima docker` does not bring).
  log "Envoy transcoder descriptor"
  mkdir -p "$DESCRIPTOR_DIR"
  container="$(docker create "$IMAGE_REPO:$IMAGE_TAG")"
  docker cp "$container:/usr/local/share/inference-server/inference_descriptor.pb" "$DESCRIPTOR_DIR/" ||
    { docker rm "$container" >/dev/null; die "could not copy the descriptor out of $IMAGE_REPO:$IMAGE_TAG"; }
  docker rm "$container" >/dev/null
  log "loading $IMAGE_REPO:$IMAGE_TAG into the cluster"
  kind load docker-image "$IMAGE_REPO:$IMAGE_TAG" --name "$CLUSTER_NAME"
}

deploy() {
  log "certificates and bearer tokens in $SECRETS_DIR"
  sh "$ROOT/scripts/kind-secrets.sh" "$SECRETS_DIR"
  overlay="$OVERLAY"
  if [ -n "$BUCKET" ]; then
    overlay="$BUCKET_OVERLAY"
    log "object-store keys in $BUCKET_OVERLAY/generated"
    sh "$ROOT/scripts/model-store-secrets.sh" "$BUCKET_OVERLAY/generated"
    # A Job's pod template cannot change (the server image's tag does): the finished seed Job goes first.
    if kubectl get namespace model-store >/dev/null 2>&1; then
      kubectl -n model-store delete job model-store-seed --ignore-not-found
    fi
  fi
  log "applying deploy/k8s/overlays/$(basename "$overlay")"
  # --prune deletes the platform's objects that are no longer in the overlay (old generated ConfigMaps).
  kubectl kustomize "$overlay" | sed "s|image: $IMAGE_REPO:dev|image: $IMAGE_REPO:$IMAGE_TAG|" |
    kubectl apply --prune -l app.kubernetes.io/part-of=inference-platform -f -
  if [ -n "$BUCKET" ]; then
    # The servers start once the bucket exists (until then they exit naming it, and are restarted).
    kubectl -n model-store rollout status statefulset/model-store --timeout=300s
    kubectl -n model-store wait --for=condition=complete job/model-store-seed --timeout=300s
  fi
  for target in inference/deployment/inference-server inference/deployment/envoy \
                monitoring/deployment/prometheus monitoring/deployment/grafana \
                monitoring/statefulset/loki monitoring/daemonset/alloy monitoring/deployment/jaeger; do
    ns="${target%%/*}"
    kubectl -n "$ns" rollout status "${target#*/}" --timeout=300s
  done
}

retry() {
  # retry <what> <command...>: until it succeeds or SMOKE_TIMEOUT passes.
  what="$1"; shift
  waited=0
  until "$@" >/dev/null 2>&1; do
    [ "$waited" -lt "$SMOKE_TIMEOUT" ] || die "smoke test failed: $what"
    sleep 3
    waited=$((waited + 3))
  done
  log "ok: $what"
}

smoke_test() {
  log "smoke test"
  auth="Authorization: Bearer $(cat "$SECRETS_DIR/client.token")"
  retry "POST /v1/infer through ingress-nginx and Envoy" \
    curl -sf -X POST http://localhost/v1/infer -H 'Content-Type: application/json' -H "$auth" \
      -d '{"model":"diabetes","rows":[{"values":[0.03,0.05,0.06,0.02,-0.04,-0.03,-0.04,-0.002,0.02,-0.017]}]}'
  retry "POST /v2/models/diabetes/infer (KServe v2)" \
    curl -sf -X POST http://localhost/v2/models/diabetes/infer -H 'Content-Type: application/json' -H "$auth" \
      -d '{"inputs":[{"name":"X","shape":[1,10],"datatype":"FP32","data":[0.03,0.05,0.06,0.02,-0.04,-0.03,-0.04,-0.002,0.02,-0.017]}]}'
  retry "Grafana on :30090" curl -sf http://localhost:30090/api/health
  retry "Prometheus on :30091" curl -sf http://localhost:30091/-/ready
}

print_urls() {
  cat <<URLS

The platform is up. Every request but health needs a bearer token (docs/security.md):
  TOKEN=\$(cat $SECRETS_DIR/client.token)    (admin.token: every scope)
  REST (v1)   curl -X POST http://localhost/v1/infer -H "Authorization: Bearer \$TOKEN" -d '{"rows":[{"values":[...]}]}'
  REST (v2)   curl -H "Authorization: Bearer \$TOKEN" http://localhost/v2/models
  Grafana     http://localhost:30090/   (dashboard "Inference server"; admin/admin to edit)
  Prometheus  http://localhost:30091/
  Traces      Grafana > Explore > Jaeger, or a log line's trace_id link (Loki); Jaeger's own UI:
              kubectl -n monitoring port-forward svc/jaeger 16686:16686, then http://localhost:16686/
  gRPC        kubectl -n inference port-forward svc/inference-server 50051:50051 (TLS: the CA is $SECRETS_DIR/ca.crt)
Tear down:    sh scripts/restart.sh --down
URLS
  [ -z "$BUCKET" ] || cat <<URLS
Models are served from s3://models/repository in the cluster's SeaweedFS (docs/deploy.md#models-from-a-bucket):
  kubectl -n model-store port-forward svc/model-store 8333:8333
  the publisher's keys: $BUCKET_OVERLAY/generated/admin.env
URLS
}

main() {
  case "${1:-}" in
    --down)
      require kind "Install kind: brew install kind"
      if cluster_exists; then
        log "deleting kind cluster $CLUSTER_NAME"
        kind delete cluster --name "$CLUSTER_NAME"
      else
        log "no cluster $CLUSTER_NAME"
      fi
      return 0 ;;
    "") ;;
    --bucket) BUCKET=1 ;;
    -h | --help) sed -n '2,13p' "$0"; return 0 ;;
    *) die "unknown argument '$1' (use --bucket, --down or nothing)" ;;
  esac
  check_prerequisites
  create_cluster
  install_ingress_nginx
  install_metrics_server
  build_image
  deploy
  smoke_test
  print_urls
}

main "$@"
