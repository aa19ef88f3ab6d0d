#!/usr/bin/env bash
# Runs Azure Service Operator v2.20.0 as a local process against a kube-apiserver and the ARM
# emulator, all on loopback, and creates N Cognitive Services accounts through it (default 1; with
# DEPLOYMENTS=K also K deployments of the first, applied with them). Prints the time until all are Ready and the
# emulator's request log by method, the Kubernetes writes, the operator's peak RSS and CPU; keeps
# every log in the run folder it prints. Opt-in, heavy
# (builds ASO once into the tool cache): not part of .ci/run or tools/test.sh.
#
#   bash tools/peers/aso/run.sh [N]
#
# COGNITIVE_OPERATOR_BIN: the cognitive-operator binary for the emulator (default target/release).
# WITH_COGNITIVE_OPERATOR=1: then the same accounts through cognitive-operator (CO_EXTRA_ARGS: more
# flags for it), in its own subscription and namespace on the same API server and emulator.
# ASO_SYNC_PERIOD (1h; both operators' resync), ASO_CONCURRENCY (4, both), ASO_READY_TIMEOUT (600 s);
# AT_REST_SECONDS: then that long at rest, and the calls and writes in it. EMULATOR_ARGS: more
# flags for the emulator (e.g. --profile long-running). SOFT_DELETED=1: each name sits soft-deleted
# (CO_ADOPTION_POLICY=Adopt lets cognitive-operator restore a copy it did not make).
# DRIFT=1: every account gets the tag bench=run; once all are Ready one tag value is changed in
# Azure behind the operators' backs (an ARM PATCH as a third identity), and for DRIFT_SECONDS
# (default 100; use with ASO_SYNC_PERIOD=60s) each operator's writes are printed: method, body
# size, fields. DELETE_PROVISIONED=1: the first account's deployment(s) are ProvisionedManaged
# (capacity 15; DEPLOYMENTS defaults to 1); once Ready the account objects are deleted and the
# DELETE calls and each subscription's billing meter are printed once it settles.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
accounts=${1:-1}
deployments=${DEPLOYMENTS:-${ASO_DEPLOYMENT:-0}}
[ -z "${DELETE_PROVISIONED:-}" ] || deployments=${DEPLOYMENTS:-1}
if [ -n "${DELETE_PROVISIONED:-}" ]; then deployment_sku="{name: ProvisionedManaged, capacity: 15}"
else deployment_sku="{name: Standard, capacity: 1}"; fi
if [ -n "${DRIFT:-}" ]; then tags_line="  tags: {bench: run}"; else tags_line=""; fi
emulator_bin=${COGNITIVE_OPERATOR_BIN:-$repo/target/release/cognitive-operator}
# ASO's webhook server binds every interface (controller-runtime gets only its port), so the run
# goes into a network namespace of its own with nothing but loopback, when the machine allows one:
# the webhook port is then reachable from nowhere else, and nothing can leave the machine. The
# builds, which need the module proxy, run first (cached after the first time).
if [ -z "${ASO_RUN_NETNS:-}" ] && unshare -n true 2>/dev/null; then
  bash "$here/build.sh" >/dev/null
  bash "$repo/tools/k8s/build.sh" >/dev/null
  exec unshare -n env ASO_RUN_NETNS=1 bash -c 'ip link set lo up && exec bash "$0" "$@"' "$here/run.sh" "$@"
fi
aso=$(bash "$here/build.sh")
k8s=$(bash "$repo/tools/k8s/build.sh")
bash "$here/crds.sh" "$aso"
run=$(mktemp -d /tmp/aso-run.XXXXXX)
echo "run.sh: run folder $run" >&2

pids=()
# Newest first (ASO before the API server, the API server before etcd); whatever is still up
# after 10 s is killed.
stop_all() {
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
}
trap stop_all EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # seconds description command...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "run.sh: timed out waiting for $what" >&2; return 1
}

