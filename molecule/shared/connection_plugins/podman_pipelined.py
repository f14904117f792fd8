"""Ansible connection plugin for the Molecule scenarios: containers.podman.podman with pipelining.

The collection's plugin runs ``podman exec`` without ``-i``, so a module cannot come over stdin: each one costs
three container processes (make the remote temporary directory, chmod the module, run it). With ``-i`` Ansible
pipelines, one ``podman exec`` per module that needs no file. Files (copy, template) still go through
``podman mount`` as in the parent. Same container, same user, same confinement as ``podman exec``.
"""

from __future__ import annotations

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

DOCUMENTATION = """
    name: podman_pipelined
    short_description: containers.podman.podman with pipelining (podman exec -i)
    description:
      - Run commands in, and put or fetch files to, an existing podman container; modules come over stdin.
    extends_documentation_fragment:
      - connection_pipelining
    options:
      remote_addr:
        description: The name or ID of the container.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
      remote_user:
        description: The user in the container; empty is the container's own, and files go through podman mount.
        vars:
          - name: ansible_user
      podman_extra_args:
        description: Extra arguments to the podman command line.
        default: ''
        vars:
          - name: ansible_podman_extra_args
      podman_executable:
        description: The podman executable.
        default: podman
        vars:
          - name: ansible_podman_executable
"""


class Connection(PodmanConnection):
    transport = 'podman_pipelined'
    has_pipelining = True

    @ensure_connect
    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        """The parent's exec_command, plus ``-i`` when there is input (a pipelined module)."""
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        exec_args = ['exec', *(['-i'] if in_data else []), *(['--user', self.user] if self.user else [])]
        return self._podman(exec_args, shlex.split(to_native(cmd, errors='surrogate_or_strict')), in_data)
