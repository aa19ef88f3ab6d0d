#!/usr/bin/env bash
# Generates ASO v2.20.0's Cognitive Services CRDs (Account, Deployment: v1api20250601 and its
# storage hub) and their webhook configurations with controller-gen, from the ASO module pinned
# in go.mod (the module ships no CRD YAML), into BIN_DIR/crds-raw once. run.sh adds what the
# raw output lacks per run: ASO's labels and loopback webhook clientConfigs with the run's CA.
#
#   bash tools/peers/aso/crds.sh "$(bash tools/peers/aso/build.sh)"
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?usage: crds.sh BIN_DIR (from build.sh)}
out="$bin/crds-raw"
[ -s "$out/webhook/manifests.yaml" ] && exit 0
partial=$(mktemp -d "$out.partial.XXXXXX")
trap 'rm -rf "$partial"' EXIT
api=github.com/Azure/azure-service-operator/v2/api/cognitiveservices/v1api20250601
# Run in the wrapper module so the import paths resolve to the pinned ASO.
(cd "$here" && GOFLAGS=-mod=readonly "$bin/controller-gen" crd:crdVersions=v1,allowDangerousTypes=true \
  webhook paths="$api/..." output:crd:dir="$partial/crd" output:webhook:dir="$partial/webhook")
rm -rf "$out"
mv -T "$partial" "$out"
echo "crds.sh: generated $(ls "$out/crd" | tr '\n' ' ')into $out" >&2
