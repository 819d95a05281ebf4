#!/usr/bin/env bash
# The tools the chart's tests run, pinned and cached (tests/helm/, `make helm-check`):
#   helm and kubeconform, built with `go install` from the Go module proxy, and the
#   Kubernetes JSON schemas kubeconform validates against, generated offline by
#   scripts/k8s_schemas.py from the `k8s.io/kubernetes` module zips (api/openapi-spec/)
#   plus the ServiceMonitor CRD of the prometheus-operator module.
#
#   scripts/helm_tools.sh            install what is missing (quiet when all is there)
#   scripts/helm_tools.sh --print    print the tools.env the tests read
#
# Everything lands in $FALCONET_TOOLS_DIR (default ~/.cache/falconet/tools):
#   bin/helm-<v>, bin/kubeconform-<v>, k8s-schemas/v<k8s>-standalone-strict/*.json,
#   downloads/ (module zips, checked against their go.sum hashes), tools.env.
# A second run only checks that these exist (and that the schema generator did not change).
# Needs Go (https://go.dev/dl/, or /usr/local/go/bin/go) and python3 the first time.
# FALCONET_SKIP_HELM=1 skips all of it (the chart tests then skip with that reason).
set -euo pipefail

HELM_VERSION=v3.21.4
KUBECONFORM_VERSION=v0.7.0
# Kubernetes versions the chart is validated against, with the h1: hashes of their module
# zips (https://proxy.golang.org/sumdb/sum.golang.org/lookup/k8s.io/kubernetes@<v>)
K8S_VERSIONS=(1.30.14 1.33.13)
declare -A K8S_H1=(
  [1.30.14]="h1:MrlKXh9uhLIJpyxOeXhcndzRVSvwiV9iJ8NgH8nqPsg="
  [1.33.13]="h1:bmH31xUdSzeA5vk0wZAK9MZp11mdLuzUSeKk0qN3hPQ="
)
PROM_OPERATOR_VERSION=v0.85.0
PROM_OPERATOR_H1="h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s="
PROXY="${GOPROXY_URL:-https://proxy.golang.org}"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${FALCONET_TOOLS_DIR:-$HOME/.cache/falconet/tools}"
BIN="$TOOLS/bin"
SCHEMAS="$TOOLS/k8s-schemas"
DL="$TOOLS/downloads"
ENV_FILE="$TOOLS/tools.env"
HELM="$BIN/helm-$HELM_VERSION"
KUBECONFORM="$BIN/kubeconform-$KUBECONFORM_VERSION"
GENERATOR="$ROOT/scripts/k8s_schemas.py"

if [[ "${FALCONET_SKIP_HELM:-}" == "1" ]]; then
  exit 0
fi

say() { echo "helm-tools: $*" >&2; }

write_env() {
  local tmp="$ENV_FILE.tmp"
  {
    echo "HELM=$HELM"
    echo "KUBECONFORM=$KUBECONFORM"
    echo "SCHEMAS=$SCHEMAS"
    echo "K8S_VERSIONS=${K8S_VERSIONS[*]}"
    echo "HELM_VERSION=$HELM_VERSION"
    echo "KUBECONFORM_VERSION=$KUBECONFORM_VERSION"
  } >"$tmp"
  mv "$tmp" "$ENV_FILE"
}

if [[ "${1:-}" == "--print" ]]; then
  write_env
  cat "$ENV_FILE"
  exit 0
fi

generator_sum() { sha256sum "$GENERATOR" | cut -d' ' -f1; }

schemas_current() {
  local v="$1" dir="$SCHEMAS/v$1-standalone-strict"
  [[ -f "$dir/deployment-apps-v1.json" && -f "$dir/.generator" ]] &&
    [[ "$(cat "$dir/.generator")" == "$(generator_sum)" ]]
}

missing=()
[[ -x "$HELM" ]] || missing+=(helm)
[[ -x "$KUBECONFORM" ]] || missing+=(kubeconform)
for v in "${K8S_VERSIONS[@]}"; do
  schemas_current "$v" || missing+=("schemas-$v")
