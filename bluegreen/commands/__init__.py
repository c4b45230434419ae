"""One module per subcommand. Each has ``NAME``, ``HELP``, ``DESCRIPTION``, ``add_arguments(parser)`` and
``run(args, env) -> int``; ``bluegreen.cli`` assembles the parser from :data:`COMMANDS` and maps errors to
exit codes. Modules are imported when their command runs, so ``--help`` and ``rollback`` stay fast."""

from __future__ import annotations

# (name, module, one-line help). Order is the order of `bluegreen --help`.
COMMANDS = (
    ("status", "bluegreen.commands.status", "show the weights, share and TTL of every record, and the clusters"),
    ("shift", "bluegreen.commands.shift", "move traffic to a side, step by step, with probes and rollback"),
    ("rollback", "bluegreen.commands.rollback", "emergency: all traffic to one side now (works while a shift runs)"),
    ("verify", "bluegreen.commands.verify", "is a cluster ready for traffic? (ArgoCD metadata, applications, workloads)"),
    ("provision", "bluegreen.commands.provision", "target, clone (--from) or build (provision.command) a cluster"),
    ("preflight", "bluegreen.commands.preflight", "is a cluster ready for a Kubernetes version? (APIs, workloads, EKS)"),
    ("history", "bluegreen.commands.history", "list the migration's runs, or show one run"),
    ("report", "bluegreen.commands.report", "write a run's report: self-contained HTML with its timeline chart, and PNG"),
    ("watch", "bluegreen.commands.watch", "follow a running (or the latest) run from the journal, with the live panel"),
    ("init", "bluegreen.commands.init", "write a starter config from the weighted records found in Route 53"),
    ("init-state", "bluegreen.commands.init_state", "create the state store (the DynamoDB table, or the SQLite file)"),
    ("completion", "bluegreen.commands.completion", "print the shell completion script (bash or zsh)"),
    ("nodes", "bluegreen.commands.nodes", "in-place mode: node groups at a new version inside one cluster, blue/green"),
    ("demo", "bluegreen.commands.demo", "the whole cutover against the embedded sandbox (needs the sandbox extra)"),
)