# One CA per run signs the API server's and ASO's webhook serving certificates.
make_certificates() {
  local certs=$run/certs
  mkdir -p "$certs/webhook"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=aso-run-ca \
    -keyout "$certs/ca.key" -out "$certs/ca.crt" 2>/dev/null
  serving_certificate() { # key crt
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 -keyout "$1" \
      -out "$run/certs/req.csr" 2>/dev/null
    openssl x509 -req -in "$run/certs/req.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" -days 1 \
      -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost') -out "$2" 2>/dev/null
  }
  serving_certificate "$certs/serving.key" "$certs/serving.crt"
  serving_certificate "$certs/webhook/tls.key" "$certs/webhook/tls.crt"
  openssl ecparam -name prime256v1 -genkey -noout -out "$certs/sa.key"
  openssl ec -in "$certs/sa.key" -pubout -out "$certs/sa.pub" 2>/dev/null
  echo "aso-run-admin-token,aso-run-admin,aso-run-admin-uid,system:masters" >"$certs/tokens.csv"
}

start_control_plane() {
  local etcd_port peer_port
  etcd_port=$(free_port) peer_port=$(free_port) apiserver_port=$(free_port)
  "$k8s/etcd" --data-dir="$run/etcd" --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" --listen-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="default=http://127.0.0.1:$peer_port" --unsafe-no-fsync=true --log-level=warn \
    >"$run/etcd.log" 2>&1 &
  pids+=($!)
  "$k8s/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" --secure-port="$apiserver_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --cert-dir="$run/certs/apiserver" \
    --tls-cert-file="$run/certs/serving.crt" --tls-private-key-file="$run/certs/serving.key" \
    --token-auth-file="$run/certs/tokens.csv" --authorization-mode=RBAC \
    --service-account-issuer="https://127.0.0.1:$apiserver_port" \
    --service-account-key-file="$run/certs/sa.pub" --service-account-signing-key-file="$run/certs/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --disable-admission-plugins=ServiceAccount \
    >"$run/kube-apiserver.log" 2>&1 &
  pids+=($!)
  export KUBECONFIG=$run/kubeconfig
  cat >"$KUBECONFIG" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters: [{name: run, cluster: {server: "https://127.0.0.1:$apiserver_port", certificate-authority: "$run/certs/ca.crt"}}]
users: [{name: admin, user: {token: aso-run-admin-token}}]
contexts: [{name: run, context: {cluster: run, user: admin}}]
current-context: run
KUBECONFIG
  wait_for 60 "kube-apiserver /readyz" "$k8s/kubectl" get --raw /readyz
}

# The emulator: plain listener for its admin API, TLS listener for ASO, the managed-identity
# endpoint, tokens required to be its own. ASO's subscription and group exist from the start.
start_emulator() {
  subscription=00000000-0000-0000-0000-0000000a5000
  co_subscription=00000000-0000-0000-0000-0000000c0000
  identity_header=aso-run-$RANDOM$RANDOM
  "$emulator_bin" emulator --listen 127.0.0.1:0 --tls-listen 127.0.0.1:0 --tls-ca-out "$run/emulator-ca.pem" \
    --resource-group "$subscription/aso-rg@westus3" --resource-group "$co_subscription/co-rg@westus3" \
    --managed-identity aso-run-identity --managed-identity co-run-identity --managed-identity drift-identity \
    --identity-header "$identity_header" --require-issued-tokens ${EMULATOR_ARGS:-} >"$run/emulator.log" 2>&1 &
  pids+=($!)
  wait_for 30 "the emulator's TLS listener" grep -q "TLS listening on" "$run/emulator.log"
  emulator_http=$(grep -o 'listening on http://[0-9.:]*' "$run/emulator.log" | head -1 | cut -d' ' -f3)
  emulator_https=$(grep -o 'TLS listening on https://[0-9.:]*' "$run/emulator.log" | cut -d' ' -f4)
}

# A stand-in for any proxy: logs the first line of every connection made to it and closes it.
# Everything ASO sends off loopback would arrive here (HTTPS_PROXY), so its log must stay empty.
start_proxy_trap() {
  proxy_port=$(free_port)
  python3 - "$proxy_port" "$run/proxy-trap.log" <<'PY' &
import socket, sys
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1]))); server.listen()
while True:
    conn, _ = server.accept()
    line = conn.recv(4096).split(b"\r\n")[0]
    with open(sys.argv[2], "ab") as log: log.write(line + b"\n")
    conn.close()
PY
  pids+=($!)
  touch "$run/proxy-trap.log"
}

