#!/bin/sh
# The model store's seed Job (and tests/deploy/test_model_store.py, against a real SeaweedFS): creates the
# bucket if it is missing, then uploads each model of SEED_DIR (the models bundled in the server image) that
# has no object in the bucket yet, so a model you uploaded or changed is never overwritten. Talks only S3,
# signed with AWS Signature V4 by curl (--aws-sigv4), with the publisher's keys from the environment:
#   AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, MODEL_BUCKET, MODEL_PREFIX, SEED_DIR
set -eu
: "${AWS_ENDPOINT_URL:?}" "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}" "${MODEL_BUCKET:?}" "${SEED_DIR:?}"
REGION="${AWS_REGION:-us-east-1}"
PREFIX="${MODEL_PREFIX:-}"
BUCKET_URL="${AWS_ENDPOINT_URL%/}/$MODEL_BUCKET"

# s3 METHOD PATH [curl arguments]: one signed request; the keys reach curl on stdin, never its command line.
s3() {
  method="$1"; path="$2"; shift 2
  printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" |
    curl --config - --silent --show-error --fail --retry 5 --retry-connrefused --retry-delay 2 \
      --aws-sigv4 "aws:amz:$REGION:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
      -X "$method" "$@" "$BUCKET_URL$path"
}

if s3 HEAD "" --head --output /dev/null 2>/dev/null; then
  echo "seed: bucket $MODEL_BUCKET exists"
else
  echo "seed: creating bucket $MODEL_BUCKET"
  s3 PUT "" --output /dev/null
fi

for model_dir in "$SEED_DIR"/*/; do
  model="$(basename "$model_dir")"
  key_prefix="${PREFIX:+$PREFIX/}$model/"
  # The query is signed as sent: the prefix's slashes percent-encoded, as the canonical form has them.
  listing="$(s3 GET "?list-type=2&max-keys=1&prefix=$(printf %s "$key_prefix" | sed 's|/|%2F|g')")"
  case "$listing" in *"<KeyCount>0</KeyCount>"*) ;; *)
    echo "seed: $model is in the bucket already: left as it is"
    continue ;;
  esac
  (cd "$model_dir" && find . -type f) | sed 's|^\./||' | sort | while read -r file; do
    s3 PUT "/$key_prefix$file" --upload-file "$model_dir$file" --output /dev/null
  done
  echo "seed: uploaded $model"
done
