"""Gates that roll back, SIGTERM then --resume, the rollback command, and `finish` around the keep time."""

from __future__ import annotations

import http.server
import io
import json
import threading
import time

import pytest

from bluegreen.core.clock import FakeClock
from bluegreen.environment import Environment
from tests.nodes.conftest import NS, deployment, pvc, run_cli

DEPLOYMENTS, PVCS = "apps/v1/deployments", "v1/persistentvolumeclaims"


def _env(**kwargs) -> Environment:
    return Environment(stdout=io.StringIO(), stderr=io.StringIO(), install_signal_handlers=False, **kwargs)


def _old(cluster):
    return {n for n in cluster.nodes() if not n.split("-node-")[0].endswith("-1-31")}


def _seed(cluster, *apps):
    for app in apps:
        cluster.put(DEPLOYMENTS, app, deployment(app, 2))
    cluster.controller.wait_settled()


@pytest.fixture
def app_server():
    """The service the probes watch, on loopback; ``healthy`` flips it to 500s."""
    state = {"healthy": True}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200 if state["healthy"] else 500)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{server.server_address[1]}/", state
    finally:
        server.shutdown()
        server.server_close()


def test_failing_probe_mid_upgrade_rolls_back(cluster, app_server):
    url, state = app_server
    _seed(cluster, "a", "b", "c")
    old = _old(cluster)
    # Probes and gates as `shift` reads them: HttpProber runs them, core.verdict.judge judges them.
    cluster.write_config(probes=[{"name": "shop", "url": url, "interval": "50ms", "timeout": "1s"}],
                         gates={"max_consecutive_failures": 2, "min_samples": 100000},
                         nodes={"parallel": 1})

    def on_event(event):
        if event.kind == "nodes_workload_moved":
            state["healthy"] = False  # the service breaks once the first workload is on the new nodes

    env = _env(on_event=on_event)
    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--output", "json", env=env)
    assert code == 3, err + out
    result = json.loads(out)
    assert result["outcome"] == "rolled_back" and "consecutive failures" in result["reason"]
    nodes = cluster.nodes()
    assert not any(nodes[n] for n in old), "old nodes back in service"
    assert all(cordoned for n, cordoned in nodes.items() if n not in old), "new nodes cordoned"
    cluster.controller.wait_settled()
    assert set(cluster.placement().values()) <= old, "what had moved is back on the old nodes"


def test_sigterm_leaves_a_known_state_and_resume_finishes(cluster):
    cluster.put(PVCS, "data", pvc())
    cluster.put(DEPLOYMENTS, "a-ledger", deployment("a-ledger", 1, claims=("data",)))
    _seed(cluster, "b-web", "c-api")
    cluster.write_config(nodes={"parallel": 1, "rwo": "scale-to-zero"})
    old = _old(cluster)
    env = _env()
    # The signal handler only sets env.stop (runs.SignalsCaught); here it comes while a-ledger is at zero.
    env.on_event = lambda event: env.stop.set() if event.kind == "nodes_scaled_to_zero" else None
    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--output", "json", env=env)
    assert code == 1, err + out
    result = json.loads(out)
    assert result["outcome"] == "interrupted" and "--resume" in result["reason"]
    # The rule: every old node cordoned, every new node schedulable, nothing left at zero replicas.
    nodes = cluster.nodes()
    assert old and all(nodes[n] for n in old) and not any(nodes[n] for n in set(nodes) - old)
    assert cluster.server.get(DEPLOYMENTS, NS, "a-ledger")["spec"]["replicas"] == 1
    # ... and the journal says which.
    code, out, err = run_cli("history", "--config", str(cluster.config_path), "--output", "json")
    runs = json.loads(out)
    run_id = (runs.get("runs") if isinstance(runs, dict) else runs)[0]["run_id"]
    code, out, err = run_cli("history", run_id, "--config", str(cluster.config_path), "--output", "json")
    interrupted = [e for e in json.loads(out)["events"] if e["kind"] == "nodes_interrupted"]
    assert sorted(interrupted[0]["data"]["cordoned"]) == sorted(old)

    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path))
    assert code == 2 and "--resume" in err
    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--resume", "--output", "json")
    assert code == 0, err + out
    # a-ledger came back up after the signal with the old nodes cordoned: it is on a new node already when its
    # old pod was gone by then, else the resumed run moves it.
    assert {f"Deployment/{NS}/b-web", f"Deployment/{NS}/c-api"} <= set(json.loads(out)["moved"])
    assert not set(cluster.placement().values()) & old


def test_finish_waits_for_the_keep_time_then_deletes_the_old_groups(cluster):
    _seed(cluster, "web")
    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path))
    assert code == 0, err
    done = time.time()
    early = _env(clock=FakeClock(wall_start=done + 3600))
    code, out, err = run_cli("nodes", "finish", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--output", "json", env=early)
    assert code == 0, err
    assert json.loads(out)["action"] == "wait" and 22 * 3600 < json.loads(out)["remaining_seconds"] <= 23 * 3600
    assert {"general", "system"} <= set(cluster.groups())

    late = _env(clock=FakeClock(wall_start=done + 24 * 3600 + 60))
    code, out, err = run_cli("nodes", "finish", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--output", "json", env=late)
    assert code == 0, err
    assert sorted(json.loads(out)["deleted"]) == ["general", "system"]
    assert set(cluster.groups()) == {"general-1-31", "system-1-31"}
    code, out, err = run_cli("nodes", "finish", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--output", "json", env=_env(clock=FakeClock(wall_start=done + 48 * 3600)))
    assert code == 0 and json.loads(out)["action"] == "nothing"


def test_rollback_command_then_finish_refuses(cluster):
    _seed(cluster, "web")
    old = _old(cluster)
    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path))
    assert code == 0, err
    code, out, err = run_cli("nodes", "rollback", "--cluster", "prod", "--config", str(cluster.config_path))
    assert code == 0, err + out
    nodes = cluster.nodes()
    assert not any(nodes[n] for n in old) and all(c for n, c in nodes.items() if n not in old)
    cluster.controller.wait_settled()
    assert set(cluster.placement().values()) <= old
    late = _env(clock=FakeClock(wall_start=time.time() + 48 * 3600))
    code, out, err = run_cli("nodes", "finish", "--cluster", "prod", "--config", str(cluster.config_path), env=late)
    assert code == 3 and "rollback happened" in out
    assert {"general", "system"} <= set(cluster.groups())
