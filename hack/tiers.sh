#!/usr/bin/env bash
# Runs make targets one after another (stopping at the first that fails) and prints how
# long each took, as a table at the end, whatever happened: where CI's time goes.
#   hack/tiers.sh TARGET...
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
times=()
status=0
for target in "$@"; do
  start=$SECONDS
  make -C "$here" --no-print-directory "$target"
  status=$?
  times+=("$target $((SECONDS - start)) $status")
  ((status == 0)) || break
done
echo
echo "==> time per tier"
printf '  %-14s %8s  %s\n' tier seconds result
for entry in "${times[@]}"; do
  read -r target seconds result <<<"$entry"
  printf '  %-14s %8d  %s\n' "$target" "$seconds" "$([[ $result == 0 ]] && echo ok || echo FAILED)"
done
exit "$status"
