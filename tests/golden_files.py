"""Golden files: the render of every bundled example, compared byte for byte.

Regenerate only on purpose with ``script/update-golden`` and review the diff.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from mailinfra_iac import load_spec, render_files

from .conftest import AS_OF, ROOT, TEST_DKIM

GOLDEN = ROOT / 'tests' / 'golden'
EXAMPLES = sorted((ROOT / 'examples').glob('*.yml'))


def rendered(example: Path) -> dict[str, bytes]:
    spec = load_spec(example.relative_to(ROOT), as_of=AS_OF)
    return {path: output.content for path, output in render_files(spec, dkim=TEST_DKIM).items()}


def update() -> None:
    for example in EXAMPLES:
        target = GOLDEN / example.stem
        shutil.rmtree(target, ignore_errors=True)
        for path, content in rendered(example).items():
            destination = target / path
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(content)
        print(f'updated {target.relative_to(ROOT)}')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--update', action='store_true', required=True)
    parser.parse_args()
    update()
