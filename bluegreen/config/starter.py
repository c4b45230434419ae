"""A starter configuration for ``bluegreen init``: the weighted pairs found in Route 53 checked, and a YAML
file written with every section present and commented. Pure: it receives the record sets as Route 53 lists
them (``ListResourceRecordSets``) and returns text; the command reads and writes.

A weighted pair, as bluegreen moves it: for each name, exactly two record sets with a ``Weight`` per record
type (Route 53 groups weighted records by name and type, "Weighted routing" in the Route 53 Developer
Guide), the same two ``SetIdentifier`` values for every type and every name (``route.blue`` and
``route.green`` name them once for all records), and one TTL per group (Route 53 applies the last TTL set to
the whole group). Anything else is refused naming the record: a simple record, another routing policy
(failover, latency, geolocation: a ``SetIdentifier`` without a ``Weight``), three weighted sets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from bluegreen.errors import ConfigError

# Record types that carry traffic. external-dns keeps its ownership records as TXT, weighted with the same
# SetIdentifier as the record they own (its AWS provider copies the set identifier): they are not a side.
TRAFFIC_TYPES = ("A", "AAAA", "CNAME")
CUTOVER_TTL = 60  # what route.ttl suggests: short enough that a rollback reaches clients within a minute


@dataclass(frozen=True)
class FoundPair:
    """The weighted pair of one record name, as found."""

    name: str
    types: tuple[str, ...]
    weights: Mapping[str, int]  # SetIdentifier -> weight (of the first type; the types agree or we refuse)
    ttl: int | None  # None: alias records (the target's TTL applies)
    external_dns: bool  # a TXT registry record of external-dns sits beside it

    @property
    def identifiers(self) -> tuple[str, str]:
        first, second = sorted(self.weights)
        return first, second


def weighted_pair(name: str, record_sets: Sequence[Mapping[str, Any]], zone: str) -> FoundPair:
    """The pair of ``name`` from its record sets, or a ConfigError naming the record and what is wrong."""
    if not record_sets:
        raise ConfigError(f"record {name} does not exist in hosted zone {zone}",
                          hint="create its two weighted records (blue and green) first, e.g. with Terraform or "
                               "external-dns, then run `bluegreen init` again")
    external_dns = any(r.get("Type") == "TXT" and any("heritage=external-dns" in v.get("Value", "")
                                                       for v in r.get("ResourceRecords", []))
                       for r in record_sets)
    traffic = [r for r in record_sets if r.get("Type") in TRAFFIC_TYPES]
    if not traffic:
        found = ", ".join(sorted({r.get("Type", "?") for r in record_sets}))
        raise ConfigError(f"record {name} is not a weighted pair: it has no A, AAAA or CNAME record (found {found})")
    by_type: dict[str, dict[str, Mapping[str, Any]]] = {}
    for rrset in traffic:
        ident = rrset.get("SetIdentifier")
        if ident is None:
            raise ConfigError(f"record {name} is not a weighted pair: {rrset['Type']} is a simple record",
                              hint="bluegreen moves traffic between two weighted records; create them (both must "
                                   "exist before the simple one is removed: Route 53 refuses a mix in one name)")
        if "Weight" not in rrset:
            policy = next((p for p in ("Failover", "Region", "GeoLocation", "GeoProximityLocation",
                                       "MultiValueAnswer", "CidrRoutingConfig") if p in rrset), "another policy")
            raise ConfigError(f"record {name} is not a weighted pair: {rrset['Type']} {ident!r} uses "
                              f"{policy} routing", hint="bluegreen moves traffic with weighted routing only")
        by_type.setdefault(rrset["Type"], {})[ident] = rrset
    identifiers = {rtype: tuple(sorted(sets)) for rtype, sets in by_type.items()}
    for rtype, idents in sorted(identifiers.items()):
        if len(idents) != 2:
            raise ConfigError(f"record {name} is not a weighted pair: {rtype} has {len(idents)} weighted record "
                              f"set(s) ({', '.join(idents)})",
                              hint="bluegreen manages groups of exactly two weighted records, one per side")
    if len(set(identifiers.values())) > 1:
        detail = "; ".join(f"{t}: {', '.join(i)}" for t, i in sorted(identifiers.items()))
        raise ConfigError(f"record {name} is not a weighted pair: its types use different SetIdentifiers ({detail})",
                          hint="use the same two SetIdentifiers for every type of the name")
    ttls = {s["TTL"] for sets in by_type.values() for s in sets.values() if "TTL" in s}
    if len(ttls) > 1:
        raise ConfigError(f"record {name}: the TTLs of its weighted records disagree ({sorted(ttls)})",
                          hint="Route 53 applies the last TTL set to the whole group; make them equal first")
    first = by_type[sorted(by_type)[0]]
    return FoundPair(name=name, types=tuple(sorted(by_type)),
                     weights={ident: int(rrset["Weight"]) for ident, rrset in first.items()},
                     ttl=next(iter(ttls)) if ttls else None, external_dns=external_dns)


def assign_sides(pairs: Sequence[FoundPair], *, blue: str | None = None, green: str | None = None) -> tuple[str, str]:
    """Which SetIdentifier is blue and which is green. Every record must use the same two. Given ``blue`` or
    ``green``, that one; else an identifier that says ``blue`` or ``green``; else the side holding more
    traffic now is blue (the side a cutover starts from)."""
    idents = {pair.identifiers for pair in pairs}
    if len(idents) > 1:
        detail = "; ".join(f"{p.name}: {', '.join(p.identifiers)}" for p in pairs)
        raise ConfigError(f"the records use different SetIdentifiers ({detail})",
                          hint="route.blue and route.green name the same two identifiers for every record; run "
                               "`bluegreen init` once per group of records that share them")
    one, two = idents.pop()
    for given, flag in ((blue, "--blue"), (green, "--green")):
        if given is not None and given not in (one, two):
            raise ConfigError(f"{flag} {given!r} is not a SetIdentifier of the records (found {one!r} and {two!r})")
    if blue is not None and green is not None and blue == green:
        raise ConfigError("--blue and --green name the same SetIdentifier")
    if blue is not None:
        return blue, (two if blue == one else one)
    if green is not None:
        return (two if green == one else one), green
    says = {side: [i for i in (one, two) if side in i.lower()] for side in ("blue", "green")}
    if len(says["blue"]) == 1 and len(says["green"]) == 1 and says["blue"] != says["green"]:
        return says["blue"][0], says["green"][0]
    total = {ident: sum(p.weights[ident] for p in pairs) for ident in (one, two)}
    first, second = sorted((one, two), key=lambda i: (-total[i], i))
    return first, second


_NAME_CHARS = re.compile(r"[^a-z0-9-]+")


def migration_name(record: str) -> str:
    """A migration name from the first label of a record name: ``burnham.example.com`` -> ``burnham``."""
    label = _NAME_CHARS.sub("-", record.split(".", 1)[0].lower()).strip("-")[:63].strip("-")
    return label or "migration"


def _yaml_text(value: str) -> str:
    """A YAML scalar for a name or identifier, quoted when plain style would change it."""
    import json

    return value if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", value) and value.lower() not in (
        "yes", "no", "true", "false", "on", "off", "null", "y", "n") else json.dumps(value)


def starter_config(*, name: str, zone: str, pairs: Sequence[FoundPair], blue: str, green: str,
                   region: str | None = None, profile: str | None = None, endpoint_url: str | None = None) -> str:
    """The starter file: what was found filled in, every other section present with its defaults and
    commented out, so that ``load_config`` accepts it as written."""
    ttls = sorted({p.ttl for p in pairs if p.ttl is not None})
    alias = [p.name for p in pairs if p.ttl is None]
    found_lines = []
    for pair in pairs:
        weights = ", ".join(f"{ident}={pair.weights[ident]}" for ident in (blue, green))
        ttl = "alias (the target's TTL)" if pair.ttl is None else f"TTL {pair.ttl}s"
        found_lines.append(f"#   {pair.name} {'/'.join(pair.types)}: {weights}, {ttl}")
    owned = [p.name for p in pairs if p.external_dns]
    lines = [
        "# bluegreen configuration written by `bluegreen init`: check every line before the first shift.",
        "# Every section is here; the ones commented out keep the defaults shown. Durations accept 500ms, 30s,",
        "# 5m, 1h. The full reference with every key: config/bluegreen.example.yaml.",
        "#",
        f"# Found in hosted zone {zone}:",
        *found_lines,
        "",
        f"name: {_yaml_text(name)}                  # the migration's name: in logs, locks and journals (a-z, 0-9, -)",
        "",
        "aws:",
        (f"  region: {region}" if region else
         "  # region: eu-west-1             # default: the SDK's chain (AWS_REGION, AWS_DEFAULT_REGION, the profile)"),
        (f"  profile: {_yaml_text(profile)}" if profile else
         "  # profile: prod                 # default: AWS_PROFILE or the default credentials chain"),
        (f"  endpoint_url: {endpoint_url}    # one endpoint for every AWS client (a local emulator)" if endpoint_url
         else "  # endpoint_url: http://127.0.0.1:5000   # only for a local emulator"),
        "  # route53_requests_per_second: 8   # our own pacing, below Route 53's 10/s per account",
        "",
        "route:",
    ]
    if owned:
        lines += [f"  # external-dns owns {', '.join(owned)} (a heritage=external-dns TXT record sits beside it):",
                  "  # a weight written in Route 53 is put back at its next sync. Use driver: external-dns (with",
                  "  # `objects`) or argocd (with `secrets`); see README, \"Weight drivers\"."]
    lines += [
        "  driver: route53                  # route53 | external-dns | argocd",
        f"  hosted_zone: {_yaml_text(zone)}",
        "  records:                         # weighted records that move together",
        *(f"    - {pair.name}" for pair in pairs),
        f"  blue: {_yaml_text(blue)}{' ' * max(1, 27 - len(_yaml_text(blue)))}# SetIdentifier of the blue record of each name",
        f"  green: {_yaml_text(green)}{' ' * max(1, 26 - len(_yaml_text(green)))}# SetIdentifier of the green record of each name",
    ]
    if ttls and max(ttls) > CUTOVER_TTL:
        lines.append(f"  ttl: {CUTOVER_TTL}                          # the records' TTL is {max(ttls)}s now: lowered "
                     "to this during the cutover, restored after")
    elif ttls:
        lines.append(f"  # ttl: {CUTOVER_TTL}                        # the records' TTL is {max(ttls)}s already; set "
                     "this to lower it during the cutover")
    else:
        lines.append("  # ttl: 60                        # alias records have no TTL of their own")
    lines.append(f"  # alias_ttl: 60                  # what clients cache an alias answer for (60s for an ELB)"
                 + (f"; alias: {', '.join(alias)}" if alias else ""))
    lines += [
        "  # insync_timeout: 5m             # longest wait for a change to be INSYNC",
        "  # retry_timeout: 1m              # longest time spent retrying Throttling / 5xx",
        "  # txt_prefix: \"\"                 # external-dns's --txt-prefix / --txt-suffix, to find its TXT records",
        "  # txt_suffix: \"\"",
        "",
        "shift:",
        "  steps: [0, 10, 50, 100]          # percent of traffic on the target side; --steps overrides",
        "  bake: 30s                        # minimum hold at each step after the TTL wait",
        "  # ttl_margin: 5s                 # added to the TTL wait",
        "  # check_interval: 250ms          # how often the gates are judged during a hold",
        "  # on_interrupt: rollback         # SIGTERM/SIGINT during a shift: rollback | hold",
        "",
        "# HTTP probes that stand for the service's clients: without one, a shift has nothing to judge.",
        "probes: []",
        "#  - name: public",
        f"#    url: https://{pairs[0].name}/healthz",
        "#    expect_status: [200]",
        "#    cluster_header: X-Cluster     # which response header names the cluster (or cluster_pattern: REGEX)",
        "#    interval: 1s",
        "#    timeout: 2s",
        "",
        "gates:",
        "  min_success_ratio: 0.99          # per probe, over the samples of the current step",
        "  max_p95_latency: 2s",
        "  min_samples: 20                  # ratio and latency are judged once this many samples are in",
        "  max_consecutive_failures: 3",
        "  # on_fail: rollback              # rollback | hold",
        "  # on_both_failing: hold          # blue fails as much as green: hold | rollback",
        "",
        "state:                             # the lock and the run journal",
        "  backend: sqlite                  # sqlite (one local file) | dynamodb (shared: a scheduled job, a team)",
        "  # path: ~/.local/state/bluegreen/state.db   # sqlite; default $XDG_STATE_HOME/bluegreen/state.db",
        "  # table: bluegreen-state         # dynamodb; create it with `bluegreen init-state`",
        "  # lease: 60s                     # the lock expires this long after its holder stops renewing it",
        "",
        "# notifications:                  # the config names environment variables; the URLs live there only",
        "#   slack_webhook_env: BLUEGREEN_SLACK_WEBHOOK",
        "#   webhook_env: BLUEGREEN_WEBHOOK",
        "#   timeout: 3s",
        "",
        "# clusters:                       # for `verify`, `provision` and the status table (optional)",
        # In the EKS Blueprints pattern the SetIdentifier is the cluster's name (external-dns's owner id).
        f"#   blue: {{eks: {_yaml_text(blue)}}}              # an EKS cluster name (endpoint and token from the EKS API)",
        f"#   green: {{context: {_yaml_text(green)}}}        # or a kubeconfig context ($KUBECONFIG or ~/.kube/config)",
        "#   argocd: {mode: in-cluster, namespace: argocd}",
        "",
        "# verify:                         # what `bluegreen verify` compares and checks",
        "#   ignore_keys: []                # more cluster-secret keys that may differ between the clusters",
        "#   workload_namespaces: []        # namespaces whose Deployments and StatefulSets must be rolled out",
        "#   ignore_applications: []        # ArgoCD Applications left out (fnmatch patterns)",
        "",
        "# preflight:                      # what `bluegreen preflight` checks before a Kubernetes upgrade",
        "#   gate_shift: false              # true: every shift runs preflight on its target first",
        "#   min_replicas: 2",
        "",
        "# provision:                      # how `bluegreen provision` makes a cluster exist",
        "#   command: terraform -chdir=eks-green apply -auto-approve   # run without a shell",
        "#   wait_timeout: 30m",
        "#   poll_interval: 30s",
        "",
    ]
    return "\n".join(lines)
