"""The DNS layer: one ordered list of records derived from the model, and where DKIM keys come from."""

from .keys import DkimSource, KeyStoreDkimSource, MissingDkimKeys, StaticDkimSource
from .records import Record, RecordSet, derive_records

__all__ = [
    'DkimSource',
    'KeyStoreDkimSource',
    'MissingDkimKeys',
    'Record',
    'RecordSet',
    'StaticDkimSource',
    'derive_records',
]
