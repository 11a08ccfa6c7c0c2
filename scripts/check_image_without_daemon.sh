#!/bin/bash
# Build a generated repository's Dockerfile and run the image on a machine without a container engine
# (no Docker daemon, no registry access beyond the Debian and PyPI mirrors), then call every platform's
# routes. What #21 asks for where an image cannot be pulled: a base made from Debian packages.
#
#   sudo scripts/check_image_without_daemon.sh REPO [PACKAGE]     (REPO: a render with artifacts/model)
#
# Needs root, Debian's buildah and debootstrap (apt-get install buildah debootstrap). The base is Debian
# 12's python3 (3.11), standing in for python:3.11-slim-trixie, which this machine cannot pull; the host's
# CA bundle is copied in so pip reaches PyPI through this machine's proxy. buildah's own `run` fails in
# this sandbox (memfd sealing), so the image runs from its mounted root filesystem with chroot, as its
# user 10001, with exactly its ENV, WORKDIR, ENTRYPOINT and CMD.
set -euo pipefail
repo=$(cd "$1" && pwd)
package=${2:-my_ml_project}
work=${WORK:-/tmp/image-check}
export STORAGE_DRIVER=vfs
mkdir -p "$work"

if ! buildah images -q localhost/debian-python:3.11-bookworm | grep -q .; then
  debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$work/rootfs" http://deb.debian.org/debian
  rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
  cp /etc/ssl/certs/ca-certificates.crt "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
  base=$(buildah from scratch)
  cp -a "$work/rootfs/." "$(buildah mount "$base")/"
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$base"
  buildah commit -q "$base" localhost/debian-python:3.11-bookworm
  buildah rm "$base" >/dev/null
fi

buildah bud --isolation chroot --layers=false --build-arg PYTHON_IMAGE=localhost/debian-python:3.11-bookworm \
  -t localhost/model:check "$repo"
buildah images localhost/model:check

ctr=$(buildah from localhost/model:check)
root=$(buildah mount "$ctr")
trap 'pkill -f "$package serve" || true; umount -R "$root/proc" "$root/dev" 2>/dev/null || true; buildah rm "$ctr" >/dev/null' EXIT
body=$(python3 -c "import json,sys; print(json.dumps({'instances': json.load(open(sys.argv[1]))['instances'][:2]}))" \
  "$repo/artifacts/model/sample.json")

serve() {  # serve PORT VAR=VALUE...: the image's command in its root, as its user, with its environment
  local port=$1; shift
  unshare -m --propagation private sh -c "mount -t proc proc '$root/proc' && mount --rbind /dev '$root/dev' \
    && cp /etc/resolv.conf '$root/etc/resolv.conf' \
    && exec chroot --userspec=10001:10001 '$root' /usr/bin/env -i PATH=/opt/venv/bin:/usr/bin:/bin \
       PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SERVE_HOST=0.0.0.0 MODEL_DIR=/opt/ml/model HOME=/nonexistent \
       AIP_HTTP_PORT=$port $* sh -c 'cd /app && exec python -m $package serve'" >"$work/serve-$port.log" 2>&1 &
  for _ in $(seq 60); do curl -fs "http://127.0.0.1:$port/ping" >/dev/null && return 0; sleep 1; done
  cat "$work/serve-$port.log"; return 1
}

check() {  # check METHOD URL [BODY]: exit non-zero unless 200
  local code
  code=$(curl -s -o "$work/answer" -w '%{http_code}' -H 'Content-Type: application/json' ${3:+-d "$3"} "$2")
  echo "$1 $2 -> $code $(head -c 120 "$work/answer")"
  [ "$code" = 200 ]
}

echo "== SageMaker (baked model at /opt/ml/model, port 8080 by the platform: here 18080)"
serve 18080
check GET http://127.0.0.1:18080/ping && check POST http://127.0.0.1:18080/invocations "$body"
echo "== Azure ML (liveness, readiness, scoring)"
check GET http://127.0.0.1:18080/live && check GET http://127.0.0.1:18080/ready
check POST http://127.0.0.1:18080/score "$(python3 -c "import json,sys; print(json.dumps({'data': json.loads(sys.argv[1])['instances']}))" "$body")"
pkill -f "$package serve"; sleep 2
echo "== Vertex AI (its port and routes from AIP_*)"
serve 18081 AIP_HEALTH_ROUTE=/v1/health AIP_PREDICT_ROUTE=/v1/models/m:predict
check GET http://127.0.0.1:18081/v1/health && check POST "http://127.0.0.1:18081/v1/models/m:predict" "$body"
echo "image check: ok"
