"""EKS calls for in-place node upgrades: managed node groups (list, describe, create, delete) and the control
plane's version (UpdateClusterVersion, DescribeUpdate). boto3 through ``bluegreen.adapters.aws.client``;
errors become :class:`~bluegreen.adapters.eks.EksError` naming the cluster. Waits are bounded and take an
injected clock."""

from __future__ import annotations

from typing import Any, Callable

import structlog

from bluegreen.adapters.eks import Eks, EksError, wait_for_status

log = structlog.get_logger("bluegreen.nodes")


class NodeGroups:
    def __init__(self, client: Any, cluster: str) -> None:
        self.eks = Eks(client)
        self.client = client
        self.cluster = cluster

    def control_plane_version(self) -> str:
        description = self.eks.describe_cluster(self.cluster)
        if description is None:
            raise EksError(f"EKS cluster {self.cluster} does not exist",
                           hint="check `clusters.<side>.eks` and `aws.region`")
        return str(description.get("version"))

    def groups(self) -> list[dict]:
        return self.eks.nodegroups(self.cluster)

    def create(self, request: dict) -> dict:
        return self.eks.create_nodegroup(request)

    def describe(self, name: str) -> dict | None:
        return self.eks.describe_nodegroup(self.cluster, name)

    def wait_active(self, name: str, *, monotonic: Callable[[], float], sleep: Callable[[float], None],
                    timeout: float, interval: float) -> dict:
        return wait_for_status(lambda: self.describe(name), f"node group {name} of {self.cluster}",
                               failed=("CREATE_FAILED", "DELETING", "DELETE_FAILED", "DEGRADED"),
                               monotonic=monotonic, sleep=sleep, timeout=timeout, interval=interval)

    def delete(self, name: str) -> bool:
        """DeleteNodegroup; False when it is already gone (``finish`` may run again after a failure)."""
        from botocore.exceptions import ClientError

        try:
            self.client.delete_nodegroup(clusterName=self.cluster, nodegroupName=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise EksError(f"deleting node group {name} of {self.cluster} failed: "
                           f"{error.response.get('Error', {}).get('Code')}") from None
        log.info("eks_nodegroup_delete", cluster=self.cluster, nodegroup=name)
        return True

    def upgrade_control_plane(self, version: str, *, monotonic: Callable[[], float], sleep: Callable[[float], None],
                              timeout: float, interval: float) -> None:
        """UpdateClusterVersion to ``version`` (one minor above the current), then DescribeUpdate until the
        update is Successful (EKS API reference: UpdateClusterVersion returns an update whose status is
        InProgress, then Successful, Failed or Cancelled)."""
        answer = self.eks._call(f"upgrading the control plane of {self.cluster} to {version}",
                                self.client.update_cluster_version, name=self.cluster, version=version)
        update_id = answer["update"]["id"]
        log.info("eks_control_plane_upgrade", cluster=self.cluster, version=version, update=update_id)
        started = monotonic()
        while True:
            update = self.eks._call(f"reading update {update_id} of {self.cluster}", self.client.describe_update,
                                    name=self.cluster, updateId=update_id)["update"]
            status = update.get("status")
            if status == "Successful":
                return
            if status in ("Failed", "Cancelled"):
                errors = "; ".join(e.get("errorMessage", "") for e in update.get("errors") or [])
                raise EksError(f"the control plane upgrade of {self.cluster} to {version} is {status}: {errors}")
            waited = monotonic() - started
            if waited >= timeout:
                raise EksError(f"the control plane upgrade of {self.cluster} to {version} is still {status} "
                               f"after {int(waited)}s", hint="re-run with --resume once it is done")
            sleep(min(interval, max(0.0, timeout - waited)))
