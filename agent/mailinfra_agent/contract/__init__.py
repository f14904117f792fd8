"""The versioned contract between the controller (compile time) and the host's services (run time).

The controller builds a ``Contract`` from the spec and writes it as ``/etc/mailinfra/agent.json``; the
host reads it with ``load_contract``. Secrets are never in it, only the paths of 0600 files
(``read_secret_file``). docs/agent-contract.md describes the schema and the versioning rules.
"""

from .loader import SUPPORTED_VERSIONS, ContractError, dump_contract, dump_contract_json, load_contract
from .schema import (
    CONTRACT_VERSION,
    DEFAULT_CONTRACT_PATH,
    DEFAULT_ISP,
    DEFAULT_SQLITE_PATH,
    BackoffRule,
    Blocklists,
    BlocklistZone,
    BounceCategory,
    Contract,
    Host,
    Injection,
    Isp,
    Limits,
    Mta,
    QueueThresholds,
    ReplyRule,
    Retry,
    SendingIp,
    Store,
    Stream,
    StreamIsp,
    Suppression,
    Thresholds,
)
from .secrets import SecretFileError, read_secret_file

__all__ = [
    'CONTRACT_VERSION',
    'DEFAULT_CONTRACT_PATH',
    'DEFAULT_ISP',
    'DEFAULT_SQLITE_PATH',
    'SUPPORTED_VERSIONS',
    'BackoffRule',
    'BlocklistZone',
    'Blocklists',
    'BounceCategory',
    'Contract',
    'ContractError',
    'Host',
    'Injection',
    'Isp',
    'Limits',
    'Mta',
    'QueueThresholds',
    'ReplyRule',
    'Retry',
    'SecretFileError',
    'SendingIp',
    'Store',
    'Stream',
    'StreamIsp',
    'Suppression',
    'Thresholds',
    'dump_contract',
    'dump_contract_json',
    'load_contract',
    'read_secret_file',
]
