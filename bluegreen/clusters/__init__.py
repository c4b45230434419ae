"""Cluster-level commands\x27 logic: `verify` (is green ready?) and `provision` (make green)."""
