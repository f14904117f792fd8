"""The rotation state file ``<keys root>/<client>/<domain>/rotation.json``: its schema, reading, writing, locking.

The file is a pydantic model (``extra='forbid'``): a field we do not know, a wrong type, a bad time or an
unknown state is refused with an error that names the file and the field, e.g.
``rotation.json: selectors.s2026q4.state: invalid value "live", expected one of: generated, ...``. It is written
atomically with sorted keys and holds public data only: selectors, states, times, public key records and
fingerprints. Format 1 is the only one so far; a file of another format is refused.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from .. import _fs
from ..errors import DkimError, RecordFormatError, RotationFileError
from ..keys import KeyAlgorithm, record_fingerprint
from ..store import KeyStore, check_client, check_domain, check_selector
from .machine import KeyState, Rotation, SelectorEntry, Transition, format_time, utc

FILE_NAME = 'rotation.json'
LOCK_NAME = '.rotation.lock'
FORMAT_VERSION = 1
MARKER = 'managed by "mailinfra dkim rotate"; do not edit by hand'
"""The ``comment`` every written file carries."""


def _enum(kind: type[StrEnum]) -> BeforeValidator:
    def parse(value: Any) -> StrEnum:
        if not isinstance(value, str):
            raise ValueError(f'unexpected value {value!r}')
        try:
            return kind(value)
        except ValueError:
            allowed = ', '.join(member.value for member in kind)
            raise ValueError(f'invalid value "{value}", expected one of: {allowed}') from None

    return BeforeValidator(parse)


def _time(value: Any) -> datetime:
    try:
        return utc(datetime.fromisoformat(value))
    except (TypeError, ValueError):
        raise ValueError(f'invalid time {value!r}, expected e.g. "2026-11-05T12:00:00Z"') from None


def _selector(value: Any) -> str:
    try:
        return check_selector(value)
    except DkimError as error:
        raise ValueError(str(error)) from None


Time = Annotated[datetime, BeforeValidator(_time)]
State = Annotated[KeyState, _enum(KeyState)]
Algorithm = Annotated[KeyAlgorithm, _enum(KeyAlgorithm)]
Selector = Annotated[str, BeforeValidator(_selector)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True, populate_by_name=True)


class TransitionRecord(_Strict):
    """One entry of a selector's ``history``."""

    at: Time
    from_state: State | None = Field(alias='from')
    to: State
    reason: StrictStr = ''


class SelectorRecord(_Strict):
    """One selector under ``selectors``; ``fingerprint`` must be that of the key in ``public_txt``."""

    algorithm: Algorithm
    public_txt: StrictStr
    fingerprint: StrictStr
    state: State
    retire_after: Time | None
    history: list[TransitionRecord]

    @field_validator('public_txt')
    @classmethod
    def _readable_record(cls, value: str) -> str:
        try:
            record_fingerprint(value)
        except (RecordFormatError, DkimError) as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator('fingerprint')
    @classmethod
    def _matches_record(cls, value: str, info: ValidationInfo) -> str:
        public_txt = info.data.get('public_txt')  # absent when public_txt itself was refused
        if public_txt is not None and record_fingerprint(public_txt) != value:
            raise ValueError(f'{value} does not match the key in public_txt')
        return value


class RotationDocument(_Strict):
    """The whole file (format 1)."""

    comment: StrictStr = MARKER
    format: StrictInt
    client: StrictStr
    domain: StrictStr
    overlap_seconds: StrictInt
    selectors: dict[Selector, SelectorRecord]

    @field_validator('format')
    @classmethod
    def _known_format(cls, value: int) -> int:
        if value != FORMAT_VERSION:
            raise ValueError(f'unsupported format {value}, expected {FORMAT_VERSION}')
        return value

    @field_validator('overlap_seconds')
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f'negative value {value}')
        return value


# Errors ------------------------------------------------------------------------------------------


def _where(location: tuple[int | str, ...]) -> str:
    """``('selectors', 's1', 'history', 0, 'to')`` -> ``selectors.s1.history[0].to``; ``()`` -> ``top level``."""
    text = ''
    for part in location:
        if part == '[key]':
            continue  # a refused key of ``selectors``: the location already ends with the key itself
        text += f'[{part}]' if isinstance(part, int) else f'.{part}' if text else str(part)
    return text or 'top level'


def _message(error: ErrorDetails) -> tuple[str, str]:
    """(where, what) of one pydantic error, in the words the hand-written reader used."""
    location = tuple(error['loc'])
    kind = error['type']
    if kind == 'missing':
        return _where(location[:-1]), f'missing "{location[-1]}"'
    if kind == 'extra_forbidden':
        return _where(location[:-1]), f'unknown field "{location[-1]}"'
    if kind in ('model_type', 'model_attributes_type'):
        return _where(location), 'expected an object'
    if kind == 'value_error':
        return _where(location), str(error.get('ctx', {}).get('error', error['msg']))
    return _where(location), f'unexpected value {error["input"]!r}'