install_crds() {
  webhook_port=$(free_port)
  python3 "$here/patch_crds.py" "$aso/crds-raw" "https://127.0.0.1:$webhook_port" "$run/certs/ca.crt" \
    v2.20.0 >"$run/aso-manifests.yaml"
  "$k8s/kubectl" apply --server-side -f "$run/aso-manifests.yaml" >"$run/kubectl-apply.log"
  "$k8s/kubectl" wait --for=condition=Established --timeout=60s \
    crd/accounts.cognitiveservices.azure.com crd/deployments.cognitiveservices.azure.com >/dev/null
  "$k8s/kubectl" create namespace aso-system >/dev/null
  "$k8s/kubectl" create namespace aso >/dev/null
}

start_aso() {
  local metrics_port health_port
  metrics_port=$(free_port) health_port=$(free_port)
  env -i PATH="$PATH" HOME="$run" TMPDIR="$run" KUBECONFIG="$KUBECONFIG" POD_NAMESPACE=aso-system \
    AZURE_SUBSCRIPTION_ID="$subscription" AZURE_RESOURCE_MANAGER_ENDPOINT="$emulator_https/" \
    AZURE_RESOURCE_MANAGER_AUDIENCE=https://management.core.windows.net/ AZURE_AUTHORITY_HOST="$emulator_https/" \
    IDENTITY_ENDPOINT="$emulator_http/_emulator/msi/token" IDENTITY_HEADER="$identity_header" \
    SSL_CERT_FILE="$run/emulator-ca.pem" HTTPS_PROXY="http://127.0.0.1:$proxy_port" \
    HTTP_PROXY="http://127.0.0.1:$proxy_port" NO_PROXY=127.0.0.1,localhost \
    AZURE_TARGET_NAMESPACES=aso AZURE_SYNC_PERIOD="${ASO_SYNC_PERIOD:-1h}" GOMEMLIMIT=400MiB \
    MAX_CONCURRENT_RECONCILES="${ASO_CONCURRENCY:-4}" \
    "$aso/aso-controller" --crd-management=none --webhook-port="$webhook_port" \
    --webhook-cert-dir="$run/certs/webhook" --metrics-addr="127.0.0.1:$metrics_port" --secure-metrics=false \
    --health-addr="127.0.0.1:$health_port" >"$run/aso.log" 2>&1 &
  aso_pid=$!
  pids+=($aso_pid)
  wait_for 120 "ASO's readyz" curl -sf "http://127.0.0.1:$health_port/readyz"
  wait_for 60 "ASO's webhook server" curl -sk "https://127.0.0.1:$webhook_port/convert"
}

# cognitive-operator with the same settings where both have them: 4 workers, resync 1 h (on
# each resource), managed identity through the emulator, its own subscription and namespace.
start_cognitive_operator() {
  local http_port
  http_port=$(free_port)
  "$k8s/kubectl" apply --server-side -f "$repo/crds" >/dev/null
  "$k8s/kubectl" wait --for=condition=Established --timeout=60s \
    crd/cognitiveservicesaccounts.cognitive-operator.dev >/dev/null
  "$k8s/kubectl" create namespace co >/dev/null
  "$k8s/kubectl" create namespace co-system >/dev/null
  env -i PATH="$PATH" HOME="$run" KUBECONFIG="$KUBECONFIG" POD_NAME=co-run \
    IDENTITY_ENDPOINT="$emulator_https/_emulator/msi/token" IDENTITY_HEADER="$identity_header" \
    AZURE_CLIENT_ID=co-run-identity AZURE_AUTHORITY_HOST="$emulator_https" \
    SSL_CERT_FILE="$run/emulator-ca.pem" ALL_PROXY="http://127.0.0.1:$proxy_port" NO_PROXY=127.0.0.1,localhost \
    "$emulator_bin" run --arm-endpoint "$emulator_https" --credential managed-identity \
    --subscription-id "$co_subscription" --http-addr "127.0.0.1:$http_port" --lease-namespace co-system \
    --namespace co --concurrency "${ASO_CONCURRENCY:-4}" --default-scopes='*' --log-format json ${CO_EXTRA_ARGS:-} \
    >"$run/cognitive-operator.log" 2>&1 &
  co_pid=$!
  pids+=($co_pid)
  # Not /readyz: the binary these figures were taken with never turned ready (a bug since
  # fixed, docs/performance.md); leading is its last start step in every version.
  wait_for 60 "cognitive-operator's lead" grep -q "leading: starting the controller" "$run/cognitive-operator.log"
}

