"""Upgrade readiness (``bluegreen preflight``): everything that breaks an EKS upgrade, checked before
traffic moves.

Pure core: :func:`run_preflight` takes an :class:`Inventory` (filled by
:func:`bluegreen.adapters.inventory.collect_inventory`) and returns a :class:`PreflightReport`.
"""

# Imported on first use (PEP 562): the config loader needs only ``settings``, and ``bluegreen rollback`` must
# not pay for the checks and their tables.
_WHERE = {
    "CODES": "findings", "Finding": "findings", "PreflightReport": "findings", "Severity": "findings",
    "codes_table_markdown": "findings", "EksInventory": "inventory", "Inventory": "inventory",
    "ManifestRef": "inventory", "run_preflight": "run", "PreflightSettings": "settings",
    "parse_preflight_settings": "settings",
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'bluegreen.preflight' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"bluegreen.preflight.{_WHERE[name]}"), name)


__all__ = ["CODES", "EksInventory", "Finding", "Inventory", "ManifestRef", "PreflightReport", "PreflightSettings",
           "Severity", "codes_table_markdown", "parse_preflight_settings", "run_preflight"]
