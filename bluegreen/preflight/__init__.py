"""Upgrade readiness (``bluegreen preflight``): everything that breaks an EKS upgrade, checked before
traffic moves.

Pure core: :func:`run_preflight` takes an :class:`Inventory` (filled by
:func:`bluegreen.adapters.inventory.collect_inventory`) and returns a :class:`PreflightReport`.
"""

from bluegreen.preflight.findings import CODES, Finding, PreflightReport, Severity, codes_table_markdown
from bluegreen.preflight.inventory import EksInventory, Inventory, ManifestRef
from bluegreen.preflight.run import run_preflight
from bluegreen.preflight.settings import PreflightSettings, parse_preflight_settings

__all__ = ["CODES", "EksInventory", "Finding", "Inventory", "ManifestRef", "PreflightReport", "PreflightSettings",
           "Severity", "codes_table_markdown", "parse_preflight_settings", "run_preflight"]
