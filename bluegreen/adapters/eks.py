"""The EKS API calls provision needs: read a cluster, its node groups and add-ons; create their copies.

Errors become :class:`EksError` naming the cluster. Waiting is bounded and takes an injected clock, so a
test asserts a 15-minute wait without spending it. Add-on calls may go through their own client (tests
stub those few calls that the local EKS emulator does not implement).
"""

from __future__ import annotations

from typing import Any, Callable

import structlog

from bluegreen.errors import BlueGreenError, ExitCode, shorten

log = structlog.get_logger("bluegreen.clusters")


class EksError(BlueGreenError):
    exit_code = ExitCode.ERROR


class Eks:
    def __init__(self, client: Any, addons_client: Any = None) -> None:
        self.client = client
        self.addons_client = addons_client or client

    def _call(self, what: str, fn: Callable, **kwargs: Any) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as error:
            err = error.response.get("Error", {})
            raise EksError(f"{what} failed: {err.get('Code', 'error')} {shorten(err.get('Message', ''), 200)}") from None
        except BotoCoreError as error:
            raise EksError(f"{what} failed: {shorten(str(error), 200)}") from None

    # -- clusters --------------------------------------------------------------------------------------
    def describe_cluster(self, name: str) -> dict | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.describe_cluster(name=name)["cluster"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            err = error.response.get("Error", {})
            raise EksError(f"describing EKS cluster {name} failed: {err.get('Code', 'error')} "
                           f"{shorten(err.get('Message', ''), 200)}") from None
        except BotoCoreError as error:
            raise EksError(f"cannot reach EKS to describe cluster {name}: {shorten(str(error), 200)}") from None

    def create_cluster(self, request: dict) -> dict:
        log.info("eks_cluster_create", cluster=request["name"], version=request.get("version"))
        return self._call(f"creating EKS cluster {request['name']}", self.client.create_cluster, **request)["cluster"]

    # -- node groups -----------------------------------------------------------------------------------
    def nodegroups(self, cluster: str) -> list[dict]:
        names: list[str] = []
        token: dict = {}
        while True:
            page = self._call(f"listing node groups of {cluster}", self.client.list_nodegroups,
                              clusterName=cluster, **token)
            names += page.get("nodegroups", [])
            if not page.get("nextToken"):
                break
            token = {"nextToken": page["nextToken"]}
        return [self._call(f"describing node group {n} of {cluster}", self.client.describe_nodegroup,
                           clusterName=cluster, nodegroupName=n)["nodegroup"] for n in names]

    def describe_nodegroup(self, cluster: str, name: str) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise EksError(f"describing node group {name} of {cluster} failed: "
                           f"{error.response.get('Error', {}).get('Code')}") from None

    def create_nodegroup(self, request: dict) -> dict:
        log.info("eks_nodegroup_create", cluster=request["clusterName"], nodegroup=request["nodegroupName"])
        return self._call(f"creating node group {request['nodegroupName']} of {request['clusterName']}",
                          self.client.create_nodegroup, **request)["nodegroup"]

    # -- add-ons ---------------------------------------------------------------------------------------
    def addons(self, cluster: str) -> list[dict]:
        return [self._call(f"describing add-on {n} of {cluster}", self.addons_client.describe_addon,
                           clusterName=cluster, addonName=n)["addon"] for n in self.addon_names(cluster)]

    def addon_names(self, cluster: str) -> list[str]:
        names: list[str] = []
        token: dict = {}
        while True:
            page = self._call(f"listing add-ons of {cluster}", self.addons_client.list_addons,
                              clusterName=cluster, **token)
            names += page.get("addons", [])
            if not page.get("nextToken"):
                break
            token = {"nextToken": page["nextToken"]}
        return names

    def default_addon_version(self, addon: str, kubernetes_version: str) -> str | None:
        """The version EKS installs by default for this Kubernetes version (DescribeAddonVersions)."""
        answer = self._call(f"reading versions of add-on {addon} for Kubernetes {kubernetes_version}",
                            self.addons_client.describe_addon_versions,
                            addonName=addon, kubernetesVersion=kubernetes_version)
        newest = None
        for info in answer.get("addons", []):
            for version in info.get("addonVersions", []):
                for compat in version.get("compatibilities", []):
                    if compat.get("clusterVersion") == kubernetes_version:
                        if compat.get("defaultVersion"):
                            return version["addonVersion"]
                        newest = newest or version["addonVersion"]
        return newest

    def create_addon(self, request: dict) -> dict:
        log.info("eks_addon_create", cluster=request["clusterName"], addon=request["addonName"],
                 version=request.get("addonVersion"))
        return self._call(f"creating add-on {request['addonName']} on {request['clusterName']}",
                          self.addons_client.create_addon, **request)["addon"]


def wait_for_status(describe: Callable[[], dict | None], what: str, *, want: str = "ACTIVE",
                    failed: tuple[str, ...] = ("FAILED", "CREATE_FAILED", "DELETING", "DEGRADED"),
                    monotonic: Callable[[], float], sleep: Callable[[float], None],
                    timeout: float, interval: float) -> dict:
    """Poll ``describe`` until its ``status`` is ``want``; bounded by ``timeout`` on the injected clock."""
    started = monotonic()
    while True:
        current = describe()
        status = (current or {}).get("status", "MISSING")
        if status == want:
            return current or {}
        if status in failed or current is None:
            raise EksError(f"{what} is {status}, not {want}",
                           hint="look at it in the EKS console; re-run provision once it is fixed")
        waited = monotonic() - started
        if waited >= timeout:
            raise EksError(f"{what} is still {status} after {int(waited)}s (limit {int(timeout)}s)",
                           hint="re-run `bluegreen provision`: it continues where it stopped")
        log.info("eks_wait", what=what, status=status, waited_seconds=int(waited))
        sleep(min(interval, max(0.0, timeout - waited)))
