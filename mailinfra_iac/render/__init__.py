"""Renderers: each turns the model and its facts into files under its own sub-directory."""

from __future__ import annotations

from .base import OutputFile, RenderContext, Renderer, RendererRegistry
from .dns_records import DnsRecordsRenderer
from .inventory import InventoryRenderer
from .monitoring import MonitoringRenderer
from .mta_configs import MtaConfigRenderer
from .terraform import TerraformRenderer


def default_registry() -> RendererRegistry:
    """A fresh registry with every built-in renderer."""
    inventory = InventoryRenderer()  # one instance: the MTA renderer then reuses the host variables it computed
    return RendererRegistry(
        [inventory, DnsRecordsRenderer(), MtaConfigRenderer(inventory), TerraformRenderer(), MonitoringRenderer()]
    )


__all__ = ['OutputFile', 'RenderContext', 'Renderer', 'RendererRegistry', 'default_registry']
