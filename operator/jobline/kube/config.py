"""Where the apiserver is and who we are to it: one loader for the operator, the server
and the CLI, with one precedence (controller-runtime's): a kubeconfig named on the
command line, else `$KUBECONFIG`, else the pod's ServiceAccount when running in a pod,
else `~/.kube/config`.

Every client made here retries nothing by itself: urllib3's default of three hidden
retries made each documented timeout four times longer. A failed request reaches its
caller at once, which retries it with its own backoff (`jobline.kube.request`).
"""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client, config

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ConfigError(Exception):
    """No usable configuration: the message says what is missing or wrong."""


def load(
    kubeconfig: str | None = None, context: str | None = None
) -> tuple[client.Configuration, str]:
    """The client configuration and the default namespace of its context (or of the pod's
    ServiceAccount; "default" when none says)."""
    configuration = client.Configuration()
    try:
        if not (kubeconfig or context or os.environ.get("KUBECONFIG")) and os.environ.get(
            "KUBERNETES_SERVICE_HOST"
        ):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            namespace = _service_account_namespace()
        else:
            path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            # $KUBECONFIG may list several files; the client reads the first.
            path = os.path.expanduser(path.split(os.pathsep)[0])
            contexts, current = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
            chosen = (
                next((c for c in contexts if c["name"] == context), None) if context else current
            )
            if context and chosen is None:
                raise ConfigError(f"context {context!r} is not in the kubeconfig {path}")
            namespace = (chosen or {}).get("context", {}).get("namespace") or "default"
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context, client_configuration=configuration
            )
    except (config.ConfigException, OSError) as e:
        raise ConfigError(f"no usable kubeconfig: {e}") from None
    configuration.retries = False  # see the module's docstring
    return configuration, namespace


def api_client(
    configuration: client.Configuration, user_agent: str, pool_size: int | None = None
) -> client.ApiClient:
    """A client on `configuration` that names itself `user_agent` in audit logs;
    `pool_size`: connections kept open (one per thread that makes requests at once)."""
    configuration.retries = False
    if pool_size is not None:
        configuration.connection_pool_maxsize = pool_size
    api = client.ApiClient(configuration)
    api.user_agent = user_agent
    return api


def _service_account_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"
