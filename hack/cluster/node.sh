#!/usr/bin/env bash
# The real node of the local plane: the kubelet, containerd and runc built from
# our pinned modules (build.sh), pods on a CNI bridge, kube-proxy; all in the
# network namespace $NODE_NETNS, joined to the host's loopback by netbridge.
# cluster.sh runs it; by hand:
#
#   node.sh supported          exit 0 when this machine can run it; else says why (one line)
#   node.sh packages           install the Debian packages it needs (and that build.sh's runc needs)
#   node.sh prepare            the namespace, its addresses, the host's blackhole routes
#   node.sh up KUBECONFIG      start netbridge, containerd, the kubelet, kube-proxy; wait for Ready
#   node.sh import ARCHIVE...  import OCI image archives into the node's containerd
#   node.sh down               stop all of it: containers, mounts, the namespace, the routes
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=node.env
source "$here/node.env"

cache="${JOBLINE_CACHE:-$HOME/.cache/jobline}"
bin="$cache/$CLUSTER_CACHE_KEY/bin"
runtime_bin="$cache/$RUNTIME_CACHE_KEY/bin"
state="$cache/cluster/node"
netns_path="/run/netns/$NODE_NETNS"
containerd_sock="$state/containerd/containerd.sock"
egress_sock="$cache/cluster/egress.sock"
export GOTOOLCHAIN=local

