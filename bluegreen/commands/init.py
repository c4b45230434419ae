"""``bluegreen init --zone Z --record NAME...``: a starter config from the weighted pairs found in Route 53."""

from __future__ import annotations

import argparse

from bluegreen.commands.common import EXIT_CODES_HELP, emit, setup_logging
from bluegreen.environment import Environment
from bluegreen.errors import ConfigError

NAME = "init"
DESCRIPTION = ("Read the weighted pairs of the given records from Route 53 and write a starter config with every "
               "section present and commented: route filled from what was found (the two SetIdentifiers, "
               "which is blue, the TTL). Refuses to overwrite an existing file, and refuses a record that is not "
               "a weighted pair (exit 2, naming it). Reads only: Route 53 is not changed.")
EPILOG = EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zone", required=True, metavar="ZONE", help="the hosted zone: its name or its id")
    parser.add_argument("--record", required=True, action="append", dest="records", metavar="NAME",
                        help="a weighted record to manage (repeatable; a bare label is taken inside --zone)")
    parser.add_argument("--blue", metavar="SET_ID",
                        help="the SetIdentifier of blue (default: the one that says blue, else the one holding "
                             "more traffic now)")
    parser.add_argument("--green", metavar="SET_ID", help="the SetIdentifier of green (default: the other one)")
    parser.add_argument("--name", metavar="NAME", help="the migration's name (default: the first record's first label)")
    parser.add_argument("--region", help="written as aws.region (default: left to the SDK's chain)")
    parser.add_argument("--profile", help="the AWS profile to read with, written as aws.profile")
    parser.add_argument("--endpoint-url", metavar="URL", help="an AWS endpoint (a local emulator), written as "
                                                              "aws.endpoint_url")
    parser.epilog = ("The file is written where --config says (default: $BLUEGREEN_CONFIG or ./bluegreen.yaml), so "
                     "the next command finds it.\n\n" + EXIT_CODES_HELP)


def run(args: argparse.Namespace, env: Environment) -> int:
    import yaml

    from bluegreen.config import config_path, parse_config
    from bluegreen.config.fields import normalize_record_name
    from bluegreen.config.route import RecordRef, RouteConfig
    from bluegreen.config.sections import parse_aws
    from bluegreen.config.starter import assign_sides, migration_name, starter_config, weighted_pair
    from bluegreen.routers.route53 import Route53Router

    setup_logging(args, env)
    path = config_path(getattr(args, "config", None), env.environ)
    if path.exists():
        raise ConfigError(f"{path} already exists; bluegreen init never overwrites a config",
                          hint="move it away, or write elsewhere with --config FILE")
    zone = args.zone.strip().rstrip(".")
    names: list[str] = []
    for raw in args.records:
        name = normalize_record_name(raw, f"--record {raw}")
        if "." not in name and "." in zone:
            name = f"{name}.{zone.lower()}"
        if name not in names:
            names.append(name)
    name = args.name or migration_name(names[0])
    aws = parse_aws({"region": args.region, "profile": args.profile, "endpoint_url": args.endpoint_url})
    route = RouteConfig(driver="route53", hosted_zone=zone, records=tuple(RecordRef(n) for n in names),
                        blue="", green="")  # the identifiers are what we are about to learn
    router = Route53Router(route, aws)
    try:
        found = router.record_sets()
        zone_name = router.zones()[0].name
    finally:
        router.close()
    pairs = [weighted_pair(n, found.get(n, []), zone_name) for n in names]
    blue, green = assign_sides(pairs, blue=args.blue, green=args.green)
    text = starter_config(name=name, zone=zone, pairs=pairs, blue=blue, green=green, region=aws.region,
                          profile=aws.profile, endpoint_url=aws.endpoint_url)
    parse_config(yaml.safe_load(text))  # what we write must load: a bug here is ours, not the user's
    try:
        with open(path, "x", encoding="utf-8") as out:  # "x": never overwrite, even one racing us
            out.write(text)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; bluegreen init never overwrites a config",
                          hint="move it away, or write elsewhere with --config FILE") from None
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error.strerror}") from None
    result = {
        "path": str(path), "migration": name, "hosted_zone": zone_name, "blue": blue, "green": green,
        "records": [{"name": p.name, "types": list(p.types),
                     "weights": {"blue": p.weights[blue], "green": p.weights[green]}, "ttl": p.ttl}
                    for p in pairs],
    }
    lines = [f"wrote {path} (migration {name}, zone {zone_name}): blue is {blue!r}, green is {green!r}"]
    lines += [f"  {p.name} {'/'.join(p.types)}: blue={p.weights[blue]} green={p.weights[green]}, "
              + ("alias" if p.ttl is None else f"TTL {p.ttl}s") for p in pairs]
    lines.append(f"next: add a probe, then `bluegreen status --config {path}` and "
                 f"`bluegreen shift --to green --dry-run --config {path}`")
    emit(args, env, result, "\n".join(lines))
    return 0
