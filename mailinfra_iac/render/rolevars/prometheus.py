"""Variables of roles/prometheus (hosts with role ``monitoring``): rules, scrape, Alertmanager and blackbox configs.

The data is the monitoring renderer's (``render/monitoring/``). Strings holding Prometheus templates
(``{{ $labels.x }}``) are wrapped in ``{% raw %}`` so that Ansible passes them through untouched.
"""

from __future__ import annotations

from typing import Any

from ..base import RenderContext
from ..monitoring import alertmanager_config, blackbox_config, rule_groups, scrape_configs


def jinja_raw(value: Any) -> Any:
    """``value`` with every string that Jinja would evaluate wrapped in ``{% raw %}…{% endraw %}``."""
    if isinstance(value, str):
        return f'{{% raw %}}{value}{{% endraw %}}' if '{{' in value or '{%' in value or '{#' in value else value
    if isinstance(value, dict):
        return {key: jinja_raw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jinja_raw(item) for item in value]
    return value


class PrometheusVars:
    """Variables of roles/prometheus."""

    name = 'prometheus'
    host_roles = frozenset({'monitoring'})

    def group_vars(self, context: RenderContext) -> dict[str, Any]:
        return {}

    def host_vars(self, context: RenderContext, host: str) -> dict[str, Any]:
        return {
            'prometheus__scrape_configs': jinja_raw(scrape_configs(context, host)),
            **context.memoize('prometheus:shared_vars', lambda: self._shared_vars(context)),
        }

    def _shared_vars(self, context: RenderContext) -> dict[str, Any]:
        """The variables that are the same on every monitoring host: built once, written to YAML once."""
        shared = {
            'prometheus__rule_groups': jinja_raw(rule_groups(context)),
            'alertmanager__config': jinja_raw(alertmanager_config(context)),
            'blackbox__config': jinja_raw(blackbox_config()),
        }
        for value in shared.values():
            context.shared.add(value)
        return shared
