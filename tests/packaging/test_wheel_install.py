"""The wheels installed in a fresh virtualenv outside the checkout are enough to validate, render and plan.

Both wheels (agent/ and the controller) are built from a copy of the source tree, installed into a new
virtualenv with the dev environment's versions as constraints (pip's configured indexes), and the ``mailinfra``
command of that venv is run from a directory outside the checkout with ``$MAILINFRA_PROJECT`` unset, so the
roles and Terraform modules can only come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from mailinfra_iac import api
from mailinfra_iac.terraform import find_terraform

from ..conftest import AS_OF, BASE, ROOT

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / 'examples' / 'saas-transactional.yml'
VERSION = tomllib.loads((ROOT / 'pyproject.toml').read_text(encoding='utf-8'))['project']['version']
SOURCE_PARTS = ('pyproject.toml', 'setup.py', 'MANIFEST.in', 'README.md', 'mailinfra_iac', 'roles', 'terraform/modules')
JUNK = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info', 'build', 'dist', '.terraform*', '*.tfstate*')


def _copy(parts: tuple[str, ...], source: Path, target: Path) -> None:
    for part in parts:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, symlinks=True, ignore=JUNK)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def _run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, check=False)
    assert done.returncode == 0, f'{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}'
    return done.stdout


def _constraints() -> str:
    """The dev venv's versions of everything, so the fresh venv gets the same third-party releases."""
    pins = {
        dist.metadata['Name'].lower(): dist.version
        for dist in metadata.distributions()
        if dist.metadata['Name'] and not dist.metadata['Name'].lower().startswith('mailinfra')
    }
    return ''.join(f'{name}=={version}\n' for name, version in sorted(pins.items()))


class Venv:
    def __init__(self, root: Path, wheels: list[Path]) -> None:
        self.root = root
        self.wheels = wheels
        self.work = root / 'work'
        self.bin = root / 'venv' / 'bin'

    def env(self, **extra: str) -> dict[str, str]:
        """A clean environment: no checkout on any path, our own key store and HOME."""
        env = {
            'PATH': f'{self.bin}:/usr/local/bin:/usr/bin:/bin',
            'HOME': str(self.root / 'home'),
            'LANG': 'C.UTF-8',
            'MAILINFRA_KEYS_DIR': str(self.root / 'keys'),
            'TF_CLI_CONFIG_FILE': os.devnull,
            'CHECKPOINT_DISABLE': '1',
            'TF_IN_AUTOMATION': '1',
        }
        env.update(extra)
        return env

    def mailinfra(self, *args: str | Path, expect: int = 0, **extra: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.bin / 'mailinfra'), *map(str, args)],
            capture_output=True,
            text=True,
            env=self.env(**extra),
            cwd=self.work,
            check=False,
        )
        assert done.returncode == expect, f'mailinfra {args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}'
        assert 'Traceback' not in done.stderr
        return done


@pytest.fixture(scope='module')
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    root = tmp_path_factory.mktemp('wheel-install')
    assert ROOT not in root.parents
    source = root / 'src'
    _copy(SOURCE_PARTS, ROOT, source)
    shutil.copytree(ROOT / 'agent', source / 'agent', symlinks=True, ignore=JUNK)
    wheels = root / 'wheels'
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check']
    _run(*pip, 'wheel', '-q', '--no-deps', '-w', wheels, source, source / 'agent')
    built = sorted(wheels.glob('*.whl'))
    assert [path.name.split('-')[0] for path in built] == ['mailinfra_agent', 'mailinfra_iac']
    _run(sys.executable, '-m', 'venv', root / 'venv')
    (root / 'constraints.txt').write_text(_constraints(), encoding='utf-8')
    _run(root / 'venv' / 'bin' / 'python', '-m', 'pip', 'install', '-q', '-c', root / 'constraints.txt', *built)
    for directory in ('work', 'home', 'keys'):
        (root / directory).mkdir()
    shutil.copyfile(EXAMPLE, root / 'work' / 'example.yml')
    (root / 'work' / 'static.yml').write_text(BASE, encoding='utf-8')
    yield Venv(root, built)


def test_wheel_carries_roles_and_modules(venv: Venv) -> None:
    wheel = next(path for path in venv.wheels if path.name.startswith('mailinfra_iac-'))
    names = set(zipfile.ZipFile(wheel).namelist())
    for role in sorted(p.name for p in (ROOT / 'roles').iterdir() if p.is_dir()):
        assert f'mailinfra_iac/_data/roles/{role}/meta/main.yml' in names, role
    for module in sorted(p.name for p in (ROOT / 'terraform' / 'modules').iterdir() if p.is_dir()):
        assert f'mailinfra_iac/_data/terraform/modules/{module}/main.tf' in names, module
    assert 'mailinfra_iac/catalogue/isps/gmail.yml' in names
    assert 'mailinfra_iac/catalogue/remediation.yml' in names  # the shaping alerts' remediation paths
    assert not [name for name in names if '__pycache__' in name or '.terraform' in name]
    wheel_metadata = zipfile.ZipFile(wheel).read(f'mailinfra_iac-{VERSION}.dist-info/METADATA').decode()
    assert f'Requires-Dist: mailinfra-agent=={VERSION}' in wheel_metadata
    assert 'Requires-Dist: python-terraform' in wheel_metadata


