"""Whose identity the server calls the apiserver with: each caller's own bearer token, or,
run on a laptop, the kubeconfig's. The server has no power of its own over runs."""

from __future__ import annotations

import copy
import enum
import hashlib
import threading
from collections import OrderedDict

from kubernetes import client

from jobline import __version__
from jobline.client.runs import Runs, UserError
from jobline.kube import config as kube_config

CLIENTS_KEPT = 64  # API clients (connection pools) kept for recent tokens
USER_AGENT = f"jobline-server/{__version__}"


class Credentials(enum.StrEnum):
    TOKEN = "token"  # every request brings `Authorization: Bearer <Kubernetes token>`
    KUBECONFIG = "kubeconfig"  # requests without a token act as the kubeconfig's user


class Identities:
    """Builds a `Runs` per request, acting as the request's caller."""

    def __init__(
        self, credentials: Credentials, kubeconfig: str | None, context: str | None
    ) -> None:
        self.credentials = credentials
        self._anonymous = _endpoint_only(kubeconfig, context)
        self._own: client.ApiClient | None = None
        self.default_namespace = "default"
        if credentials == Credentials.KUBECONFIG:
            from jobline.client.runs import connect

            self._own, self.default_namespace = connect(kubeconfig, context)
            self._own.user_agent = USER_AGENT
        self._clients: OrderedDict[str, client.ApiClient] = OrderedDict()
        self._lock = threading.Lock()

    def own(self, kubeconfig: str | None, context: str | None) -> client.ApiClient:
        """The server's own identity, for its read-only watch of runs (run_index.py): its
        ServiceAccount in a pod, else the kubeconfig's user."""
        if self._own is not None:
            return self._own
        return kube_config.api_client(_configuration(kubeconfig, context), USER_AGENT)

    def runs(self, authorization: str | None, namespace: str) -> Runs:
        return Runs(self.api(authorization), namespace)

    def api(self, authorization: str | None) -> client.ApiClient:
        token = bearer_token(authorization)
        if token is None:
            if self._own is not None:
                return self._own
            raise UserError(
                "no credentials: send 'Authorization: Bearer <token>' with a Kubernetes token "
                "(for example from `kubectl create token`)",
                401,
                "Unauthorized",
            )
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            api = self._clients.get(key)
            if api is not None:
                self._clients.move_to_end(key)
                return api
            configuration = copy.deepcopy(self._anonymous)
            configuration.api_key = {"BearerToken": token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
            api = kube_config.api_client(configuration, USER_AGENT)
            self._clients[key] = api
            while len(self._clients) > CLIENTS_KEPT:
                self._clients.popitem(last=False)  # its pool closes when collected
            return api


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UserError("the Authorization header must be 'Bearer <token>'", 401, "Unauthorized")
    return token.strip()


def _endpoint_only(kubeconfig: str | None, context: str | None) -> client.Configuration:
    """The apiserver's address and CA, without any credential: a caller's token is the
    only identity a request made with it can have."""
    configuration = _configuration(kubeconfig, context)
    configuration.api_key = {}
    configuration.api_key_prefix = {}
    configuration.refresh_api_key_hook = None
    configuration.cert_file = configuration.key_file = None
    configuration.username = configuration.password = None
    return configuration


def _configuration(kubeconfig: str | None, context: str | None) -> client.Configuration:
    """The apiserver and credentials, as every part of Jobline finds them
    (`jobline.kube.config`)."""
    try:
        configuration, _ = kube_config.load(kubeconfig, context)
    except kube_config.ConfigError as e:
        raise UserError(str(e)) from None
    return configuration
