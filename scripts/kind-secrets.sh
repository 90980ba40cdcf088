#!/bin/sh
# Makes, in DIR, what the kind overlay's Secrets are generated from (only what is missing or due):
#   ca.crt, ca.key     a CA for the cluster's inference traffic (Envoy trusts it for its upstream TLS)
#   tls.crt, tls.key   the servers' certificate, named for the Services Envoy and in-cluster clients use;
#                      reissued when it is missing or expires within 30 days
#   client.token, admin.token, tokens.json
#                      bearer tokens (random, 64 hex characters) and the servers' tokens file, which holds
#                      only their SHA-256 digests: client may infer and read metadata, admin everything
# Usage: sh scripts/kind-secrets.sh DIR   (scripts/restart.sh runs it; docs/security.md, docs/deploy.md)
set -eu
DIR="${1:?usage: kind-secrets.sh DIR}"
umask 077
mkdir -p "$DIR"
SANS="DNS:inference-server-headless,DNS:inference-server-headless.inference.svc"
SANS="$SANS,DNS:inference-server-headless.inference.svc.cluster.local,DNS:inference-server"
SANS="$SANS,DNS:inference-server.inference.svc,DNS:inference-server.inference.svc.cluster.local"
SANS="$SANS,DNS:localhost,IP:127.0.0.1"

if [ ! -s "$DIR/ca.crt" ] || [ ! -s "$DIR/ca.key" ]; then
  echo "kind-secrets: a new CA"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$DIR/ca.key" \
    -out "$DIR/ca.crt" -subj "/CN=inference-platform kind CA" -days 3650 2>/dev/null
  rm -f "$DIR/tls.crt"
fi

if [ ! -s "$DIR/tls.crt" ] || ! openssl x509 -checkend 2592000 -noout -in "$DIR/tls.crt" >/dev/null 2>&1; then
  echo "kind-secrets: a new server certificate"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$SANS" >"$DIR/tls.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$DIR/tls.key" -out "$DIR/tls.csr" \
    -subj "/CN=inference-server" 2>/dev/null
  openssl x509 -req -in "$DIR/tls.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial -days 365 \
    -extfile "$DIR/tls.ext" -out "$DIR/tls.crt" 2>/dev/null
  rm -f "$DIR/tls.csr" "$DIR/tls.ext"
fi

for who in client admin; do
  [ -s "$DIR/$who.token" ] || openssl rand -hex 32 >"$DIR/$who.token"
done
digest() { printf %s "$(cat "$1")" | openssl dgst -sha256 -r | cut -d' ' -f1; }
cat >"$DIR/tokens.json" <<JSON
{"tokens": [
  {"name": "client", "sha256": "$(digest "$DIR/client.token")", "scopes": ["infer", "metadata"]},
  {"name": "admin", "sha256": "$(digest "$DIR/admin.token")",
   "scopes": ["infer", "metadata", "statistics", "model-control", "health", "metrics"]}
]}
JSON
