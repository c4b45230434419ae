"""``python -m bluegreen.sandbox``: run the sandbox in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading


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
    args = parser.parse_args(argv)
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
    with contextlib.ExitStack() as running:
        running.callback(sandbox.stop)
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
        print("AWS credentials for clients: any fake key (moto does not check them). Ctrl-C to stop.")
        sys.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("\nstopping ...")
    print("sandbox stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
