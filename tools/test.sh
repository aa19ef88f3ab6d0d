#!/usr/bin/env bash
# The whole test suite, the real-control-plane tests included: builds kube-apiserver,
# kube-controller-manager, kubectl, etcd, helm and kstatus-judge from pinned Go modules (or finds
# them in their cache: seconds), then runs `cargo test` with the ignored tests included.
# Extra arguments go to cargo test, e.g. `bash tools/test.sh --test e2e -- --nocapture`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The binary as the container image builds it (no emulator), for tests/image_binary.rs; copied
# aside, since the test build below rebuilds debug/cognitive-operator with the defaults. The
# target directory is cargo's (CARGO_TARGET_DIR or a config may move it from ./target).
cargo build --quiet --no-default-features --bin cognitive-operator
target_dir=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
if [ -z "$target_dir" ]; then
  echo "cargo metadata names no target_directory" >&2
  exit 1
fi
mkdir -p "$target_dir/image-binary"
cp "$target_dir/debug/cognitive-operator" "$target_dir/image-binary/cognitive-operator"
COGNITIVE_OPERATOR_IMAGE_BINARY=$target_dir/image-binary/cognitive-operator
export COGNITIVE_OPERATOR_IMAGE_BINARY

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<'MSG'
!!! ------------------------------------------------------------------------------------------
!!! Go is not installed: the real-control-plane tests (tests/e2e.rs) and the helm/kubectl
!!! chart tests CANNOT run and are SKIPPED. Install Go 1.26 and run this script again.
!!! ------------------------------------------------------------------------------------------
MSG
  cargo test "$@"
  # Needs no Go: the image's binary was built above.
  exec cargo test --test image_binary -- --ignored
fi

KUBEBUILDER_ASSETS=$(bash tools/k8s/build.sh)
export KUBEBUILDER_ASSETS
echo "control plane binaries: $KUBEBUILDER_ASSETS" >&2
# --include-ignored goes to the test binaries: after the caller's own `--` if there is one.
cargo_args=() test_args=()
seen_separator=false
for arg in "$@"; do
  if [ "$seen_separator" = false ] && [ "$arg" = "--" ]; then
    seen_separator=true
  elif [ "$seen_separator" = true ]; then
    test_args+=("$arg")
  else
    cargo_args+=("$arg")
  fi
done
# (The ${a[@]+...} form keeps an empty array legal under `set -u` in bash before 4.4 too.)
cargo test ${cargo_args[@]+"${cargo_args[@]}"} -- --include-ignored ${test_args[@]+"${test_args[@]}"}

# The emulator answers as recorded Azure does unless ARM_EMULATOR_PROFILE says otherwise; the
# contract's other forms (every write a long-running operation) are Azure's to use too, so the
# suites of the engine, the ARM client, the controller and the CLI run again under them. Only for the whole
# suite: a caller naming tests of their own ran what they asked for.
if [ $# -eq 0 ]; then
  echo "== again with ARM_EMULATOR_PROFILE=long-running: engine, deployments, arm_client, cli, controller_reconcile" >&2
  ARM_EMULATOR_PROFILE=long-running cargo test --test engine --test deployments \
    --test arm_client --test cli --test controller_reconcile
fi
