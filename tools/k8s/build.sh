#!/usr/bin/env bash
# Builds the real control plane the end-to-end tests run on — kube-apiserver,
# kube-controller-manager and kubectl (Kubernetes 1.35.4), etcd (3.6.16), helm (3.22.0) and kstatus-judge (sigs.k8s.io/cli-utils
# 0.37.2) — and azsdk-lifecycle (tools/azsdk: the Azure SDK for Go, run against the ARM emulator)
# from the pinned Go modules beside this script and in ../azsdk, into a versioned cache outside the
# work tree, and prints that directory (controller-runtime's KUBEBUILDER_ASSETS convention: one
# folder holding the binaries). Idempotent: seconds when the cache is already there.
#
#   assets=$(bash tools/k8s/build.sh)      # progress on stderr, the directory on stdout
#
# COGNITIVE_OPERATOR_TOOLS_CACHE overrides the cache root (default ~/.cache/cognitive-operator).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

command -v go >/dev/null 2>&1 || { echo "build.sh: go is not installed" >&2; exit 127; }

KUBERNETES_VERSION=v1.35.4
MINOR=${KUBERNETES_VERSION#v1.}
MINOR=${MINOR%%.*}

# The cache key covers every pin (go.mod/go.sum of each module, this script, the Go release),
# so changing a version builds into a new folder and never mixes binaries.
stamp=$(cat "$here"/*/go.mod "$here"/*/go.sum "$here"/kstatus/main.go \
  "$here"/../azsdk/go.mod "$here"/../azsdk/go.sum "$here"/../azsdk/main.go "$here/build.sh" <(go env GOVERSION) |
  sha256sum | cut -c1-12)
root=${COGNITIVE_OPERATOR_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cognitive-operator}
dir="$root/k8s-$KUBERNETES_VERSION-$stamp"
binaries=(etcd kube-apiserver kube-controller-manager kubectl helm kstatus-judge azsdk-lifecycle)

complete() {
  local binary
  for binary in "${binaries[@]}"; do [ -x "$dir/$binary" ] || return 1; done
}

# Pins not used for this long are pruned (about 340 MB each); other checkouts' pins in use stay.
PRUNE_AFTER_DAYS=14
prune_unused_pins() {
  local other
  for other in "$root"/k8s-*; do
    [ -d "$other" ] && [ "$other" != "$dir" ] || continue
    case "$other" in *.partial.*) continue ;; esac  # another run building
    # A folder from before .last-used existed counts by its own age.
    local stamp_file="$other/.last-used"
    [ -e "$stamp_file" ] || stamp_file=$other
    if [ -z "$(find "$stamp_file" -maxdepth 0 -mtime -"$PRUNE_AFTER_DAYS")" ]; then
      rm -rf "$other"
    fi
  done
}

if complete; then
  touch "$dir/.last-used"
  echo "$dir"
  exit 0
fi

mkdir -p "$root"
# A folder of this run's own: two runs at once never write into each other's binaries.
partial=$(mktemp -d "$dir.partial.XXXXXX")
trap 'rm -rf "$partial"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=readonly
build() { # module output package [ldflags]
  local module=$1 output=$2 package=$3 ldflags=${4:-}
  echo "build.sh: building $output ($package) ..." >&2
  go build -C "$here/$module" -trimpath -ldflags "-s -w $ldflags" -o "$partial/$output" "$package"
}

version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$MINOR"
  version_flags+=" -X $pkg.gitTreeState=clean"
done

started=$(date +%s)
build etcd etcd go.etcd.io/etcd/server/v3
build kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$version_flags"
# The controller manager only for its garbage collector and namespace controller: ownerReferences
# and namespace deletion are theirs, not the API server's.
build kube kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$version_flags"
build kube kubectl k8s.io/kubernetes/cmd/kubectl "$version_flags"
# As helm's own Makefile does: its version, and the Kubernetes version of the client-go it is
# built with as the default for `helm template` and `helm lint` (1.20 otherwise).
helm_version=$(go list -C "$here/helm" -m -f '{{.Version}}' helm.sh/helm/v3)
client_go=$(go list -C "$here/helm" -m -f '{{.Version}}' k8s.io/client-go)
helm_k8s_minor=${client_go#v0.}
helm_k8s_minor=${helm_k8s_minor%%.*}
helm_flags="-X helm.sh/helm/v3/internal/version.version=$helm_version"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_flags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$helm_k8s_minor"
done
build helm helm helm.sh/helm/v3/cmd/helm "$helm_flags"
build kstatus kstatus-judge .
# Not a control-plane binary: tools/arm-emulator/tests/azure_sdk.rs finds it here too.
build ../azsdk azsdk-lifecycle .
touch "$partial/.last-used"
if complete; then
  echo "build.sh: another run finished first; keeping its binaries" >&2
else
  rm -rf "$dir"
  mv -T "$partial" "$dir"
fi
prune_unused_pins
echo "build.sh: built ${binaries[*]} in $(($(date +%s) - started)) s into $dir" >&2
echo "$dir"
