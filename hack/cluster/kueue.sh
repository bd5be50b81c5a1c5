#!/usr/bin/env bash
# Kueue on the local plane, for the Kueue tests: the binary build.sh made, run as a
# process on 127.0.0.1 (as the plane's own components are), its CRDs from its own
# manifests, its webhooks registered with the apiserver by URL. The plane must be up
# (cluster.sh up); `cluster.sh down` stops Kueue too.
#
#   kueue.sh up [--manage-jobs-without-queue-name]   start it (again, with these settings)
#   kueue.sh down                                    stop it and remove its webhooks (its
#                                                    CRDs stay, as after `helm uninstall`)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${JOBLINE_CACHE:-$HOME/.cache/jobline}"
state="$cache/cluster/kueue"
kubeconfig="$cache/cluster/kubeconfig"
kueue_bin="$cache/kueue-$KUEUE_VERSION/bin/kueue"
kubectl_bin="$cache/$CLUSTER_CACHE_KEY/bin/kubectl"
python="${JOBLINE_PYTHON:-$repo/.venv/bin/python}"
pid_file="$state/kueue.pid"
# Kueue reads its metrics certificate from this fixed path whenever its own certificate
# management is off (cmd/kueue/main.go), so it is written there too.
metrics_certs=/etc/kueue/metrics/certs
export GOTOOLCHAIN=local

kubectl() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }
say() { echo "==> $*" >&2; }

running() { [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A CA and a serving certificate for 127.0.0.1: the apiserver calls the webhooks by URL.
make_certs() {
  local dir="$state/certs"
  [[ -f "$dir/tls.crt" ]] && return
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=jobline-kueue-ca" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' >"$dir/san.ext"
  openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 365 -extfile "$dir/san.ext" -out "$dir/tls.crt" 2>/dev/null
}

write_config() {
  local manage="$1" webhook_port="$2" health_port="$3"
  cat >"$state/config.yaml" <<EOF
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
health:
  healthProbeBindAddress: 127.0.0.1:$health_port
metrics:
  bindAddress: "0"
webhook:
  host: 127.0.0.1
  port: $webhook_port
  certDir: $state/certs
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
manageJobsWithoutQueueName: $manage
integrations:
  frameworks: ["batch/job"]
EOF
}

up() {
  [[ -x "$kueue_bin" ]] || "$here/build.sh" >&2
  [[ -f "$kubeconfig" ]] || { say "the local plane is not up: run hack/cluster/cluster.sh up"; exit 1; }
  local manage=false
  [[ "${1:-}" == --manage-jobs-without-queue-name ]] && manage=true
  stop_process
  mkdir -p "$state/logs"
  make_certs
  mkdir -p "$metrics_certs"
  cp "$state/certs/tls.crt" "$state/certs/tls.key" "$metrics_certs/"
  local module webhook_port health_port
  module="$(cd "$here/kueue" && go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)"
  kubectl apply --server-side -f "$module/config/components/crd/bases" >/dev/null
  kubectl wait --for=condition=Established -f "$module/config/components/crd/bases" --timeout=60s >/dev/null
  kubectl create namespace kueue-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  webhook_port="$(free_port)"
  health_port="$(free_port)"
  write_config "$manage" "$webhook_port" "$health_port"
  KUBECONFIG="$kubeconfig" NAMESPACE=kueue-system "$kueue_bin" --config "$state/config.yaml" \
    --feature-gates=VisibilityOnDemand=false >>"$state/logs/kueue.log" 2>&1 &
  echo $! >"$pid_file"
  local _
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$health_port/readyz" >/dev/null 2>&1 && break
    running || { tail -20 "$state/logs/kueue.log" >&2; say "Kueue did not start"; exit 1; }
    sleep 0.3
  done
  "$python" "$here/kueue_webhooks.py" "$module/config/components/webhook/manifests.yaml" \
    "https://127.0.0.1:$webhook_port" "$state/certs/ca.crt" | kubectl apply -f - >/dev/null
  say "Kueue $KUEUE_VERSION on 127.0.0.1:$webhook_port (manageJobsWithoutQueueName: $manage); log: $state/logs/kueue.log"
}

stop_process() {
  if running; then
    kill "$(cat "$pid_file")" 2>/dev/null || true
    local _
    for _ in $(seq 50); do running || break; sleep 0.1; done
  fi
}

down() {
  stop_process
  if [[ -f "$kubeconfig" ]] && kubectl get --raw /readyz >/dev/null 2>&1; then
    kubectl delete mutatingwebhookconfiguration jobline-kueue --ignore-not-found >/dev/null
    kubectl delete validatingwebhookconfiguration jobline-kueue --ignore-not-found >/dev/null
    # Without Kueue nothing removes its finalizers: the namespaces of Workloads and
    # LocalQueues, and the CRDs, could not be deleted.
    local kind object ns
    for kind in workloads clusterqueues localqueues resourceflavors; do
      for object in $(kubectl get "$kind.kueue.x-k8s.io" -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}' 2>/dev/null); do
        ns="${object%%/*}"
        kubectl ${ns:+-n "$ns"} patch "$kind.kueue.x-k8s.io" "${object#*/}" --type=merge \
          -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
      done
    done
  fi
  rm -rf "$state" /etc/kueue
  say "Kueue stopped; its webhooks removed"
}

case "${1:-}" in
up) shift; up "$@" ;;
down) down ;;
stop) stop_process ;; # cluster.sh down: the plane goes with everything in it
*)
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
