#!/bin/sh
# Canary and shadow traffic on a cluster running deploy/k8s/overlays/kind-canary (or any overlay with
# deploy/k8s/components/canary); docs/deploy.md#canary-deployments.
#
#   sh scripts/canary.sh status          the shares Envoy is given now
#   sh scripts/canary.sh set PERCENT     send PERCENT % (0-100) of the requests to the canary
#   sh scripts/canary.sh shadow PERCENT  copy PERCENT % of the stable track's requests to the shadow
#   sh scripts/canary.sh promote         the stable Deployment takes the canary's image and arguments and rolls
#                                        out (the canary keeps its share meanwhile); then the canary's share is 0
#   sh scripts/canary.sh rollback        the canary's share is 0 at once (its pods stay, to be looked at)
#   sh scripts/canary.sh tracing PERCENT Envoy traces PERCENT % of the requests (default 100; the servers
#                                        follow Envoy's decision; docs/deploy.md#traces)
#
# The shares live in the ConfigMap envoy-runtime, mounted into the Envoy pods as a runtime layer (the keys
# routing.canary_percent and routing.shadow_percent of envoy.yaml, and tracing.random_sampling): Envoy follows a
# change without a restart
# once the kubelet has refreshed the mounted files (within about a minute). Needs kubectl (KUBECTL to use
# another command); NAMESPACE, default inference.
set -eu
NS="${NAMESPACE:-inference}"
KUBECTL="${KUBECTL:-kubectl}"

fail() { echo "canary: $*" >&2; exit 2; }
percent() {
  case "$1" in '' | *[!0-9]*) fail "a share is a whole percentage from 0 to 100, not '$1'" ;; esac
  [ "$1" -le 100 ] || fail "a share is a whole percentage from 0 to 100, not '$1'"
}
# The share stored under key $1 ($2, else 0, when the ConfigMap or the key is missing).
share() {
  value="$($KUBECTL -n "$NS" get configmap envoy-runtime --ignore-not-found -o "jsonpath={.data.$1}")"
  echo "${value:-${2:-0}}"
}
# write CANARY SHADOW [TRACING]: every share, in one object (a re-apply of the overlay leaves it alone: it is not
# in it); the tracing share is kept as it is unless given.
write() {
  tracing="${3:-$(share tracing_percent 100)}"
  $KUBECTL -n "$NS" create configmap envoy-runtime --from-literal=canary_percent="$1" \
    --from-literal=shadow_percent="$2" --from-literal=tracing_percent="$tracing" --dry-run=client -o yaml |
    $KUBECTL -n "$NS" apply -f -
  echo "canary: $1 % of requests to the canary; $2 % of the stable track's copied to the shadow; $tracing % traced"
}

command="${1:-}"
case "$command" in
  status)
    echo "canary: $(share canary_percent) % of requests to the canary; $(share shadow_percent) % of the stable track's copied to the shadow; $(share tracing_percent 100) % traced" ;;
  set)
    [ $# -eq 2 ] || fail "usage: canary.sh set PERCENT"
    percent "$2"
    write "$2" "$(share shadow_percent)" ;;
  shadow)
    [ $# -eq 2 ] || fail "usage: canary.sh shadow PERCENT"
    percent "$2"
    write "$(share canary_percent)" "$2" ;;
  promote)
    [ $# -eq 1 ] || fail "usage: canary.sh promote"
    image="$($KUBECTL -n "$NS" get deployment inference-server-canary -o 'jsonpath={.spec.template.spec.containers[0].image}')"
    args="$($KUBECTL -n "$NS" get deployment inference-server-canary -o 'jsonpath={.spec.template.spec.containers[0].args}')"
    if [ -z "$image" ] || [ -z "$args" ]; then fail "no canary Deployment inference-server-canary in namespace $NS"; fi
    echo "canary: the stable Deployment takes $image and the canary's arguments"
    $KUBECTL -n "$NS" patch deployment inference-server --type json -p "[
      {\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/image\", \"value\": \"$image\"},
      {\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/args\", \"value\": $args}]"
    $KUBECTL -n "$NS" rollout status deployment/inference-server --timeout="${ROLLOUT_TIMEOUT:-600s}"
    write 0 "$(share shadow_percent)" ;;
  rollback)
    [ $# -eq 1 ] || fail "usage: canary.sh rollback"
    write 0 "$(share shadow_percent)" ;;
  tracing)
    [ $# -eq 2 ] || fail "usage: canary.sh tracing PERCENT"
    percent "$2"
    write "$(share canary_percent)" "$(share shadow_percent)" "$2" ;;
  *)
    fail "usage: canary.sh status | set PERCENT | shadow PERCENT | promote | rollback | tracing PERCENT" ;;
esac
