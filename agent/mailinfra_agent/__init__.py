"""mailinfra-agent: the code that runs on the hosts.

It never imports the controller library (``mailinfra_iac``); it reads the contract the controller renders
(``mailinfra_agent.contract``). The controller may import this package, never the reverse.
"""

__version__ = '0.1.0'
