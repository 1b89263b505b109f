"""Shared GPU claims: packing workers below 100% SM onto one physical GPU set.

Who holds a shared claim is recorded on it (``kubernetes_gpu.SHARES_
ANNOTATION``) and changed only by a replace carrying the claim's
resourceVersion: when two control-plane processes race for the last room
on a claim, the API server answers 409 to one of them, which reads again
and goes elsewhere, so the shares on a claim never sum above 100. The last
worker to leave deletes the claim, with the resourceVersion it read as a
precondition, so a worker joining at that moment is never left on a
deleted claim.

``release`` reads the shared claims from the process's watch when it is in
sync (a stop or an orphan's removal then makes no LIST), and from the API
after a conflict. A share the watch had not seen yet when its worker was
removed is not lost: ``list_runtimes`` lists every share holder without a
pod as a leftover, so reconcile releases it after the grace period.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from kubernetes.client.exceptions import ApiException

from . import kubernetes_gpu as gpu
from . import naming
from .base import BackendError, ErrorCode, LaunchSpec
from .kubernetes_status import TRANSPORT_ERRORS, error_from_api, unreachable

if TYPE_CHECKING:
    from .kubernetes import KubernetesBackend

ATTEMPTS = 8


class SharedClaims:
    def __init__(self, backend: KubernetesBackend):
        self.backend = backend

    def join(self, spec: LaunchSpec) -> str:
        """The shared claim holding ``spec``'s share: the one it holds
        already (idempotent), else the first with room, else a new one."""
        site = self.backend.site
        group = gpu.sharing_group(spec, site)
        share = spec.resources.gpu_sm_percentage
        for _ in range(ATTEMPTS):
            claims = self._claims(f"{naming.SHARED_CLAIM_KEY}={group}")
            claim, holding = gpu.pick_shared_claim(claims, spec.worker_id, share)
            if holding:
                return claim["metadata"]["name"]
            if claim is None:
                name = self._free_name(group, claims)
                body = gpu.shared_claim_manifest(
                    spec, name, {spec.worker_id: share}, site
                )
                if self._write(
                    self.backend.resource.create_namespaced_resource_claim, body
                ):
                    return name
                continue
            shares = gpu.claim_shares(claim) | {spec.worker_id: share}
            if self._replace(claim, shares):
                return claim["metadata"]["name"]
        raise BackendError(
            ErrorCode.CONFLICT,
            f"could not join a shared GPU claim after {ATTEMPTS} attempts "
            "(many concurrent starts); try again",
            retryable=True,
        )

    def release(self, worker_id: str, namespace: str) -> None:
        """Remove ``worker_id``'s share wherever it is; delete a claim left
        empty. Idempotent."""
        fresh = False
        for _ in range(ATTEMPTS):
            claims = [c for c in self._held(fresh) if worker_id in gpu.claim_shares(c)]
            if not claims:
                return
            claim = claims[0]
            shares = gpu.claim_shares(claim)
            shares.pop(worker_id)
            done = self._replace(claim, shares) if shares else self._drop(claim)
            if done and len(claims) == 1:
                return
            fresh = True  # a conflict, or more claims: read the API
        raise BackendError(
            ErrorCode.CONFLICT,
            f"could not release worker {worker_id}'s GPU share; retrying",
            retryable=True,
        )

    # --- helpers --------------------------------------------------------------

    def _held(self, fresh: bool) -> list[dict]:
        """Every shared claim: the watch's unless ``fresh`` is asked."""
        watch = self.backend.watch
        cached = None if fresh or watch is None else watch.cached("ResourceClaim")
        if cached is None:
            return self._claims(naming.SHARED_CLAIM_KEY)
        return [
            c
            for c in cached
            if naming.SHARED_CLAIM_KEY in (c["metadata"].get("labels") or {})
        ]

    def _claims(self, selector: str) -> list[dict]:
        resource = self.backend.resource
        return self.backend._list(
            resource.list_namespaced_resource_claim, shared=selector
        )

    @staticmethod
    def _free_name(group: str, claims: list[dict]) -> str:
        taken = {c["metadata"]["name"] for c in claims}
        index = 0
        while naming.shared_claim_name(group, index) in taken:
            index += 1
        return naming.shared_claim_name(group, index)

    def _replace(self, claim: dict, shares: dict[str, int]) -> bool:
        """Write ``shares`` onto ``claim`` if nobody changed it since it was
        read; False on a conflict (read again)."""
        meta = claim["metadata"]
        annotations = dict(meta.get("annotations") or {})
        annotations[gpu.SHARES_ANNOTATION] = json.dumps(shares, sort_keys=True)
        body = {**claim, "metadata": {**meta, "annotations": annotations}}
        body.pop("status", None)
        method = self.backend.resource.replace_namespaced_resource_claim
        return self._write(method, body, meta["name"])

    def _drop(self, claim: dict) -> bool:
        meta = claim["metadata"]
        options = {"preconditions": {"resourceVersion": meta["resourceVersion"]}}
        method = self.backend.resource.delete_namespaced_resource_claim
        try:
            self.backend._call(method, meta["name"], meta["namespace"], body=options)
        except ApiException as exc:
            if exc.status == 404:
                return True
            if exc.status == 409:
                return False
            raise error_from_api(exc) from exc
        except TRANSPORT_ERRORS as exc:
            raise unreachable(exc) from exc
        return True

    def _write(self, method, body: dict, *name: str) -> bool:
        """POST or PUT; False on 409 (someone else won), else raises. What
        the API answered is filed in the watch, so this process's next
        release sees its own write at once."""
        try:
            written = self.backend._call(method, *name, self.backend.namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise error_from_api(exc) from exc
        except TRANSPORT_ERRORS as exc:
            raise unreachable(exc) from exc
        if self.backend.watch is not None and written.get("metadata"):
            self.backend.watch.kinds["ResourceClaim"].remember(written)
        return True