done
if (( ${#missing[@]} == 0 )); then
  [[ -f "$ENV_FILE" ]] || write_env
  exit 0
fi

GO="$(command -v go || true)"
[[ -n "$GO" || ! -x /usr/local/go/bin/go ]] || GO=/usr/local/go/bin/go
need_go=0
for m in "${missing[@]}"; do [[ "$m" == helm || "$m" == kubeconform ]] && need_go=1; done
if (( need_go )) && [[ -z "$GO" ]]; then
  {
    echo "helm-tools: Go is needed once to build helm $HELM_VERSION and kubeconform $KUBECONFORM_VERSION"
    echo "  install Go >= 1.24 (https://go.dev/dl/; Debian: apt-get install -y golang-go) and run again,"
    echo "  or set FALCONET_SKIP_HELM=1 to skip the Helm chart tests"
  } >&2
  exit 1
fi
command -v python3 >/dev/null 2>&1 || { say "python3 is needed to generate the Kubernetes schemas"; exit 1; }

mkdir -p "$BIN" "$SCHEMAS" "$DL"
started=$SECONDS

go_install() {  # module@version, final path, [ldflags]
  local pkg="$1" dest="$2" ldflags="${3:-}" gobin gocache
  gobin="$(mktemp -d "$TOOLS/.gobin.XXXXXX")"
  gocache="$(mktemp -d "$TOOLS/.gocache.XXXXXX")"
  say "building ${pkg##*/} with $("$GO" env GOVERSION) (once; a few minutes on 2 cores)"
  if ! env GOBIN="$gobin" GOCACHE="$gocache" GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
      "$GO" install -trimpath -ldflags="$ldflags" "$pkg" >"$gobin.log" 2>&1; then
    cat "$gobin.log" >&2
    rm -rf "$gobin" "$gocache" "$gobin.log"
    say "go install $pkg failed (is the Go module proxy reachable? GOPROXY=$("$GO" env GOPROXY))"
    exit 1
  fi
  mv "$gobin/$(basename "${pkg%@*}")" "$dest"
  rm -rf "$gobin" "$gocache" "$gobin.log"
}

fetch_zip() {  # module, version, file
  local module="$1" version="$2" out="$3"
  [[ -f "$out" ]] && return 0
  say "downloading $module@$version from $PROXY"
  curl -sS -fL --retry 3 -o "$out.part" "$PROXY/$module/@v/$version.zip" ||
    { say "cannot download $PROXY/$module/@v/$version.zip"; rm -f "$out.part"; exit 1; }
  mv "$out.part" "$out"
}

# what helm's own Makefile stamps in: its version, and the Kubernetes version it assumes
# without a cluster (`helm template`/`lint` without --kube-version; its client-go's, 1.36)
HELM_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in pkg/chartutil pkg/lint/rules; do
  HELM_LDFLAGS+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=36"
done
[[ -x "$HELM" ]] || go_install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "$HELM" "$HELM_LDFLAGS"
[[ -x "$KUBECONFORM" ]] || go_install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" "$KUBECONFORM"

po_zip="$DL/prometheus-operator-$PROM_OPERATOR_VERSION.zip"
for v in "${K8S_VERSIONS[@]}"; do
  schemas_current "$v" && continue
  zip="$DL/kubernetes-v$v.zip"
  fetch_zip k8s.io/kubernetes "v$v" "$zip"
  fetch_zip github.com/prometheus-operator/prometheus-operator "$PROM_OPERATOR_VERSION" "$po_zip"
  if ! python3 "$GENERATOR" --verify "$zip=${K8S_H1[$v]}" --verify "$po_zip=$PROM_OPERATOR_H1" \
      --kubernetes-zip "$zip" --version "$v" --out "$SCHEMAS" \
      --crd-json "$po_zip!jsonnet/prometheus-operator/servicemonitors-crd.json"; then
    rm -f "$zip" "$po_zip"   # a bad download is fetched again next time
    exit 1
  fi
  generator_sum >"$SCHEMAS/v$v-standalone-strict/.generator"
done

write_env
say "ready in $((SECONDS - started)) s: helm $HELM_VERSION, kubeconform $KUBECONFORM_VERSION, schemas of Kubernetes ${K8S_VERSIONS[*]} ($TOOLS)"
