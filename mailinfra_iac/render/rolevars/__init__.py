"""Inventory variables per role. A new role's variables go in one new module here, listed below."""

from __future__ import annotations

from .agent import AgentVars
from .base import RoleVars, Template, merge
from .core import CoreVars
from .mta_base import MtaBaseVars
from .opendkim import OpenDkimVars
from .postfix import PostfixVars
from .powermta import PowerMtaVars
from .prometheus import PrometheusVars


def default_role_vars() -> list[RoleVars]:
    return [CoreVars(), MtaBaseVars(), OpenDkimVars(), PostfixVars(), PowerMtaVars(), AgentVars(), PrometheusVars()]


__all__ = ['RoleVars', 'Template', 'default_role_vars', 'merge']
