"""The node controller lives in the sandbox (``bluegreen demo --nodes`` runs it too); the tests import it from
here as before."""

from bluegreen.sandbox.node_controller import HASH, NODES, OWNER, PODS, UNREADY, NodeController

__all__ = ["HASH", "NODES", "OWNER", "PODS", "UNREADY", "NodeController"]
