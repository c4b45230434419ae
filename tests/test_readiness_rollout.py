"""Rollout readiness: a workload is ready only when its rollout is complete, as ``kubectl rollout status``
decides (kubernetes/kubectl pkg/polymorphichelpers/rollout_status.go)."""

from __future__ import annotations

import pytest

from bluegreen.core.readiness import (
    AppStatus, ClusterMetadata, WorkloadStatus, assess, rollout_problem, workload_from_object,
)


def deployment(*, generation=2, observed=2, replicas=2, updated=2, available=2, total=None, conditions=()):
    return {"metadata": {"name": "burnham", "namespace": "team-burnham", "generation": generation},
            "spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate"}},
            "status": {"observedGeneration": observed, "replicas": updated if total is None else total,
                       "updatedReplicas": updated, "availableReplicas": available, "readyReplicas": available,
                       "conditions": list(conditions)}}


def statefulset(*, generation=1, observed=1, replicas=3, ready=3, updated=3, current_rev="db-1", update_rev="db-1",
                partition=None, strategy="RollingUpdate"):
    update_strategy = {"type": strategy}
    if partition is not None:
        update_strategy["rollingUpdate"] = {"partition": partition}
    return {"metadata": {"name": "db", "namespace": "team-burnham", "generation": generation},
            "spec": {"replicas": replicas, "updateStrategy": update_strategy},
            "status": {"observedGeneration": observed, "replicas": replicas, "readyReplicas": ready,
                       "availableReplicas": ready, "updatedReplicas": updated, "currentRevision": current_rev,
                       "updateRevision": update_rev}}


def daemonset(*, generation=1, observed=1, desired=3, updated=3, available=3):
    return {"metadata": {"name": "agent", "namespace": "kube-system", "generation": generation},
            "spec": {"updateStrategy": {"type": "RollingUpdate"}},
            "status": {"observedGeneration": observed, "desiredNumberScheduled": desired,
                       "updatedNumberScheduled": updated, "numberAvailable": available}}


def problem(kind, obj):
    return rollout_problem(workload_from_object(kind, obj))


# -- Deployments ------------------------------------------------------------------------------------------
def test_a_complete_deployment_rollout_is_ready():
    assert problem("Deployment", deployment()) is None


def test_mid_rollout_deployment_with_every_replica_available_is_not_ready():
    # The case: the old ReplicaSet keeps 2/2 available while only 1 of 2 new pods exists.
    assert problem("Deployment", deployment(updated=1, available=2, total=3)) == "rolling out: 1 of 2 updated"


def test_a_spec_change_not_yet_observed_is_not_ready():
    assert problem("Deployment", deployment(generation=3, observed=2)) == (
        "rolling out: spec update not yet observed by the controller (generation 3, observed 2)")


def test_old_replicas_pending_termination_are_not_ready():
    assert problem("Deployment", deployment(total=3)) == "rolling out: 1 old replicas pending termination"


def test_updated_but_not_yet_available_is_not_ready():
    assert problem("Deployment", deployment(available=1)) == "rolling out: 1 of 2 updated replicas available"


def test_progress_deadline_exceeded_is_named():
    cond = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    assert problem("Deployment", deployment(updated=1, conditions=[cond])) == (
        "rollout exceeded its progress deadline (1 of 2 updated)")


# -- StatefulSets -----------------------------------------------------------------------------------------
def test_statefulset_complete_and_mid_rollout():
    assert problem("StatefulSet", statefulset()) is None
    assert problem("StatefulSet", statefulset(ready=2)) == "rolling out: 2 of 3 ready"
    assert problem("StatefulSet", statefulset(updated=1, update_rev="db-2")) == "rolling out: 1 of 3 updated"
    assert problem("StatefulSet", statefulset(update_rev="db-2")) == (
        "rolling out: revision db-2 not yet current (3 of 3 updated, current db-1)")


def test_statefulset_never_observed_is_not_ready():
    assert problem("StatefulSet", statefulset(generation=1, observed=0)).startswith(
        "rolling out: spec update not yet observed")


def test_partitioned_statefulset_is_done_when_the_pods_above_the_partition_are_updated():
    # kubectl: "partitioned roll out complete" once updatedReplicas >= replicas - partition.
    assert problem("StatefulSet", statefulset(partition=2, updated=1, update_rev="db-2")) is None
    assert problem("StatefulSet", statefulset(partition=1, updated=1, update_rev="db-2")) == (
        "rolling out: 1 of 2 updated")


def test_on_delete_statefulset_is_judged_by_ready_pods():
    assert problem("StatefulSet", statefulset(strategy="OnDelete", updated=0, update_rev="db-2")) is None


# -- DaemonSets -------------------------------------------------------------------------------------------
def test_daemonset_rollout():
    assert problem("DaemonSet", daemonset()) is None
    assert problem("DaemonSet", daemonset(updated=1)) == "rolling out: 1 of 3 updated"
    assert problem("DaemonSet", daemonset(available=2)) == "rolling out: 2 of 3 updated pods available"
    assert problem("DaemonSet", daemonset(generation=2)).startswith("rolling out: spec update not yet observed")


# -- in the report --------------------------------------------------------------------------------------
def test_without_rollout_fields_only_available_replicas_count_as_before():
    assert rollout_problem(WorkloadStatus("Deployment", "ns", "x", 2, 2)) is None
    assert rollout_problem(WorkloadStatus("Deployment", "ns", "x", 2, 1)) == "1/2 replicas available"


@pytest.mark.parametrize("obj, ready", [(deployment(), True), (deployment(updated=1, available=2, total=3), False)])
def test_the_report_fails_a_mid_rollout_deployment_naming_what_is_missing(obj, ready):
    app = AppStatus("burnham", "Synced", "Healthy")
    report = assess("blue", "green", ref_meta=ClusterMetadata(), tgt_meta=ClusterMetadata(),
                    ref_apps=[app], tgt_apps=[app], ref_names=["blue"], tgt_names=["green"],
                    workloads=[workload_from_object("Deployment", obj)], workload_namespaces=["team-burnham"])
    assert report.ready is ready
    if not ready:
        assert report.reasons == ("Deployment team-burnham/burnham on green: rolling out: 1 of 2 updated",)
