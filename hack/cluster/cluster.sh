#!/usr/bin/env bash
# The local control plane: a real kube-apiserver, etcd, kube-controller-manager
# and kube-scheduler, with kwok standing in for kubelets, run by kwokctl from
# binaries built here (build.sh), and, where the machine allows it, a real node
# (node.sh: a kubelet with containerd), and an S3-compatible store for archived
# run logs (the Versity S3 gateway over a directory). Everything listens on
# 127.0.0.1 or inside the real node's network namespace.
#
#   cluster.sh up          start it, or reuse the running one; prints the kubeconfig path
#   cluster.sh down        stop every process it started and remove its state
#   cluster.sh status      exit 0 when it is up and serving
#   cluster.sh kubeconfig  print the kubeconfig path
#   cluster.sh audit-log   print the path of the apiserver's audit log
#   cluster.sh store-env   print the path of the store's settings (KEY=value lines)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=node.env
source "$here/node.env"

cache="${JOBLINE_CACHE:-$HOME/.cache/jobline}"
bin="$cache/$CLUSTER_CACHE_KEY/bin"
state="$cache/cluster" # the running cluster's files: kwok workdir, kubeconfig, logs
name=jobline
kubeconfig="$state/kubeconfig"
helper_pid="$state/sim-logs.pid"
supervisor_pid="$state/supervise.pid"
store_pid="$state/store.pid"
store_env="$state/store.env"
store_bin="$cache/versitygw-$STORE_VERSION/bin/versitygw"
store_bucket=jobline-logs
python="${JOBLINE_PYTHON:-$repo/.venv/bin/python}"
nodes=(jobline-node-1 jobline-node-2)
export KWOK_WORKDIR="$state/kwok" GOTOOLCHAIN=local
real_node=0 # set by up: 1 when node.sh can run the real node here

kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
kwokctl() { "$bin/kwokctl" --name "$name" "$@"; }
say() { echo "==> $*" >&2; }

serving() {
  [[ -f "$kubeconfig" ]] && kubectl get --raw /readyz >/dev/null 2>&1
}

helper_running() {
  [[ -f "$helper_pid" ]] && kill -0 "$(cat "$helper_pid")" 2>/dev/null
}