say() { echo "==> $*" >&2; }
in_ns() { nsenter --net="$netns_path" "$@"; }
# Without containerd 2's warning on every call that cgroup v1 is deprecated.
ctr() { CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1 "$runtime_bin/ctr" --address "$containerd_sock" -n k8s.io "$@"; }
running() { [[ -f "$state/$1.pid" ]] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

# start NAME COMMAND...: runs it in the background, logging to $state/NAME.log.
# COMMAND must exec its program (nsenter does), so that the pid is the program's.
start() {
  local name="$1"
  shift
  running "$name" && return
  "$@" >>"$state/$name.log" 2>&1 &
  echo $! >"$state/$name.pid"
}

stop() {
  local name="$1" pid
  running "$name" || { rm -f "$state/$name.pid"; return 0; }
  pid="$(cat "$state/$name.pid")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$state/$name.pid"
}

missing_tools() {
  local missing=() tool
  for tool in iptables conntrack nsenter ip gcc; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || missing+=(cni-plugins)
  [[ -x /bin/busybox ]] && /bin/busybox --list >/dev/null 2>&1 || missing+=(busybox-static)
  echo "${missing[*]}"
}

# Installs $NODE_PACKAGES from Debian where something is missing, on Linux as root.
# build.sh runs it before building runc, which needs gcc, pkg-config and libseccomp-dev:
# on a fresh machine the first `make run` must build runc, not skip it.
install_packages() {
  [[ "${JOBLINE_REAL_NODE:-1}" != 0 && "$(uname -s)" == Linux && "$(id -u)" == 0 ]] || return 0
  command -v apt-get >/dev/null || return 0
  local package missing=()
  # shellcheck disable=SC2086
  for package in $NODE_PACKAGES; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  say "installing the real node's packages from Debian: ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1 ||
    say "could not install ${missing[*]} (apt-get failed); the real node needs them"
}

supported() {
  [[ "${JOBLINE_REAL_NODE:-1}" != 0 ]] || { echo "JOBLINE_REAL_NODE=0"; return 1; }
  [[ "$(uname -s)" == Linux ]] || { echo "not Linux"; return 1; }
  [[ "$(id -u)" == 0 ]] || { echo "not root (the kubelet and containerd need root)"; return 1; }
  [[ -d /sys/fs/cgroup/memory || -f /sys/fs/cgroup/cgroup.controllers ]] ||
    { echo "no memory cgroup"; return 1; }
  install_packages
  local missing
  missing="$(missing_tools)"
  [[ -z "$missing" ]] || { echo "missing: $missing"; return 1; }
  [[ -x "$bin/kubelet" && -x "$bin/kube-proxy" && -x "$bin/netbridge" ]] ||
    { echo "kubelet, kube-proxy or netbridge not built (hack/cluster/build.sh)"; return 1; }
  local tool
  for tool in containerd containerd-shim-runc-v2 ctr runc; do
    [[ -x "$runtime_bin/$tool" ]] ||
      { echo "$tool not built (hack/cluster/build.sh; runc needs gcc, pkg-config and libseccomp-dev)"; return 1; }
  done
}

# The namespace holds every address of the node; the host blackholes their ranges.
prepare() {
  mkdir -p "$state"
  [[ -e "$netns_path" ]] || ip netns add "$NODE_NETNS"
  in_ns ip link set lo up
  # On the namespace's loopback interface: kernels without the dummy module have it.
  in_ns ip addr replace "$NODE_IP/32" dev lo
  in_ns sysctl -qw net.ipv4.ip_forward=1
  local range
  for range in "$NODE_RANGE" "$POD_RANGE" "$SERVICE_CIDR"; do
    ip route replace blackhole "$range"
  done
}

write_configs() {
  local kubeconfig="$1" pki="$2" port="$3"
  mkdir -p "$state"/{containerd,cni/net.d,cni/ipam,kubelet,pod-logs}
  # containerd 2.4's own config version (`containerd config default`).
  cat >"$state/containerd/config.toml" <<EOF
version = 4
root = "$state/containerd/root"
state = "$state/containerd/state"
[plugins."io.containerd.server.v1.grpc"]
  address = "$containerd_sock"
# Next to it, not the default /run/containerd/containerd.sock.ttrpc (the machine's own containerd).
[plugins."io.containerd.server.v1.ttrpc"]
  address = "$containerd_sock.ttrpc"
# On by default in containerd 2: it would listen on /var/run/nri/nri.sock, outside the node's files.
[plugins."io.containerd.nri.v1.nri"]
  disable = true
[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "registry.k8s.io/pause:3.10.1"
[plugins."io.containerd.cri.v1.runtime"]
  # Our processes may not lower oom_score_adj (no CAP_SYS_RESOURCE here).
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$state/cni/net.d"
  # Our shim and runc, never a machine's own.
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    runtime_path = "$runtime_bin/containerd-shim-runc-v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = "$runtime_bin/runc"
EOF
  cat >"$state/cni/net.d/10-jobline.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "jobline",
  "plugins": [
    {"type": "bridge", "bridge": "jl-cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$state/cni/ipam",
              "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # The kubelet and kube-proxy reach the apiserver through netbridge, at the node's address.
  local server="https://$NODE_IP:$port"
  "$bin/kubectl" config set-cluster local --server "$server" --certificate-authority "$pki/ca.crt" \
    --embed-certs --kubeconfig "$state/kubeconfig" >/dev/null
  "$bin/kubectl" config set-credentials node --client-certificate "$pki/admin.crt" \
    --client-key "$pki/admin.key" --embed-certs --kubeconfig "$state/kubeconfig" >/dev/null
  "$bin/kubectl" config set-context local --cluster local --user node --kubeconfig "$state/kubeconfig" >/dev/null
  "$bin/kubectl" config use-context local --kubeconfig "$state/kubeconfig" >/dev/null
  cat >"$state/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$containerd_sock
podLogsDir: $state/pod-logs
# Small, so that the tests see the kubelet rotate a long log.
containerLogMaxSize: 1Mi
containerLogMaxFiles: 3
registerWithTaints: [{key: ${NODE_TAINT%%=*}, value: "$(v="${NODE_TAINT#*=}"; echo "${v%%:*}")", effect: ${NODE_TAINT##*:}}]
# No DNS inside the plane: pods reach the apiserver by the kubernetes Service's IP.
resolvConf: ""
# The machine is shared: evict nothing because of others' disk or memory use.
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
EOF
  cat >"$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: $NODE_NAME
clientConnection: {kubeconfig: $state/kubeconfig}
clusterCIDR: $POD_RANGE
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Reply traffic of pod-to-Service-to-pod on one bridge goes back through the node.
iptables: {masqueradeAll: true}
# Leave the host's conntrack sysctls alone.
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

# The node changes machine-wide sysctls as every kubelet does (vm.overcommit_memory,
# kernel.panic, ...); keep the values it found so that `down` puts them back.
save_sysctls() {
  [[ -f "$state/sysctl.saved" ]] && return
  local key
  for key in vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
    echo "$key=$(sysctl -n "$key")"
  done >"$state/sysctl.saved"
}

import_images() {
  local archive
  for archive in "$@"; do
    ctr images import "$archive" >/dev/null
  done
}

up() {
  local kubeconfig="$1"
  local port pki
  port="$("$bin/kubectl" --kubeconfig "$kubeconfig" config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
  port="${port##*:}"
  pki="$cache/cluster/kwok/clusters/jobline/pki"
  prepare
  write_configs "$kubeconfig" "$pki" "$port"
  # The log store (STORE_PORT, from cluster.sh) too: an in-cluster operator archives there.
  local forwards=(-forward "$NODE_IP:$port=127.0.0.1:$port")
  [[ -n "${STORE_PORT:-}" ]] && forwards+=(-forward "$NODE_IP:$NODE_STORE_PORT=127.0.0.1:$STORE_PORT")
  start netbridge "$bin/netbridge" -netns "$netns_path" "${forwards[@]}" \
    -egress "$egress_sock" -netns-cidr "$NODE_RANGE" -netns-cidr "$POD_RANGE"
  # Our runtime's directory first on PATH, for what containerd and its shims look up there.
  start containerd nsenter --net="$netns_path" env PATH="$runtime_bin:$PATH" \
    "$runtime_bin/containerd" --config "$state/containerd/config.toml"
  for _ in $(seq 100); do [[ -S "$containerd_sock" ]] && break; sleep 0.1; done
  [[ -S "$containerd_sock" ]] || { tail -5 "$state/containerd.log" >&2; say "containerd did not start"; exit 1; }
  say "building and importing the node's images (pause, busybox)"
  local archives
  archives="$(python3 "$here/images.py" "$cache/images" | cut -d' ' -f1)"
  # The operator's image too, when `make image` has built it.
  [[ -f "$cache/images/jobline.tar" ]] && archives+=" $cache/images/jobline.tar"
  # shellcheck disable=SC2086
  import_images $archives
  save_sysctls
  start kubelet nsenter --net="$netns_path" "$bin/kubelet" --config "$state/kubelet.yaml" --kubeconfig "$state/kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$state/kubelet" \
    --node-labels "$NODE_LABEL,kubernetes.io/os=linux"
  start kube-proxy nsenter --net="$netns_path" "$bin/kube-proxy" --config "$state/kube-proxy.yaml"
  local ready=""
  for _ in $(seq 120); do
    ready="$("$bin/kubectl" --kubeconfig "$kubeconfig" get node "$NODE_NAME" \
      -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
    [[ "$ready" == True ]] && break
    sleep 1
  done
  if [[ "$ready" != True ]]; then
    tail -15 "$state/kubelet.log" >&2
    say "the real node did not become Ready; kubelet log: $state/kubelet.log"
    exit 1
  fi
}

# Containers first (their network namespaces and mounts), then the daemons,
# then what is left mounted under $state, then the namespace and the routes.
down() {
  stop kube-proxy
  stop kubelet
  if running containerd; then
    local task pid
    for task in $(ctr tasks ls -q 2>/dev/null); do
      pid="$(ctr tasks ls 2>/dev/null | awk -v t="$task" '$1 == t {print $2}')"
      # A sandbox's network namespace is pinned under /run/netns/cni-*; remove the pin.
      if [[ -n "$pid" && -e "/proc/$pid/ns/net" ]]; then
        local pin inode
        inode="$(stat -L -c %i "/proc/$pid/ns/net")"
        for pin in /run/netns/cni-*; do
          [[ -e "$pin" && "$(stat -L -c %i "$pin" 2>/dev/null)" == "$inode" ]] && echo "$pin" >>"$state/netns-pins"
        done
      fi
      ctr tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
    done
    sleep 1
    for task in $(ctr tasks ls -q 2>/dev/null); do ctr tasks delete -f "$task" >/dev/null 2>&1 || true; done
  fi
  stop containerd
  stop netbridge
  local mount
  if [[ -f "$state/netns-pins" ]]; then
    while read -r mount; do umount "$mount" 2>/dev/null && rm -f "$mount"; done <"$state/netns-pins"
  fi
  if [[ -d "$state" ]]; then
    findmnt -rn -o TARGET | grep "^$state/" | sort -r | while read -r mount; do
      umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true
    done
  fi
  # The kubelet's QoS cgroups, once their pods are gone.
  find /sys/fs/cgroup/*/kubepods -depth -type d -exec rmdir {} + 2>/dev/null || true
  if [[ -f "$state/sysctl.saved" ]]; then
    sysctl -q -p "$state/sysctl.saved" >/dev/null 2>&1 || true
  fi
  [[ -e "$netns_path" ]] && ip netns del "$NODE_NETNS" 2>/dev/null || true
  local range
  for range in "$NODE_RANGE" "$POD_RANGE" "$SERVICE_CIDR"; do
    ip route del blackhole "$range" 2>/dev/null || true
  done
  rm -f "$egress_sock"
}

case "${1:-}" in
supported) supported ;;
packages) install_packages ;;
prepare) prepare ;;
up) up "$2" ;;
import) shift; import_images "$@" ;;
down) down ;;
*)
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