cognitive_manifests() {
  local i
  for i in $(seq "$accounts"); do
    cat <<YAML
---
apiVersion: cognitive-operator.dev/v1alpha1
kind: CognitiveServicesAccount
metadata: {name: co-account-$i, namespace: co}
spec:
  resourceGroup: co-rg
  location: westus3
  kind: OpenAI
  sku: {name: S0}
  resyncInterval: ${ASO_SYNC_PERIOD:-1h}
  adoptionPolicy: ${CO_ADOPTION_POLICY:-Never}
  properties: {customSubDomainName: co-run-account-$i, publicNetworkAccess: Enabled}
$tags_line
YAML
  done
  for i in $(seq "$deployments"); do
    cat <<YAML
---
apiVersion: cognitive-operator.dev/v1alpha1
kind: CognitiveServicesDeployment
metadata: {name: co-deployment-$i, namespace: co}
spec:
  accountRef: {name: co-account-1}
  sku: $deployment_sku
  model: {format: OpenAI, name: gpt-4o, version: "2024-11-20"}
  resyncInterval: ${ASO_SYNC_PERIOD:-1h}
YAML
  done
}

account_manifests() {
  local i
  for i in $(seq "$accounts"); do
    cat <<YAML
---
apiVersion: cognitiveservices.azure.com/v1api20250601
kind: Account
metadata: {name: aso-account-$i, namespace: aso}
spec:
  location: westus3
  owner: {armId: /subscriptions/$subscription/resourceGroups/aso-rg}
  kind: OpenAI
  sku: {name: S0}
  properties: {customSubDomainName: aso-run-account-$i, publicNetworkAccess: Enabled}
$tags_line
YAML
  done
  for i in $(seq "$deployments"); do
    cat <<YAML
---
apiVersion: cognitiveservices.azure.com/v1api20250601
kind: Deployment
metadata: {name: aso-deployment-$i, namespace: aso}
spec:
  owner: {name: aso-account-1}
  sku: $deployment_sku
  properties: {model: {format: OpenAI, name: gpt-4o, version: "2024-11-20"}}
YAML
  done
}

# ARM calls of one subscription from the emulator's request log, by method, status and path kind.
arm_calls() { # subscription
  jq -r --arg sub "$1" '.[] | select(.path | contains($sub)) | "\(.method) \(.status) \(.path
    | sub("/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.CognitiveServices/accounts/[^/]+"; "{account}")
    | sub("/subscriptions/[^/]+/providers/Microsoft.CognitiveServices/locations/[^/]+/"; "{location}/")
    | sub("operationResults/[^/?]+"; "operationResults/{id}") | sub("operationStatuses/[^/?]+"; "operationStatuses/{id}")
    | sub("deployments/[^/]+"; "deployments/{d}"))"' \
    "$run/emulator-requests.json" | sort | uniq -c | sort -rn
}

# Kubernetes API writes so far, from the API server's apiserver_request_total: "verb group/resource[/subresource] count".
kube_writes_snapshot() {
  "$k8s/kubectl" get --raw /metrics | grep '^apiserver_request_total{' | grep -E 'verb="(POST|PUT|PATCH|APPLY|DELETE)"' |
    sed -E 's/.*group="([^"]*)".*resource="([^"]*)".*subresource="([^"]*)".*verb="([^"]*)".*\} ([0-9]+)/\4 \1\/\2\/\3 \5/' |
    awk '{sum[$1 " " $2] += $3} END {for (k in sum) print k, sum[k]}' | sort
}

# The writes between two snapshots, the workload's own kubectl apply included (one POST an object).
kube_writes_between() { # before after
  awk 'NR == FNR {before[$1 " " $2] = $3; next} {d = $3 - before[$1 " " $2]; if (d > 0) printf "%7d %s %s\n", d, $1, $2}' "$1" "$2" |
    sort -rn
}

process_usage() { # pid
  echo "peak RSS $(awk '/VmHWM/ {print $2, $3}' "/proc/$1/status"), CPU $(awk '{print ($14 + $15) / 100}' "/proc/$1/stat") s"
}

# Applies a workload, waits until every object is Ready, prints the seconds it took.
time_to_ready() { # namespace manifests resources
  local started
  started=$(date +%s.%N)
  "$k8s/kubectl" apply -f "$2" >>"$run/kubectl-workload.log"
  if "$k8s/kubectl" wait --for=condition=Ready --timeout="${ASO_READY_TIMEOUT:-600}s" -n "$1" "$3" --all \
    >>"$run/kubectl-wait.log" 2>&1; then
    echo "in $(echo "$(date +%s.%N) - $started" | bc) s"
  else
    echo "NOT in ${ASO_READY_TIMEOUT:-600} s ($(not_ready "$1" "$3") not Ready)"
  fi
}