# The kwokctl configuration: our binaries, RBAC on, 127.0.0.1 only, and the
# Stages: kwok's own node and pod stages (a config holding any Stage replaces
# all of kwok's defaults) plus ours from sim-stages.yaml.
write_config() {
  local stages
  stages="$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage"
  {
    cat <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeAuthorization: true
  kubeAuditPolicy: $here/audit-policy.yaml
  kubeVersion: $KUBERNETES_VERSION
  etcdVersion: ${ETCD_VERSION#v}
  enableCRDs: [Logs]
  kubeApiserverBinary: $bin/kube-apiserver
  kubeControllerManagerBinary: $bin/kube-controller-manager
  kubeSchedulerBinary: $bin/kube-scheduler
  kubectlBinary: $bin/kubectl
  etcdBinary: $bin/etcd
  kwokControllerBinary: $bin/kwok
$(real_node_options)
componentsPatches:
# kwok acts only for its own nodes, never for the real node's pods.
- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false"}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
# Reach kwok's kubelet API (logs) by the node's 127.0.0.1 address, never by
# looking up the node's hostname in DNS.
- name: kube-apiserver
  extraArgs:
  - {key: kubelet-preferred-address-types, value: InternalIP}
# As OpenShift has it: setting blockOwnerDeletion on an ownerReference needs
# update on the owner's finalizers, so the chart's RBAC is tested under it.
  - {key: enable-admission-plugins, value: OwnerReferencesPermissionEnforcement}
$(real_node_apiserver_args)
---
# Pods with no Logs object of their own have an empty log.
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: empty-log
spec:
  logs:
  - logsFile: $state/logs/empty.log
EOF
    local f
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
      pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      echo "---"
      cat "$stages/$f"
    done
    echo "---"
    cat "$here/sim-stages.yaml"
  } >"$state/kwokctl.yaml"
}

# With the real node, the apiserver's certificate also names the addresses pods
# and the kubelet use.
real_node_options() {
  ((real_node)) || return 0
  echo "  kubeApiserverCertSANs: [$KUBERNETES_SERVICE_IP, $NODE_IP]"
}

# With the real node: pods find the apiserver at the node's address (netbridge
# relays it to 127.0.0.1), and the apiserver reaches kubelets through
# netbridge's egress socket, which dials the real kubelet inside the node's
# namespace and kwok's on 127.0.0.1.
real_node_apiserver_args() {
  ((real_node)) || return 0
  local pki="$KWOK_WORKDIR/clusters/$name/pki"
  cat >"$state/egress.yaml" <<EOF
apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport: {uds: {udsName: $state/egress.sock}}
EOF
  cat <<EOF
  - {key: advertise-address, value: $NODE_IP}
  - {key: service-cluster-ip-range, value: $SERVICE_CIDR}
  - {key: egress-selector-config-file, value: $state/egress.yaml}
  - {key: kubelet-client-certificate, value: $pki/admin.crt}
  - {key: kubelet-client-key, value: $pki/admin.key}
EOF
}

# Nodes are ours rather than `kwokctl scale node`, whose template gives them
# 192.0.2.x addresses: the apiserver reaches kwok's kubelet API (logs) at the
# node's address, which must be 127.0.0.1.
create_nodes() {
  local node
  for node in "${nodes[@]}"; do
    kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $node
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: $node, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
status:
  addresses:
  - {type: InternalIP, address: 127.0.0.1}
  - {type: Hostname, address: $node}
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
EOF
  done
  kubectl wait --for=condition=Ready node --all --timeout=120s >/dev/null
}

mark_and_serve_logs() {
  # Tells tests that pods here follow the sim.jobline.dev annotations.
  kubectl -n kube-public create configmap jobline-local-plane \
    --from-literal=simulation=sim.jobline.dev --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  helper_running && return
  "$python" "$here/sim_logs.py" --kubeconfig "$kubeconfig" --log-dir "$state/logs/pods" \
    >>"$state/sim-logs.log" 2>&1 &
  echo $! >"$helper_pid"
}

supervisor_running() {
  [[ -f "$supervisor_pid" ]] && kill -0 "$(cat "$supervisor_pid")" 2>/dev/null
}

# The controller-manager and the scheduler exit when they lose their Leases (an
# apiserver gone for more than ~10 s); started again as a kubelet restarts static pods.
supervise() {
  supervisor_running && return
  python3 "$here/supervise.py" "$KWOK_WORKDIR/clusters/$name" kube-controller-manager kube-scheduler \
    >>"$state/logs/supervise.log" 2>&1 &
  echo $! >"$supervisor_pid"
}

store_running() {
  [[ -f "$store_pid" ]] && kill -0 "$(cat "$store_pid")" 2>/dev/null
}

# The store that archives run logs: the Versity S3 gateway on a free port of
# 127.0.0.1, its buckets directories under $state/store, a root key made up here.
# Its settings go to $store_env in the variables the operator reads.
start_store() {
  store_running && return
  local port secret
  # Started again, it keeps its port: the real node's netbridge forwards to it.
  port="$(store_port)"
  [[ -n "$port" ]] ||
    port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  secret="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  mkdir -p "$state/store/$store_bucket"
  ROOT_ACCESS_KEY=jobline ROOT_SECRET_KEY="$secret" \
    "$store_bin" --port "127.0.0.1:$port" posix "$state/store" >>"$state/logs/store.log" 2>&1 &
  echo $! >"$store_pid"
  (
    umask 077 # it holds the key
    printf '%s\n' "JOBLINE_ARCHIVE_ENDPOINT=http://127.0.0.1:$port" \
      "JOBLINE_ARCHIVE_BUCKET=$store_bucket" "JOBLINE_ARCHIVE_REGION=us-east-1" \
      "AWS_ACCESS_KEY_ID=jobline" "AWS_SECRET_ACCESS_KEY=$secret" >"$store_env"
  )
  local _
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    store_running || { tail -5 "$state/logs/store.log" >&2; say "the log store did not start"; exit 1; }
    sleep 0.1
  done
  say "log store (versitygw $STORE_VERSION) on 127.0.0.1:$port, bucket $store_bucket; settings in $store_env"
}

store_port() {
  [[ -f "$store_env" ]] && sed -n 's|^JOBLINE_ARCHIVE_ENDPOINT=http://127.0.0.1:||p' "$store_env"
  return 0
}

stop_store() {
  if store_running; then
    kill "$(cat "$store_pid")" 2>/dev/null || true
  fi
}

# The real node, where this machine allows it; else one line saying why not.
check_real_node() {
  local why
  if why="$("$here/node.sh" supported)"; then
    real_node=1
  else
    say "no real node on this machine ($why): kwok's simulated nodes only"
  fi
}

start_real_node() {
  ((real_node)) || return 0
  say "starting the real node $NODE_NAME (kubelet, containerd, runc)"
  STORE_PORT="$(store_port)" "$here/node.sh" up "$kubeconfig"
  say "real node $NODE_NAME is Ready; pods choose it with the toleration and node selector $NODE_LABEL"
  say "pods there reach the log store at http://$NODE_IP:$NODE_STORE_PORT"
}

up() {
  "$here/build.sh" >&2 # stdout carries only the kubeconfig path
  mkdir -p "$state/logs"
  check_real_node
  if serving; then
    say "reusing the running local cluster"
    supervise
    mark_and_serve_logs
    start_store
    # A plane started with the real node gets it back if its processes went.
    if ((real_node)) && [[ -f "$state/egress.yaml" ]]; then start_real_node; fi
    echo "$kubeconfig"
    return
  fi
  if [[ -d "$KWOK_WORKDIR/clusters/$name" ]]; then
    say "a stopped or broken local cluster is left over; removing it"
    down
    mkdir -p "$state/logs"
  fi
  : >"$state/logs/empty.log"
  write_config
  say "starting the local cluster (Kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)"
  kwokctl create cluster --runtime binary --config "$state/kwokctl.yaml" \
    --kubeconfig "$kubeconfig" --wait 2m >"$state/kwokctl.log" 2>&1 || {
    tail -20 "$state/kwokctl.log" >&2
    say "kwokctl create cluster failed; full log: $state/kwokctl.log"
    exit 1
  }
  create_nodes
  supervise
  mark_and_serve_logs
  start_store
  start_real_node
  say "local cluster is up with ${#nodes[@]} kwok nodes$( ((real_node)) && echo " and the real node $NODE_NAME"); use: export KUBECONFIG=$kubeconfig"
  echo "$kubeconfig"
}

down() {
  if supervisor_running; then
    kill "$(cat "$supervisor_pid")" 2>/dev/null || true
  fi
  if helper_running; then
    kill "$(cat "$helper_pid")" 2>/dev/null || true
  fi
  stop_store
  "$here/kueue.sh" stop
  rm -rf /etc/kueue # written by kueue.sh
  if [[ -d "$state/node" || -e "/run/netns/$NODE_NETNS" ]]; then
    "$here/node.sh" down || true
  fi
  if [[ -d "$KWOK_WORKDIR/clusters/$name" ]]; then
    kwokctl delete cluster --kubeconfig "$kubeconfig" >/dev/null 2>&1 || true
  fi
  rm -rf "$state"
  say "local cluster stopped and removed"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) serving ;;
kubeconfig) echo "$kubeconfig" ;;
audit-log) echo "$KWOK_WORKDIR/clusters/$name/logs/audit.log" ;;
store-env) echo "$store_env" ;;
*)
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
