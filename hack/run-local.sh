#!/usr/bin/env bash
# `make run`: Jobline on the local control plane (or on $KUBECONFIG's cluster),
# running the hello example from start to finish.
#   1. start the local control plane, unless KUBECONFIG is set (first time: a
#      5-30 minute build, with progress)
#   2. install the CRDs
#   3. start the operator and the server (Jobs API and dashboard) in the background
#      (each reused when already running)
#   4. apply examples/hello/ and wait for its run to finish, then show it
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${JOBLINE_CACHE:-$HOME/.cache/jobline}"
operator_pid="$cache/operator.pid"
operator_log="$cache/operator.log"
server_pid="$cache/server.pid"
server_log="$cache/server.log"
server_port="${JOBLINE_SERVER_PORT:-8080}"
jobline="$repo/.venv/bin/jobline"
say() { echo "==> $*" >&2; }

KUBECONFIG_GIVEN="${KUBECONFIG:-}"
if [[ -z "${KUBECONFIG:-}" ]]; then
  say "starting the local control plane (the first build takes 5-30 minutes)"
  KUBECONFIG="$("$repo/hack/cluster/cluster.sh" up)"
  export KUBECONFIG
  # shellcheck source=cluster/versions.env
  source "$repo/hack/cluster/versions.env"
  kubectl_bin="$cache/$CLUSTER_CACHE_KEY/bin/kubectl"
  # The plane's log store: the operator archives every run's whole log there.
  mapfile -t archive_env <"$("$repo/hack/cluster/cluster.sh" store-env)"
else
  archive_env=()
  say "using the cluster of KUBECONFIG=$KUBECONFIG"
  kubectl_bin="$(command -v kubectl || true)"
  [[ -n "$kubectl_bin" ]] || { echo "kubectl is needed on PATH" >&2; exit 1; }
fi
kubectl() { "$kubectl_bin" "$@"; }

say "installing the CRDs"
"$jobline" crds | kubectl apply --server-side --force-conflicts -f - >/dev/null
kubectl wait --for=condition=Established crd/pipelines.jobline.dev crd/pipelinejobs.jobline.dev >/dev/null

if [[ -f "$operator_pid" ]] && kill -0 "$(cat "$operator_pid")" 2>/dev/null; then
  say "the operator is already running (pid $(cat "$operator_pid"))"
else
  mkdir -p "$cache"
  env KUBECONFIG="$KUBECONFIG" "${archive_env[@]}" nohup "$jobline" operator >>"$operator_log" 2>&1 &
  echo $! >"$operator_pid"
  say "operator started (pid $!, log: $operator_log)"
fi

if [[ -f "$server_pid" ]] && kill -0 "$(cat "$server_pid")" 2>/dev/null; then
  say "the server is already running (pid $(cat "$server_pid"))"
else
  # On this machine only (127.0.0.1), acting as the kubeconfig's user; with the log
  # store's settings, so that whoever may read a pod's log reads its archived log here.
  env KUBECONFIG="$KUBECONFIG" "${archive_env[@]}" nohup "$jobline" server --credentials kubeconfig \
    --port "$server_port" >>"$server_log" 2>&1 &
  echo $! >"$server_pid"
  say "server started (pid $!, log: $server_log)"
fi

say "running examples/hello"
kubectl delete pipelinejob hello-1 --ignore-not-found >/dev/null
kubectl apply -f "$repo/examples/hello/pipeline.yaml" >/dev/null
# On the local plane's real node when it has one (a real busybox container), else on
# kwok's simulated nodes, which follow the example's sim.jobline.dev annotations.
# shellcheck source=cluster/node.env
source "$repo/hack/cluster/node.env"
if [[ -z "${KUBECONFIG_GIVEN:-}" ]] && kubectl get node "$NODE_NAME" >/dev/null 2>&1; then
  kubectl patch pipeline hello --type merge -p "{\"spec\": {\"template\": {\"spec\": {
    \"nodeSelector\": {\"kubernetes.io/hostname\": \"$NODE_NAME\"},
    \"tolerations\": [{\"key\": \"${NODE_TAINT%%=*}\", \"operator\": \"Exists\"}]}}}}" >/dev/null
fi
kubectl apply -f "$repo/examples/hello/run.yaml" >/dev/null
for _ in $(seq 120); do
  phase="$(kubectl get pipelinejob hello-1 -o jsonpath='{.status.phase}')"
  case "$phase" in COMPLETE | ERROR | STOPPED) break ;; esac
  sleep 1
done
echo
kubectl get pipelinejob hello-1
node="$(kubectl get pod -l jobline.dev/pipelinejob=hello-1 -o jsonpath='{.items[0].spec.nodeName}' 2>/dev/null || true)"
if [[ "$(kubectl get node "$node" -o jsonpath='{.metadata.annotations.kwok\.x-k8s\.io/node}' 2>/dev/null)" == fake ]]; then
  echo "ran on $node, a node simulated by kwok: the log below is the example's simulated one"
elif [[ -n "$node" ]]; then
  echo "ran on $node, a real node: the log below is what the busybox container printed"
fi
echo
echo "log tail kept in its status:"
kubectl get pipelinejob hello-1 -o go-template='{{range .status.logs.lines}}  {{.}}{{"\n"}}{{end}}'
cat <<MSG

Jobline is running. The dashboard and the Jobs API: http://127.0.0.1:$server_port/
Try:
  export KUBECONFIG=$KUBECONFIG JOBLINE_SERVER=http://127.0.0.1:$server_port
  kubectl get jobline                           # Pipelines and runs
  jobline logs hello-1                          # its log, archived lines too once the pod is gone
  kubectl get pipelinejob hello-1 -o yaml       # the whole status: phase, exit code, times, log tail
  sed 's/hello-1/hello-2/' examples/hello/run.yaml | kubectl apply -f -   # another run
  curl -s http://127.0.0.1:$server_port/api/v1/namespaces/default/jobs      # runs, as JSON
The operator's log: $operator_log; the server's: $server_log
Stop the operator, the server and the local control plane with: make stop
MSG