not_ready() { # namespace resources
  "$k8s/kubectl" get -n "$1" "$2" -o json | jq '[.items[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True") | not)] | length'
}
make_certificates
start_control_plane
start_emulator
start_proxy_trap
install_crds
start_aso
# Both operators are up before any workload: each is timed from its apply, neither from its start.
[ -z "${WITH_COGNITIVE_OPERATOR:-}" ] || start_cognitive_operator
# SOFT_DELETED=1: every account's name already sits soft-deleted (same group and subdomain).
seed_soft_deleted() { # subscription group prefix
  local i
  for i in $(seq "$accounts"); do
    curl -sf -X POST "$emulator_http/_emulator/deletedAccounts" -H 'content-type: application/json' -d "{
      \"subscriptionId\": \"$1\", \"resourceGroup\": \"$2\", \"name\": \"$3-account-$i\",
      \"account\": {\"location\": \"westus3\", \"kind\": \"OpenAI\", \"sku\": {\"name\": \"S0\"},
        \"properties\": {\"customSubDomainName\": \"$3-run-account-$i\"}}}" >/dev/null
  done
}
if [ -n "${SOFT_DELETED:-}" ]; then
  seed_soft_deleted "$subscription" aso-rg aso
  seed_soft_deleted "$co_subscription" co-rg co
fi
aso_resources=accounts.cognitiveservices.azure.com
[ "$deployments" = 0 ] || aso_resources+=,deployments.cognitiveservices.azure.com
account_manifests >"$run/aso-workload.yaml"
kube_writes_snapshot >"$run/kube-writes-0"
aso_seconds=$(time_to_ready aso "$run/aso-workload.yaml" "$aso_resources")
"$k8s/kubectl" get -n aso "$aso_resources" -o yaml >"$run/aso-objects.yaml"
curl -s "$emulator_http/_emulator/requests" >"$run/emulator-requests.json"
echo "== Azure Service Operator v2.20.0: $accounts account(s)$([ "$deployments" = 0 ] || echo " and $deployments deployment(s) of the first") Ready $aso_seconds; $(process_usage "$aso_pid")"
arm_calls "$subscription"
kube_writes_snapshot >"$run/kube-writes-1"
echo "Kubernetes writes (kubectl's creates included):"
kube_writes_between "$run/kube-writes-0" "$run/kube-writes-1"
if [ -n "${WITH_COGNITIVE_OPERATOR:-}" ]; then
  cognitive_manifests >"$run/co-workload.yaml"
  co_resources=cognitiveservicesaccounts.cognitive-operator.dev
  [ "$deployments" = 0 ] || co_resources+=,cognitiveservicesdeployments.cognitive-operator.dev
  co_seconds=$(time_to_ready co "$run/co-workload.yaml" "$co_resources")
  "$k8s/kubectl" get -n co "$co_resources" -o yaml >"$run/co-objects.yaml"
  curl -s "$emulator_http/_emulator/requests" >"$run/emulator-requests.json"
  echo "== cognitive-operator: $accounts account(s)$([ "$deployments" = 0 ] || echo " and $deployments deployment(s) of the first") Ready $co_seconds; $(process_usage "$co_pid")"
  arm_calls "$co_subscription"
  kube_writes_snapshot >"$run/kube-writes-2"
  echo "Kubernetes writes (kubectl's creates included):"
  kube_writes_between "$run/kube-writes-1" "$run/kube-writes-2"
fi
# At rest: both sets Ready, the request log cleared, then AT_REST_SECONDS of resyncs.
if [ -n "${AT_REST_SECONDS:-}" ]; then
  curl -s -X DELETE "$emulator_http/_emulator/requests" >/dev/null
  kube_writes_snapshot >"$run/kube-writes-rest-0"
  sleep "$AT_REST_SECONDS"
  kube_writes_snapshot >"$run/kube-writes-rest-1"
  curl -s "$emulator_http/_emulator/requests" >"$run/emulator-requests.json"
  echo "== at rest for $AT_REST_SECONDS s (resync ${ASO_SYNC_PERIOD:-1h}): ASO's ARM calls"
  arm_calls "$subscription"
  if [ -n "${WITH_COGNITIVE_OPERATOR:-}" ]; then
    echo "== at rest: cognitive-operator's ARM calls"
    arm_calls "$co_subscription"
  fi
  echo "Kubernetes writes at rest (both operators and the API server's own):"
  kube_writes_between "$run/kube-writes-rest-0" "$run/kube-writes-rest-1"
  echo "ASO: $(process_usage "$aso_pid")${co_pid:+; cognitive-operator: $(process_usage "$co_pid")}"
