#!/usr/bin/env bash
# Builds the local control plane from the pinned Go modules in hack/cluster/*/:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet and
# kube-proxy (for the real node), etcd, kwok, netbridge (node.sh),
# kwokctl, helm for the chart tests, the Versity S3 gateway that archives run logs,
# Kueue for the Kueue tests, and the real node's containerd, containerd-shim-runc-v2, ctr and runc.
# Binaries are cached outside the checkout, keyed by version,
# so every clone on this machine shares one build.
#
# The first build compiles several thousand packages and takes 15-30 minutes
# on 2 cores; it prints "[done/total] package" as it goes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
bin_dir="${JOBLINE_CACHE:-$HOME/.cache/jobline}/$CLUSTER_CACHE_KEY/bin"
helm_bin_dir="${JOBLINE_CACHE:-$HOME/.cache/jobline}/helm-$HELM_VERSION/bin"
store_bin_dir="${JOBLINE_CACHE:-$HOME/.cache/jobline}/versitygw-$STORE_VERSION/bin"
runtime_bin_dir="${JOBLINE_CACHE:-$HOME/.cache/jobline}/$RUNTIME_CACHE_KEY/bin"
kueue_bin_dir="${JOBLINE_CACHE:-$HOME/.cache/jobline}/kueue-$KUEUE_VERSION/bin"

# [GROUP_TAGS=TAGS] build_group NAME MODULE_DIR BIN_DIR LDFLAGS OUTPUT=PACKAGE...
# Compiles the packages with `go build -v`, turning its package lines into a
# progress counter, then links each binary. Skips binaries already cached.
# The build tags are $BUILD_TAGS unless GROUP_TAGS is given.
build_group() {
  local name="$1" module_dir="$2" bin_dir="$3" ldflags="$4" tags="${GROUP_TAGS-$BUILD_TAGS}"
  shift 4
  mkdir -p "$bin_dir"
  local missing=() pair
  for pair in "$@"; do
    [[ -x "$bin_dir/${pair%%=*}" ]] || missing+=("$pair")
  done
  if ((${#missing[@]} == 0)); then
    echo "==> $name: cached in $bin_dir"
    return
  fi
  local pkgs=() total
  for pair in "${missing[@]}"; do pkgs+=("${pair#*=}"); done
  cd "$module_dir"
  echo "==> $name: downloading modules"
  go mod download
  total=$(go list -deps -tags "$tags" "${pkgs[@]}" | wc -l)
  echo "==> $name: compiling $total packages (first build: many minutes on 2 cores)"
  local start=$SECONDS
  # One `go build` of all packages warms the build cache in parallel; the
  # per-binary links below then reuse it.
  go build -v -trimpath -tags "$tags" -o /dev/null "${pkgs[@]}" 2>&1 |
    awk -v total="$total" -v name="$name" '
      { n++; if (n % 25 == 0 || n == total) printf "    [%d/%d] %s: %s\n", n, total, name, $0; fflush() }'
  for pair in "${missing[@]}"; do
    echo "    linking ${pair%%=*}"
    go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$bin_dir/${pair%%=*}.tmp" "${pair#*=}"
    mv "$bin_dir/${pair%%=*}.tmp" "$bin_dir/${pair%%=*}"
  done
  echo "==> $name: built in $((SECONDS - start)) s"
}

k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION"
  k8s_ldflags+=" -X $pkg.gitMajor=$(echo "${KUBERNETES_VERSION#v}" | cut -d. -f1)"
  k8s_ldflags+=" -X $pkg.gitMinor=$(echo "${KUBERNETES_VERSION#v}" | cut -d. -f2)"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean"
done

build_group "kubernetes $KUBERNETES_VERSION + etcd $ETCD_VERSION" "$here/k8s" "$bin_dir" "-s -w $k8s_ldflags" \
  kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
  kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
  kubectl=k8s.io/kubernetes/cmd/kubectl \
  kubelet=k8s.io/kubernetes/cmd/kubelet \
  kube-proxy=k8s.io/kubernetes/cmd/kube-proxy \
  etcd=go.etcd.io/etcd/server/v3

build_group "kwok $KWOK_VERSION" "$here/kwok" "$bin_dir" \
  "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBERNETES_VERSION#v}" \
  kwok=sigs.k8s.io/kwok/cmd/kwok \
  kwokctl=sigs.k8s.io/kwok/cmd/kwokctl

# helm is for the chart tests only; kept apart so that its version is its own key.
build_group "helm $HELM_VERSION" "$here/helm" "$helm_bin_dir" \
  "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  helm=helm.sh/helm/v3/cmd/helm

# The S3-compatible store for archived logs (Apache-2.0), its own key as well.
build_group "versitygw $STORE_VERSION" "$here/store" "$store_bin_dir" \
  "-s -w -X main.Version=$STORE_VERSION" \
  versitygw=github.com/versity/versitygw/cmd/versitygw

# Kueue, the batch queue that admits Jobs under quotas, for the Kueue tests (Apache-2.0);
# its version is its own key too. Started by hack/cluster/kueue.sh, not with the plane.
build_group "kueue $KUEUE_VERSION" "$here/kueue" "$kueue_bin_dir" \
  "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION" \
  kueue=sigs.k8s.io/kueue/cmd/kueue

# The real node's container runtime (Linux only), its own key too. containerd,
# its shim and ctr are pure Go, with upstream's tag; without cgo the btrfs
# snapshotter (cgo) is left out, as the node uses overlayfs. The shim keeps gRPC
# (upstream drops it with no_grpc, which containerd in the same `go build` cannot take).
if [[ "$(uname -s)" == Linux ]]; then
  # Before runc's build: on a fresh machine gcc, pkg-config and libseccomp-dev come from here.
  "$here/node.sh" packages
  GROUP_TAGS=urfave_cli_no_docs build_group "containerd $CONTAINERD_VERSION" "$here/runtime" "$runtime_bin_dir" \
    "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
    containerd=github.com/containerd/containerd/v2/cmd/containerd \
    containerd-shim-runc-v2=github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
    ctr=github.com/containerd/containerd/v2/cmd/ctr
  # runc needs cgo: its nsenter is C that runs before the Go runtime starts. With
  # upstream's seccomp tag (gcc, pkg-config, libseccomp-dev: node.env), since pods
  # may ask for the RuntimeDefault profile (the chart does); without its libpathrs
  # tag (no Debian package; runc falls back to pure Go). Its version is embedded.
  if command -v gcc >/dev/null && pkg-config --exists libseccomp 2>/dev/null; then
    CGO_ENABLED=1 GROUP_TAGS=seccomp,urfave_cli_no_docs build_group "runc $RUNC_VERSION" "$here/runtime" "$runtime_bin_dir" \
      "-s -w" \
      runc=github.com/opencontainers/runc
  else
    echo "==> runc $RUNC_VERSION: skipped, it needs gcc, pkg-config and libseccomp-dev; no real node without it"
  fi
fi

# netbridge is ours and small: rebuilt every time (Go's cache makes that instant),
# so a change to it never meets a stale binary.
(cd "$here/netbridge" && go build -trimpath -o "$bin_dir/netbridge" .)

echo "==> binaries ready in $bin_dir, $helm_bin_dir, $store_bin_dir, $kueue_bin_dir and $runtime_bin_dir"
