"""``python -m bluegreen.sandbox``: run the sandbox in the foreground until Ctrl-C, with a ready bluegreen
config written for it (``--config FILE``, else a temporary folder removed at exit) and the commands to try."""

from __future__ import annotations

import argparse
import contextlib
import signal
import shutil
import sys
import tempfile
import threading
from pathlib import Path

MARKER = "# written by python -m bluegreen.sandbox"


def main(argv: list[str] | None = None) -> int:
    from bluegreen.sandbox import Sandbox

    parser = argparse.ArgumentParser(prog="python -m bluegreen.sandbox", description=__doc__)
    parser.add_argument("--record", action="append", dest="records",
                        help="a record name to create (repeatable; default burnham.example.com, api.example.com)")
    parser.add_argument("--ttl", type=int, default=1, help="TTL of the weighted records (default 1)")
    parser.add_argument("--clusters", action="store_true",
                        help="also run the two clusters' Kubernetes APIs (emulated) with ArgoCD cluster secrets "
                             "and Applications, for `bluegreen verify`")
    parser.add_argument("--green-missing-addon", metavar="FLAG", nargs="?", const="enable_karpenter",
                        help="with --clusters: green's cluster secret lacks this addon flag (default "
                             "enable_karpenter), so verify fails")
    parser.add_argument("--pending-seconds", type=float, default=2.0,
                        help="how long Route 53 changes stay PENDING before INSYNC (default 2; real Route 53: "
                             "usually under 60 s)")
    parser.add_argument("--alias", choices=("none", "green", "both"), default="none",
                        help="put green (or both sides) behind an alias to a fake load balancer (EvaluateTargetHealth)")
    parser.add_argument("--unbound", action="store_true",
                        help="also run a real unbound on loopback in front of the DNS server (apt-get install unbound)")
    parser.add_argument("--config", metavar="FILE", type=Path,
                        help="write the bluegreen config for this sandbox here, with its state file beside it, and "
                             "keep both (default: a temporary folder, removed when the sandbox stops). A file "
                             "this command did not write is never overwritten")
    args = parser.parse_args(argv)
    if args.config is not None and args.config.exists() and not args.config.read_text(errors="replace").startswith(MARKER):
        parser.error(f"{args.config} exists and was not written by the sandbox; choose another --config")
    if args.pending_seconds < 0:
        parser.error("--pending-seconds must be >= 0")
    if args.green_missing_addon and not args.clusters:
        parser.error("--green-missing-addon needs --clusters")
    records = args.records or ["burnham.example.com", "api.example.com"]
    alias = {"none": False, "green": ("green",), "both": True}[args.alias]
    sandbox = Sandbox(records=records, ttl=args.ttl, clusters=args.clusters, pending_seconds=args.pending_seconds,
                      alias=alias, unbound=args.unbound)
    try:
        sandbox.start()  # started here, not by `with`, so that a missing unbound is a usage error
    except FileNotFoundError as error:
        parser.error(str(error))
    # Ctrl-C (or SIGTERM) at any moment from here, even while the addresses are printed, stops cleanly.
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    with contextlib.ExitStack() as running:
        running.callback(sandbox.stop)
        if args.config is None:
            folder = Path(tempfile.mkdtemp(prefix="bluegreen-sandbox-"))
            running.callback(shutil.rmtree, folder, ignore_errors=True)
            config_file = folder / "bluegreen.yaml"
        else:
            config_file = args.config
        write_config(sandbox, config_file)
        if args.green_missing_addon:
            try:
                sandbox.green_lacks_addon(args.green_missing_addon)
            except ValueError as error:
                parser.error(str(error))
        print(f"Route 53 (moto):  {sandbox.endpoint_url}   zone {sandbox.zone} id {sandbox.zone_id}")
        print(f"Route 53 changes: PENDING for {sandbox.pending_seconds:g} s, then INSYNC")
        print(f"DNS (UDP+TCP):    {sandbox.dns_address}   (weighted, authoritative: a pick per query)")
        print(f"caching resolver: {sandbox.caching_resolver_address}   (a pick per TTL, as clients see it)")
        if args.unbound:
            print(f"unbound:          {sandbox.unbound_address}")
        if alias:
            for side in sandbox.alias_sides:
                print(f"{side + ' alias:':<18}{sandbox.load_balancer(side).dns_name} (EvaluateTargetHealth)")
        print(f"blue backend:     http://{sandbox.blue.host}:{sandbox.http_port}/  ({sandbox.blue.cluster})")
        print(f"green backend:    http://{sandbox.green.host}:{sandbox.http_port}/  ({sandbox.green.cluster})")
        host, port = sandbox.dns_address.split(":")
        print(f"records:          {', '.join(records)}")
        if args.clusters:
            print(f"clusters:         kubeconfig {sandbox.kubeconfig}, contexts blue and green "
                  f"(ArgoCD in namespace argocd)")
        print(f"try:  dig @{host} -p {port} {records[0]} A   or   "
              f"curl --resolve {records[0]}:{sandbox.http_port}:127.0.0.2 {sandbox.url()}")
        if args.clusters:
            print(f"try:  kubectl --kubeconfig {sandbox.kubeconfig} --context green -n argocd get applications")
        print(f"config:           {config_file}   (ready: Route 53, probes, gates"
              f"{', clusters and verify' if args.clusters else ''} point at this sandbox)")
        print("use it from another shell (moto accepts any AWS key; these are placeholders):")
        print(f"  export BLUEGREEN_CONFIG={config_file} AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox")
        print("  bluegreen status")
        if args.clusters:
            print("  bluegreen verify --cluster green")
        print("  bluegreen shift --to green        # then: bluegreen history, bluegreen rollback --to blue")
        print("AWS credentials for clients: any fake key (moto does not check them). Ctrl-C to stop.")
        sys.stdout.flush()
        while not stopping.wait(0.5):
            pass
        print("\nstopping ...")
    print("sandbox stopped.")
    return 0


def write_config(sandbox, path: Path) -> Path:
    """A bluegreen config that drives ``sandbox`` (its own state file beside it, so sandbox runs never mix
    with a real migration's journal), loaded back before anyone uses it."""
    import yaml

    from bluegreen.config import load_config

    config = sandbox.config_dict(steps=[0, 10, 50, 100], bake="10s", ttl_margin="1s")
    config["state"] = {"path": str(path.with_name(path.stem + ".state.db"))}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{MARKER} for the sandbox at {sandbox.endpoint_url}; valid while it runs.\n"
                    + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    load_config(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
