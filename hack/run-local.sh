#!/usr/bin/env bash
# `make run`: Jobline on the local control plane (or on $KUBECONFIG's cluster),
# running the hello example from start to finish.
#   1. start the local control plane, unless KUBECONFIG is set (first time: a
#      5-30 minute build, with progress)
#   2. install the CRDs
#   3. start the operator in the background (reused when already running)
#   4. apply examples/hello/ and wait for its run to finish, then show it
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${JOBLINE_CACHE:-$HOME/.cache/jobline}"
operator_pid="$cache/operator.pid"
operator_log="$cache/operator.log"
jobline="$repo/.venv/bin/jobline"
say() { echo "==> $*" >&2; }

if [[ -z "${KUBECONFIG:-}" ]]; then
  say "starting the local control plane (the first build takes 5-30 minutes)"
  KUBECONFIG="$("$repo/hack/cluster/cluster.sh" up)"
  export KUBECONFIG
  # shellcheck source=cluster/versions.env
  source "$repo/hack/cluster/versions.env"
  kubectl_bin="$cache/$CLUSTER_CACHE_KEY/bin/kubectl"
else
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
  KUBECONFIG="$KUBECONFIG" nohup "$jobline" operator >>"$operator_log" 2>&1 &
  echo $! >"$operator_pid"
  say "operator started (pid $!, log: $operator_log)"
fi

say "running examples/hello"
kubectl delete pipelinejob hello-1 --ignore-not-found >/dev/null
kubectl apply -f "$repo/examples/hello/" >/dev/null
for _ in $(seq 120); do
  phase="$(kubectl get pipelinejob hello-1 -o jsonpath='{.status.phase}')"
  case "$phase" in COMPLETE | ERROR | STOPPED) break ;; esac
  sleep 1
done
echo
kubectl get pipelinejob hello-1
echo
echo "log tail kept in its status:"
kubectl get pipelinejob hello-1 -o go-template='{{range .status.logs.lines}}  {{.}}{{"\n"}}{{end}}'
cat <<MSG

Jobline is running. Try:
  export KUBECONFIG=$KUBECONFIG
  kubectl get jobline                           # Pipelines and runs
  kubectl get pipelinejob hello-1 -o yaml       # the whole status: phase, exit code, times, log tail
  sed 's/hello-1/hello-2/' examples/hello/run.yaml | kubectl apply -f -   # another run
The operator's log: $operator_log
Stop the operator and the local control plane with: make stop
MSG
