"""DKIM key management: key generation, key storage outside the repository, selector names,
and key rotation as an explicit state machine.

Typical use (what ``mailinfra dkim generate`` / ``mailinfra dkim rotate`` do)::

    store = KeyStore()                                   # $MAILINFRA_KEYS_DIR or ~/.local/share/...
    with rotation_lock(store, 'acme', 'example.com'):
        rotation = load_rotation(store, 'acme', 'example.com')
        result = run_step(rotation, 'generate', now, store=store, period='quarterly',
                          algorithms='rsa+ed25519')
        save_rotation(store, rotation)
    rotation.dns_records()                               # for the DNS renderer
    [ref.inventory_reference() for ref in signing_keys(rotation, store)]   # for the inventory

See ``docs/dkim-rotation.md`` for the operator's runbook.
"""

from .dnscheck import AnswersFunc, CheckResult, ServerAnswers, check_record
from .errors import (
    DkimError,
    DnsQueryError,
    IllegalTransitionError,
    InsecureKeyFileError,
    InvalidNameError,
    KeyExistsError,
    KeyFileError,
    KeyMismatchError,
    KeyNotFoundError,
    KeySizeError,
    KeyStoreLocationError,
    OverlapWindowError,
    RecordFormatError,
    RotationFileError,
    SelectorError,
    VerificationError,
)
from .keys import (
    DEFAULT_RSA_BITS,
    MIN_RSA_BITS,
    KeyAlgorithm,
    fingerprint,
    generate_private_key,
    load_private_key,
    load_public_key,
    parse_algorithms,
    parse_txt_value,
    public_txt_value,
    record_fingerprint,
    record_key,
    revoked_txt_value,
    txt_chunks,
)
from .rotation import (
    DEFAULT_OVERLAP,
    Action,
    DnsRecord,
    KeyState,
    Rotation,
    SelectorEntry,
    Step,
    StepResult,
    load_rotation,
    next_step,
    rotation_lock,
    rotation_path,
    run_step,
    save_rotation,
    signing_keys,
)
from .selectors import (
    DEFAULT_PERIOD,
    RotationPeriod,
    parse_period,
    parse_selector,
    period_bounds,
    selector_for,
)
from .store import KEYS_DIR_ENV, KeyRef, KeyStore, default_keys_root, find_git_work_tree

__all__ = [
    'DEFAULT_OVERLAP',
    'DEFAULT_PERIOD',
    'DEFAULT_RSA_BITS',
    'KEYS_DIR_ENV',
    'MIN_RSA_BITS',
    'Action',
    'AnswersFunc',
    'CheckResult',
    'DkimError',
    'DnsQueryError',
    'DnsRecord',
    'IllegalTransitionError',
    'InsecureKeyFileError',
    'InvalidNameError',
    'KeyAlgorithm',
    'KeyExistsError',
    'KeyFileError',
    'KeyMismatchError',
    'KeyNotFoundError',
    'KeyRef',
    'KeySizeError',
    'KeyState',
    'KeyStore',
    'KeyStoreLocationError',
    'OverlapWindowError',
    'RecordFormatError',
    'Rotation',
    'RotationFileError',
    'RotationPeriod',
    'SelectorEntry',
    'SelectorError',
    'ServerAnswers',
    'Step',
    'StepResult',
    'VerificationError',
    'check_record',
    'default_keys_root',
    'find_git_work_tree',
    'fingerprint',
    'generate_private_key',
    'load_private_key',
    'load_public_key',
    'load_rotation',
    'next_step',
    'parse_algorithms',
    'parse_period',
    'parse_selector',
    'parse_txt_value',
    'period_bounds',
    'public_txt_value',
    'record_fingerprint',
    'record_key',
    'revoked_txt_value',
    'rotation_lock',
    'rotation_path',
    'run_step',
    'save_rotation',
    'selector_for',
    'signing_keys',
    'txt_chunks',
]
