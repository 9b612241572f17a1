#!/usr/bin/env bash
# make ee: the execution environment image sre-runbooks/ee:<version> (execution-environment.yml),
# built with ansible-builder and cached by content: the collection's files (the FILES.json of its
# tarball), the EE definition and the base image. Prints the image's name last.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/extensions/ee
WORK=$ROOT/build/ee
VERSION=$(awk '$1 == "version:" {print $2}' "$ROOT/galaxy.yml")
EE_IMAGE=sre-runbooks/ee:$VERSION
BASE_IMAGE=sre-runbooks/ee-base:bookworm
DEBIAN_IMAGE=sre-demo/base:bookworm
export DOCKER_BUILDKIT=0  # the classic builder: RUN steps on the host network (--bridge=none engine)

log() { printf '[ee %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'ee: ERROR: %s\n' "$*" >&2; exit 1; }
digest() { sha256sum | cut -c1-16; }
label() { docker image inspect -f "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }

command -v ansible-builder >/dev/null || die "ansible-builder is not installed: run make venv (it is in requirements.txt)"
# The Docker engine and the Debian base, as the rig makes them (demo images cached, not rebuilt).
"$ROOT/demo/rig.sh" images >&2

# The base: the Debian image prepared for ansible-builder, with the CAs this machine trusts.
rm -rf "$WORK/base" && mkdir -p "$WORK/base/ca-certificates"
cp "$HERE/base/Containerfile" "$HERE/base/ee-pkgmgr" "$WORK/base/"
find /usr/local/share/ca-certificates -maxdepth 1 -name '*.crt' -exec cp {} "$WORK/base/ca-certificates/" \; 2>/dev/null || true
base_key=$({ (cd "$WORK/base" && find . -type f | sort | xargs cat); docker image inspect -f '{{.Id}}' "$DEBIAN_IMAGE"; } | digest)
if [[ $(label "$BASE_IMAGE" io.sre-runbooks.source-hash) != "$base_key" ]]; then
  log "building $BASE_IMAGE from $DEBIAN_IMAGE (apt: pip, CA certificates)"
  docker build -q --network host --build-arg BASE_IMAGE="$DEBIAN_IMAGE" --build-arg SOURCE_HASH="$base_key" \
    -f "$WORK/base/Containerfile" -t "$BASE_IMAGE" "$WORK/base" >&2
fi

# The collection, as `ansible-galaxy collection install` takes it.
rm -rf "$WORK/collection" && mkdir -p "$WORK/collection"
ansible-galaxy collection build --force --output-path "$WORK/collection" "$ROOT" >&2
mv "$WORK/collection"/sre-runbooks-*.tar.gz "$WORK/collection/sre-runbooks.tar.gz"

key=$({ tar -xOzf "$WORK/collection/sre-runbooks.tar.gz" FILES.json
        cat "$ROOT/execution-environment.yml" "$HERE/requirements.yml"
        docker image inspect -f '{{.Id}}' "$BASE_IMAGE"; } | digest)
if docker image inspect "sre-runbooks/ee:src-$key" >/dev/null 2>&1; then
  log "$EE_IMAGE is up to date (content $key)"
  docker tag "sre-runbooks/ee:src-$key" "$EE_IMAGE"
else
  log "building $EE_IMAGE with ansible-builder (content $key; a few minutes: pip installs from PyPI)"
  start=$SECONDS
  (cd "$ROOT" && ansible-builder build -f execution-environment.yml -c "$WORK/context" --container-runtime docker \
     --tag "$EE_IMAGE" --tag "sre-runbooks/ee:src-$key" --extra-build-cli-args=--network=host -v 1) >&2 \
    || die "ansible-builder failed: see its output above; the build context is $WORK/context"
  log "built $EE_IMAGE in $((SECONDS - start)) s"
  # The builds of older contents go: their images would pile up at every change.
  docker images sre-runbooks/ee --format '{{.Tag}}' | grep '^src-' | grep -vx "src-$key" |
    sed 's|^|sre-runbooks/ee:|' | xargs -r docker rmi >/dev/null || true
fi
echo "$EE_IMAGE"