fi
# The writes (anything but GET) of one subscription in the request log, the drift's own left out:
# method, status, path kind, body size (the body as logged, compact JSON) and its fields.
arm_writes() { # subscription
  jq -r --arg sub "$1" '.[] | select(.path | contains($sub)) | select(.method != "GET")
    | select((.caller | tostring) | contains("drift-identity") | not)
    | "\(.method) \(.status) \(.path | sub("/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.CognitiveServices/"; "")) "
      + (if .requestBody == null then "no body" else "\(.requestBody | tojson | length) bytes: "
      + ([.requestBody | paths(scalars) | map(tostring) | join(".")] | join(" ")) end)' \
    "$run/emulator-requests.json"
}
arm_url() { # subscription group account
  echo "$emulator_http/subscriptions/$1/resourceGroups/$2/providers/Microsoft.CognitiveServices/accounts/$3?api-version=2025-06-01"
}
# DRIFT=1: one tag value changed in Azure as another client would (ARM GET, then PATCH of the
# whole tag map with bench=drifted), then DRIFT_SECONDS of each operator's resyncs.
if [ -n "${DRIFT:-}" ]; then
  drift_token=$(curl -sf -H "X-IDENTITY-HEADER: $identity_header" \
    "$emulator_http/_emulator/msi/token?api-version=2019-08-01&resource=https://management.azure.com/&client_id=drift-identity" |
    jq -r .access_token)
  curl -s -X DELETE "$emulator_http/_emulator/requests" >/dev/null
  drift_one() { # subscription group account
    local tags
    tags=$(curl -sf -H "Authorization: Bearer $drift_token" "$(arm_url "$@")" | jq -c '{tags: ((.tags // {}) + {bench: "drifted"})}')
    curl -sf -X PATCH -H "Authorization: Bearer $drift_token" -H 'content-type: application/json' -d "$tags" \
      "$(arm_url "$@")" >/dev/null
    echo "drifted $3: PATCH $tags"
  }
  for i in $(seq "$accounts"); do
    drift_one "$subscription" aso-rg "aso-account-$i"
    [ -z "${WITH_COGNITIVE_OPERATOR:-}" ] || drift_one "$co_subscription" co-rg "co-account-$i"
  done
  sleep "${DRIFT_SECONDS:-100}"
  # The drift's own GET and PATCH (caller drift-identity) are kept in emulator-requests-drift.json.
  curl -s "$emulator_http/_emulator/requests" >"$run/emulator-requests-drift.json"
  jq '[.[] | select((.caller | tostring) | contains("drift-identity") | not)]' \
    "$run/emulator-requests-drift.json" >"$run/emulator-requests.json"
  echo "== drift, then ${DRIFT_SECONDS:-100} s (resync ${ASO_SYNC_PERIOD:-1h}): ASO's ARM calls, in order"
  jq -r --arg sub "$subscription" '.[] | select(.path | contains($sub)) | "  \(.method) \(.status) \(.path | sub("/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.CognitiveServices/"; ""))"' \
    "$run/emulator-requests.json"
  echo "ASO's writes:"; arm_writes "$subscription"
  if [ -n "${WITH_COGNITIVE_OPERATOR:-}" ]; then
    echo "== drift: cognitive-operator's ARM calls, in order"
    jq -r --arg sub "$co_subscription" '.[] | select(.path | contains($sub)) | "  \(.method) \(.status) \(.path | sub("/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.CognitiveServices/"; ""))"' \
      "$run/emulator-requests.json"
    echo "cognitive-operator's writes:"; arm_writes "$co_subscription"
  fi
  echo "the drifted accounts' tags now:"
  for i in $(seq "$accounts"); do
    echo "  aso-account-$i $(curl -sf -H "Authorization: Bearer $drift_token" "$(arm_url "$subscription" aso-rg "aso-account-$i")" | jq -c .tags)"
    [ -z "${WITH_COGNITIVE_OPERATOR:-}" ] ||
      echo "  co-account-$i $(curl -sf -H "Authorization: Bearer $drift_token" "$(arm_url "$co_subscription" co-rg "co-account-$i")" | jq -c .tags)"
  done