def test_version_names_the_bundled_data(venv: Venv) -> None:
    out = venv.mailinfra('--version').stdout.splitlines()
    assert out[0] == f'mailinfra-iac {VERSION} (mailinfra-agent {VERSION})'
    assert out[1].startswith('roles and Terraform modules: bundled in the wheel (')
    assert str(venv.root / 'venv') in out[1]
    checkout = venv.mailinfra('--version', MAILINFRA_PROJECT=str(ROOT)).stdout.splitlines()
    assert checkout[1] == f'roles and Terraform modules: {ROOT} (from $MAILINFRA_PROJECT)'


def test_render_from_the_wheel_matches_the_checkout(venv: Venv) -> None:
    assert 'example.yml is valid' in venv.mailinfra('validate', 'example.yml', '--as-of', AS_OF.isoformat()).stdout
    venv.mailinfra('dkim', 'generate', 'example.yml')
    venv.mailinfra('render', 'example.yml', '-o', 'out', '--as-of', AS_OF.isoformat())
    rendered = venv.work / 'out'
    # The same spec and keys, rendered in this process from the checkout: the very same bytes.
    spec = api.load_spec(venv.work / 'example.yml', as_of=AS_OF)  # the spec's file name is in the headers
    expected = api.render_files(spec, dkim=api.keystore_dkim(spec, venv.root / 'keys'))
    got = {path.relative_to(rendered).as_posix(): path for path in rendered.rglob('*') if path.is_file()}
    got.pop('.mailinfra-render', None)
    assert sorted(got) == sorted(expected)
    assert {name for name in got if name.startswith('terraform/modules/')}
    for name, output in expected.items():
        assert got[name].read_bytes() == output.content, name


def test_plan_from_the_wheel(venv: Venv) -> None:
    terraform = find_terraform()
    venv.mailinfra('dkim', 'generate', 'static.yml')
    # A zonefile zone and a static host need no provider plugin: the whole plan runs offline.
    done = venv.mailinfra(
        'plan', 'static.yml', '-o', 'plan', '--as-of', AS_OF.isoformat(), '--terraform', terraform.path
    )
    assert f'running {terraform}' in done.stdout
    assert 'Changes to Outputs:' in done.stdout
    assert (venv.work / 'plan' / 'terraform' / 'plan.tfplan').is_file()
    # The example needs the cloudflare and hcloud providers, which cannot be downloaded here: the
    # documented offline error (docs/install.md), after the render that needs the bundled modules.
    done = venv.mailinfra(
        'plan', 'example.yml', '--terraform', terraform.path, expect=1, HTTPS_PROXY='http://127.0.0.1:9'
    )
    assert done.stderr.startswith('error: provider ')
    assert 'could not be installed: no access to registry.terraform.io — run plan where the registry is reachable' in (
        done.stderr
    )


def test_missing_project_is_a_clear_error(venv: Venv, tmp_path: Path) -> None:
    done = venv.mailinfra(
        'render', 'static.yml', '-o', 'bad', '--as-of', AS_OF.isoformat(), expect=1, MAILINFRA_PROJECT=str(tmp_path)
    )
    assert done.stderr == f'error: MAILINFRA_PROJECT={tmp_path} has no roles/ and terraform/modules/\n'


def test_installed_api_is_typed_for_scripts(venv: Venv, tmp_path: Path) -> None:
    # PEP 561: mypy reads the installed packages' own annotations only if each ships py.typed.
    for wheel in venv.wheels:
        package = wheel.name.split('-')[0]
        assert f'{package}/py.typed' in zipfile.ZipFile(wheel).namelist()
    script = tmp_path / 'user_script.py'
    shutil.copyfile(Path(__file__).parent / 'data' / 'user_script.py', script)
    broken = tmp_path / 'broken_script.py'
    broken.write_text(
        'from mailinfra_iac import load_spec\n\nname: int = load_spec("x.yml").deployment.client.name\n',
        encoding='utf-8',
    )
    mypy = [sys.executable, '-m', 'mypy', '--strict', '--no-incremental', '--python-executable', venv.bin / 'python']
    env = {**venv.env(), 'MYPYPATH': ''}
    done = subprocess.run([*map(str, mypy), str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([*map(str, mypy), str(broken)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert 'Incompatible types in assignment (expression has type "str", variable has type "int")' in done.stdout
