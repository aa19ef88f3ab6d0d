#!/usr/bin/env bash
# Builds Azure Service Operator v2.20.0's controller (aso-controller) and controller-gen v0.23.0
# from the pinned Go modules beside this script into a versioned folder of the tool cache, and
# prints that folder. Opt-in: only tools/peers/aso/run.sh calls it; it is not part of .ci/run or
# tools/test.sh (a cold build is long — docs/performance.md has the measured figures).
#
#   bin=$(bash tools/peers/aso/build.sh)   # progress on stderr, the directory on stdout
#
# COGNITIVE_OPERATOR_TOOLS_CACHE overrides the cache root (default ~/.cache/cognitive-operator).
# ASO_BUILD_PARALLELISM (default 2) is go build's -p: use 1 when the machine is busy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v go >/dev/null 2>&1 || { echo "build.sh: go is not installed" >&2; exit 127; }

ASO_VERSION=$(go list -C "$here" -m -f '{{.Version}}' github.com/Azure/azure-service-operator/v2)
# The cache key covers every pin, so a version change builds into a new folder.
stamp=$(cat "$here/go.mod" "$here/go.sum" "$here/tools.go" "$here/controller-gen/go.mod" \
  "$here/controller-gen/go.sum" "$here/build.sh" <(go env GOVERSION) | sha256sum | cut -c1-12)
root=${COGNITIVE_OPERATOR_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cognitive-operator}
dir="$root/aso-$ASO_VERSION-$stamp"
binaries=(aso-controller controller-gen)

complete() {
  local binary
  for binary in "${binaries[@]}"; do [ -x "$dir/$binary" ] || return 1; done
}
if complete; then
  echo "$dir"
  exit 0
fi

mkdir -p "$root"
partial=$(mktemp -d "$dir.partial.XXXXXX")
trap 'rm -rf "$partial"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=readonly
parallelism=${ASO_BUILD_PARALLELISM:-2}
started=$(date +%s)
echo "build.sh: building aso-controller (ASO $ASO_VERSION, -p $parallelism) ..." >&2
# As ASO's own Dockerfile: go build ./cmd/controller, the version stamped by ldflags.
go build -C "$here" -p "$parallelism" -trimpath \
  -ldflags "-s -w -X github.com/Azure/azure-service-operator/v2/internal/version.BuildVersion=$ASO_VERSION" \
  -o "$partial/aso-controller" github.com/Azure/azure-service-operator/v2/cmd/controller
echo "build.sh: building controller-gen ..." >&2
go build -C "$here/controller-gen" -p "$parallelism" -trimpath -ldflags "-s -w" \
  -o "$partial/controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen
rm -rf "$dir"
mv -T "$partial" "$dir"
echo "build.sh: built ${binaries[*]} in $(($(date +%s) - started)) s into $dir" >&2
echo "$dir"
