#!/bin/sh
# Makes, in DIR, what the kind-bucket overlay's Secrets are generated from (only what is missing):
#   reader.env   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of the identity the servers use: read and list
#                the bucket `models`, nothing else
#   admin.env    the same for the identity that creates the bucket and uploads models (the seed Job, and you:
#                docs/deploy.md#models-from-a-bucket)
#   s3.json      the SeaweedFS S3 gateway's identities file with both (it checks every request's signature)
# Usage: sh scripts/model-store-secrets.sh DIR   (scripts/restart.sh --bucket runs it)
set -eu
DIR="${1:?usage: model-store-secrets.sh DIR}"
umask 077
mkdir -p "$DIR"

# An access key id of 20 upper-case hex characters and a secret of 40, as AWS shapes them.
for who in reader admin; do
  [ -s "$DIR/$who.env" ] || printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' \
    "$(openssl rand -hex 10 | tr 'a-f' 'A-F')" "$(openssl rand -hex 20)" >"$DIR/$who.env"
done
value() { sed -n "s/^$2=//p" "$DIR/$1.env"; }
cat >"$DIR/s3.json" <<JSON
{"identities": [
  {"name": "inference-server",
   "credentials": [{"accessKey": "$(value reader AWS_ACCESS_KEY_ID)", "secretKey": "$(value reader AWS_SECRET_ACCESS_KEY)"}],
   "actions": ["Read:models", "List:models"]},
  {"name": "model-publisher",
   "credentials": [{"accessKey": "$(value admin AWS_ACCESS_KEY_ID)", "secretKey": "$(value admin AWS_SECRET_ACCESS_KEY)"}],
   "actions": ["Admin", "Read", "List", "Write", "Tagging"]}
]}
JSON
