"""The ``nodes:`` section: how ``bluegreen nodes`` moves workloads onto new node groups. Pure.

    nodes:
      parallel: 2                    # workloads restarted at the same time (1..50)
      workload_timeout: 10m          # per workload, until its rollout is complete
      rwo: refuse                    # refuse | scale-to-zero: Deployments with a ReadWriteOnce volume
      min_statefulset_replicas: 2    # below this a StatefulSet needs --accept-statefulset-downtime
      namespaces: []                 # only these (globs); default: every namespace but skip_namespaces
      skip_namespaces: [kube-public, kube-node-lease]
      keep: 24h                      # `nodes finish` deletes the old node groups after this
      ready_timeout: 20m             # a new node group ACTIVE and its nodes Ready
      control_plane_timeout: 60m     # one UpdateClusterVersion
      poll_interval: 5s
"""

from __future__ import annotations

from typing import Any

from bluegreen.config.fields import Fields
from bluegreen.core.nodes import RWO_POLICIES, NodesSettings

NODES_KEYS = {"parallel", "workload_timeout", "rwo", "min_statefulset_replicas", "namespaces", "skip_namespaces",
              "keep", "ready_timeout", "control_plane_timeout", "poll_interval"}


def parse_nodes(raw: Any) -> NodesSettings:
    fields = Fields(raw, "nodes", NODES_KEYS, example="e.g. nodes: {rwo: scale-to-zero, keep: 24h}")
    default = NodesSettings()
    return NodesSettings(
        parallel=fields.integer("parallel", lo=1, hi=50, default=default.parallel),
        workload_timeout=fields.duration("workload_timeout", default.workload_timeout, lo=1.0, hi=6 * 3600.0),
        rwo=fields.choice("rwo", RWO_POLICIES, default.rwo),
        min_statefulset_replicas=fields.integer("min_statefulset_replicas", lo=1, hi=100,
                                                default=default.min_statefulset_replicas),
        namespaces=fields.strings("namespaces"),
        skip_namespaces=fields.strings("skip_namespaces") if fields.has("skip_namespaces") else default.skip_namespaces,
        keep=fields.duration("keep", default.keep, hi=30 * 86400.0),
        ready_timeout=fields.duration("ready_timeout", default.ready_timeout, lo=1.0, hi=4 * 3600.0),
        control_plane_timeout=fields.duration("control_plane_timeout", default.control_plane_timeout, lo=1.0,
                                              hi=4 * 3600.0),
        poll_interval=fields.duration("poll_interval", default.poll_interval, lo=0.01, hi=300.0),
    )