fi
# DELETE_PROVISIONED=1: the account objects deleted, then each subscription's billing meter.
billing_of() { # subscription
  jq -c --arg sub "$1" '[.deployments[] | select(.id | contains($sub))] |
    {billingCapacity: (map(select(.billing) | .capacity) | add // 0),
     deployments: map({name: (.id | split("/") | .[-3] + "/" + .[-1]), sku, capacity, billing, deleted, accountSoftDeleted})}' \
    "$run/billing.json"
}
if [ -n "${DELETE_PROVISIONED:-}" ]; then
  curl -s "$emulator_http/_emulator/billing" >"$run/billing.json"
  echo "== billing before the deletes: ASO $(billing_of "$subscription")"
  [ -z "${WITH_COGNITIVE_OPERATOR:-}" ] || echo "   cognitive-operator $(billing_of "$co_subscription")"
  curl -s -X DELETE "$emulator_http/_emulator/requests" >/dev/null
  delete_started=$(date +%s.%N)
  "$k8s/kubectl" delete -n aso accounts.cognitiveservices.azure.com --all --wait=false
  [ -z "${WITH_COGNITIVE_OPERATOR:-}" ] ||
    "$k8s/kubectl" delete -n co cognitiveservicesaccounts.cognitive-operator.dev --all --wait=false
  "$k8s/kubectl" wait --for=delete --timeout=300s -n aso accounts.cognitiveservices.azure.com --all >/dev/null 2>&1 ||
    echo "ASO's accounts NOT gone in 300 s"
  echo "ASO's Account objects gone after $(echo "$(date +%s.%N) - $delete_started" | bc) s"
  if [ -n "${WITH_COGNITIVE_OPERATOR:-}" ]; then
    "$k8s/kubectl" wait --for=delete --timeout=300s -n co cognitiveservicesaccounts.cognitive-operator.dev --all \
      >/dev/null 2>&1 || echo "cognitive-operator's accounts NOT gone in 300 s"
    echo "cognitive-operator's account objects gone after $(echo "$(date +%s.%N) - $delete_started" | bc) s"
  fi
  sleep "${DELETE_SETTLE_SECONDS:-30}"
  curl -s "$emulator_http/_emulator/requests" >"$run/emulator-requests.json"
  curl -s "$emulator_http/_emulator/billing" >"$run/billing.json"
  curl -s "$emulator_http/_emulator/state" >"$run/state-after-delete.json"
  echo "== ASO: ARM calls from the delete on, in order:"
  jq -r --arg sub "$subscription" '.[] | select(.path | contains($sub)) | "  \(.method) \(.status) \(.path | sub("/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.CognitiveServices/"; ""))"' \
    "$run/emulator-requests.json" | uniq -c
  echo "billing after: $(billing_of "$subscription")"
  echo "Deployment objects left in namespace aso: $("$k8s/kubectl" get -n aso deployments.cognitiveservices.azure.com -o name | tr '\n' ' ')"
  if [ -n "${WITH_COGNITIVE_OPERATOR:-}" ]; then
    echo "== cognitive-operator: ARM calls from the delete on, in order:"
    jq -r --arg sub "$co_subscription" '.[] | select(.path | contains($sub)) | "  \(.method) \(.status) \(.path | sub("/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.CognitiveServices/"; ""))"' \
      "$run/emulator-requests.json" | uniq -c
    echo "billing after: $(billing_of "$co_subscription")"
    echo "Deployment objects left in namespace co: $("$k8s/kubectl" get -n co cognitiveservicesdeployments.cognitive-operator.dev -o name | tr '\n' ' ')"
  fi
  echo "soft-deleted accounts: $(jq -c '[.deletedAccounts[]? | .id // .name]' "$run/state-after-delete.json")"
fi
echo "connections to the proxy trap (must be 0): $(wc -l <"$run/proxy-trap.log")"
echo "ASO log lines at error level: $(grep -c '"level":"error"\|^E[0-9]' "$run/aso.log" || true)"
