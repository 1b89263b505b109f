"""External backend: runtimes started elsewhere (HTCondor, another site)
behind a *runtime gateway* speaking ``docs/runtime-gateway.openapi.yaml``.

The gateway owns idempotency by worker id (a second create returns the
existing runtime). This client maps transport trouble to retryable
``BackendError``s, and ``observe`` to UNKNOWN, never FAILED. The setup
step's credentials travel sealed for the gateway (``sealing``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from ..base import (
    BackendError,
    ErrorCode,
    LaunchSpec,
    ListedRuntime,
    Observation,
    Phase,
    RuntimeBackend,
    RuntimeRef,
)
from ..naming import MANAGED_SELECTOR
from ..spec import validate_spec
from .sealing import reseal_setup


class ExternalBackend(RuntimeBackend):
    """A client of one gateway at ``base_url`` with bearer ``token``."""

    name = "external"

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        unseal: Callable[[str], str] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.unseal = unseal  # the control plane's: setup credentials
        self.client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {token}"},
        )

    def launch(self, spec: LaunchSpec) -> RuntimeRef:
        """POST /v1/runtimes. Raises the gateway's error code (CONFLICT,
        INVALID_SPEC, QUOTA_EXCEEDED...) or GATEWAY_UNREACHABLE / TIMEOUT;
        DEPENDENCY_SETUP_FAILED when a setup credential cannot be unsealed."""
        validate_spec(spec)
        body = spec.to_json()
        try:
            body["setup"] = reseal_setup(
                body["setup"], token=self.token, unseal=self.unseal
            )
        except Exception as exc:  # noqa: BLE001 - any unseal failure: same answer
            raise BackendError(
                ErrorCode.DEPENDENCY_SETUP_FAILED, str(exc), retryable=False
            ) from exc
        return self._ref(self._request("POST", "/v1/runtimes", json=body).json())

    def observe(self, ref: RuntimeRef) -> Observation:
        """GET /v1/runtimes/{worker_id}; 404 is NOT_FOUND, an unreachable or
        failing gateway is UNKNOWN."""
        try:
            response = self._request(
                "GET", f"/v1/runtimes/{ref.worker_id}", allow=(404,)
            )
        except BackendError as exc:
            return Observation(Phase.UNKNOWN, message=exc.message)
        if response.status_code == 404:
            return Observation(Phase.NOT_FOUND, message="gateway has no such runtime")
        body = response.json()
        return Observation(
            Phase(body["phase"]),
            body.get("endpoint", ""),
            body.get("message", ""),
            tuple(body.get("events", ())),
            body.get("error_code", ""),
        )

    def terminate(self, ref: RuntimeRef) -> None:
        """DELETE /v1/runtimes/{worker_id}; 404 is success."""
        self._request("DELETE", f"/v1/runtimes/{ref.worker_id}", allow=(404,))

    def list_runtimes(self) -> list[ListedRuntime]:
        """One GET /v1/runtimes?label_selector=managed-by. An item without a
        ``phase`` (an older gateway) or with one this client does not know
        is UNKNOWN: never read as stopped."""
        response = self._request(
            "GET", "/v1/runtimes", params={"label_selector": MANAGED_SELECTOR}
        )
        return [_listed(self._ref(item), item) for item in response.json()["items"]]

    def logs(self, ref: RuntimeRef, tail: int = 100) -> str:
        response = self._request(
            "GET",
            f"/v1/runtimes/{ref.worker_id}/logs",
            params={"tail": tail},
            allow=(404,),
        )
        return "" if response.status_code == 404 else response.text

    def _ref(self, body: dict[str, Any]) -> RuntimeRef:
        return RuntimeRef(
            self.name,
            body["worker_id"],
            body.get("name", ""),
            extra=body.get("extra", {}),
        )

    def _request(
        self, method: str, path: str, *, allow: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        """Send; statuses in ``allow`` and 2xx return, others raise the
        gateway's BackendError."""
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise BackendError(
                ErrorCode.TIMEOUT,
                f"gateway {self.base_url} did not answer in time: {exc}",
                retryable=True,
            ) from exc
        except httpx.TransportError as exc:
            raise BackendError(
                ErrorCode.GATEWAY_UNREACHABLE,
                f"gateway {self.base_url} unreachable: {exc}",
                retryable=True,
            ) from exc
        if response.is_success or response.status_code in allow:
            return response
        raise _gateway_error(response)


def _listed(ref: RuntimeRef, item: dict[str, Any]) -> ListedRuntime:
    try:
        phase = Phase(item.get("phase") or Phase.UNKNOWN)
    except ValueError:
        phase = Phase.UNKNOWN
    code = item.get("exit_code")
    return ListedRuntime(
        ref,
        phase,
        str(item.get("message") or ""),
        code if isinstance(code, int) else None,
    )


def _gateway_error(response: httpx.Response) -> BackendError:
    try:
        body = response.json()
        code = ErrorCode(body["code"])
        return BackendError(
            code, body.get("message", ""), retryable=bool(body.get("retryable"))
        )
    except (ValueError, KeyError, TypeError):
        retryable = response.status_code >= 500
        code = ErrorCode.GATEWAY_UNREACHABLE if retryable else ErrorCode.INTERNAL
        return BackendError(
            code,
            f"gateway answered {response.status_code}: {response.text[:200]}",
            retryable=retryable,
        )
