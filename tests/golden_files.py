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


MODULES = 'terraform/modules/'
"""Rendered trees carry byte-identical copies of terraform/modules/: compared with the repository, not stored."""


def expected_files(example: Path) -> dict[str, bytes]:
    """The golden files of an example, plus the module copies its render must contain (from terraform/modules)."""
    golden = GOLDEN / example.stem
    files = {str(path.relative_to(golden)): path.read_bytes() for path in sorted(golden.rglob('*')) if path.is_file()}
    modules = [path for path in files if path == 'terraform/modules.txt']
    for listing in modules:
        for module in files.pop(listing).decode().split():
            for path in sorted((ROOT / 'terraform' / 'modules' / module).rglob('*')):
                if path.is_file():
                    files[str(path.relative_to(ROOT))] = path.read_bytes()
    return files


def update() -> None:
    for stale in sorted(set(GOLDEN.iterdir()) - {GOLDEN / example.stem for example in EXAMPLES}):
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
        print(f'removed {stale.relative_to(ROOT)} (no such example)')
    for example in EXAMPLES:
        target = GOLDEN / example.stem
        shutil.rmtree(target, ignore_errors=True)
        files = rendered(example)
        modules = sorted({path[len(MODULES) :].split('/')[0] for path in files if path.startswith(MODULES)})
        if modules:
            files = {path: content for path, content in files.items() if not path.startswith(MODULES)}
            files['terraform/modules.txt'] = ('\n'.join(modules) + '\n').encode()
        for path, content in files.items():
            destination = target / path
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(content)
        print(f'updated {target.relative_to(ROOT)}')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--update', action='store_true', required=True)
    parser.parse_args()
    update()
