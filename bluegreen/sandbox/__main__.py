"""``python -m bluegreen.sandbox``: run the sandbox in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
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
    args = parser.parse_args(argv)
    if args.green_missing_addon and not args.clusters:
        parser.error("--green-missing-addon needs --clusters")
    records = args.records or ["burnham.example.com", "api.example.com"]
    with Sandbox(records=records, ttl=args.ttl, clusters=args.clusters) as sandbox:
        if args.green_missing_addon:
            try:
                sandbox.green_lacks_addon(args.green_missing_addon)
            except ValueError as error:
                parser.error(str(error))
        print(f"Route 53 (moto):  {sandbox.endpoint_url}   zone {sandbox.zone} id {sandbox.zone_id}")
        print(f"DNS (UDP+TCP):    {sandbox.dns_address}")
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