def _file_error(source: str, error: ValidationError) -> RotationFileError:
    messages = [_message(details) for details in error.errors(include_url=False)]
    # Another format's fields mean nothing to us: its version is the only thing worth saying.
    messages = [m for m in messages if m[0] == 'format'] or messages
    return RotationFileError(f'{source}: ' + '; '.join(f'{where}: {what}' for where, what in messages))


# Conversion ----------------------------------------------------------------------------------------


def to_document(rotation: Rotation) -> dict[str, Any]:
    """The JSON-ready content of a rotation's state file."""
    return {
        'comment': MARKER,
        'format': FORMAT_VERSION,
        'client': rotation.client,
        'domain': rotation.domain,
        'overlap_seconds': int(rotation.overlap.total_seconds()),
        'selectors': {
            e.selector: {
                'algorithm': e.algorithm.value,
                'fingerprint': e.fingerprint,
                'public_txt': e.public_txt,
                'state': e.state.value,
                'retire_after': None if e.retire_after is None else format_time(e.retire_after),
                'history': [
                    {
                        'at': format_time(t.at),
                        'from': None if t.from_state is None else t.from_state.value,
                        'to': t.to_state.value,
                        'reason': t.reason,
                    }
                    for t in e.history
                ],
            }
            for e in rotation.entries
        },
    }


def dumps(rotation: Rotation) -> str:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(to_document(rotation), sort_keys=True, indent=2, ensure_ascii=True) + '\n'


def from_document(data: Mapping[str, Any], *, source: str = 'rotation state') -> Rotation:
    """A rotation from the parsed file; :class:`RotationFileError` names ``source`` and every bad field."""
    try:
        document = RotationDocument.model_validate(data)
    except ValidationError as error:
        raise _file_error(source, error) from None
    entries = [
        SelectorEntry(
            selector=name,
            algorithm=record.algorithm,
            public_txt=record.public_txt,
            fingerprint=record.fingerprint,
            state=record.state,
            retire_after=record.retire_after,
            history=[Transition(t.at, t.from_state, t.to, t.reason) for t in record.history],
        )
        for name, record in document.selectors.items()
    ]
    try:
        overlap = timedelta(seconds=document.overlap_seconds)
        return Rotation(document.client, document.domain, overlap=overlap, entries=entries)
    except (DkimError, ValueError) as error:  # names, and what only the whole rotation can check
        raise RotationFileError(f'{source}: top level: {error}') from None


def loads(text: str, *, source: str = 'rotation state') -> Rotation:
    """Parse the text of a state file."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RotationFileError(f'{source}: invalid JSON: {error}') from None
    return from_document(data, source=source)


# In the key store ------------------------------------------------------------------------------------


def rotation_path(store: KeyStore, client: str, domain: str) -> Path:
    """``<root>/<client>/<domain>/rotation.json``."""
    return store.domain_dir(client, domain) / FILE_NAME


def load_rotation(store: KeyStore, client: str, domain: str) -> Rotation:
    """Load the domain's rotation state; an empty one if there is no state file yet."""
    path = rotation_path(store, client, domain)
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        return Rotation(client, domain)
    except OSError as error:
        raise RotationFileError(f'cannot read {path}: {error.strerror}') from None
    rotation = loads(text, source=str(path))
    if (rotation.client, rotation.domain) != (check_client(client), check_domain(domain)):
        raise RotationFileError(
            f'{path}: holds the rotation of {rotation.domain} ({rotation.client}), '
            f'not of {check_domain(domain)} ({client})'
        )
    return rotation


def save_rotation(store: KeyStore, rotation: Rotation) -> Path:
    """Write the state atomically (0644, in the domain's 0700 directory); returns the path."""
    store.prepare_domain_dir(rotation.client, rotation.domain)
    path = rotation_path(store, rotation.client, rotation.domain)
    _fs.atomic_write(path, dumps(rotation).encode('utf-8'), _fs.PUBLIC_FILE_MODE)
    return path


@contextlib.contextmanager
def rotation_lock(store: KeyStore, client: str, domain: str, *, timeout: float = 10.0) -> Iterator[None]:
    """Hold an exclusive lock on the domain's rotation while loading, changing and saving it.

    Raises:
        DkimError: another process held the lock for longer than ``timeout`` seconds.
    """
    directory = store.prepare_domain_dir(client, domain)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, _fs.PRIVATE_FILE_MODE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    raise DkimError(
                        f'the rotation of {domain} ({client}) is locked by another process; try again later'
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
