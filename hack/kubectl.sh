#!/usr/bin/env bash
# kubectl of the local control plane's build, or the one on PATH.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=cluster/versions.env
source "$here/cluster/versions.env"
built="${JOBLINE_CACHE:-$HOME/.cache/jobline}/$CLUSTER_CACHE_KEY/bin/kubectl"
if [[ -x "$built" ]]; then exec "$built" "$@"; else exec kubectl "$@"; fi
