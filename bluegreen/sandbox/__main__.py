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
    args = parser.parse_args(argv)
    records = args.records or ["burnham.example.com", "api.example.com"]
    with Sandbox(records=records, ttl=args.ttl) as sandbox:
        print(f"Route 53 (moto):  {sandbox.endpoint_url}   zone {sandbox.zone} id {sandbox.zone_id}")
        print(f"DNS (UDP+TCP):    {sandbox.dns_address}")
        print(f"blue backend:     http://{sandbox.blue.host}:{sandbox.http_port}/  ({sandbox.blue.cluster})")
        print(f"green backend:    http://{sandbox.green.host}:{sandbox.http_port}/  ({sandbox.green.cluster})")
        host, port = sandbox.dns_address.split(":")
        print(f"records:          {', '.join(records)}")
        print(f"try:  dig @{host} -p {port} {records[0]} A   or   "
              f"curl --resolve {records[0]}:{sandbox.http_port}:127.0.0.2 {sandbox.url()}")
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
