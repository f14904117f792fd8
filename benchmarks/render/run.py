"""Benchmark: validate + render a large spec, against only parsing the same YAML with libyaml.

For each scale (default 1 and 10; scale 1 = 1,000 sending IPs, 500 sending domains, 60 hosts)
it generates a synthetic valid spec (``synth.py``) and measures, best of N with
``time.perf_counter`` and the garbage collector enabled as usual:

* parse-only: ``yaml.load(text, Loader=yaml.CSafeLoader)``, the baseline of the project goal, with the cyclic
  GC paused around it exactly as ``parse_spec``/``render_files`` pause it around their own steps;
* validate+render: ``parse_spec(text, as_of=...)`` then ``render_files(spec)`` in memory;
* render to disk: ``render(spec, tmpdir)`` (reported, not part of the ratios).

Each run also records its CPU time (``time.process_time``, user + system), reported as the least of the runs: on a
loaded machine it varies less than the wall-clock time.

Goals: validate+render <= 3x parse-only at each scale, and validate+render at 10x <= 11x
its time at 1x. The breakdown per stage is taken from the same runs by wrapping the
package's internal functions with timers at run time (the package files are not changed);
``--no-breakdown`` runs the public API unwrapped. GC time is measured with ``gc.callbacks``.

    python benchmarks/render/run.py                 # table
    python benchmarks/render/run.py --json          # machine-readable
    python benchmarks/render/run.py --profile       # cProfile of one validate+render at scale 1
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import hashlib
import inspect
import io
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth

import mailinfra_iac
from mailinfra_iac import api, validation
from mailinfra_iac.batch import gc_paused
from mailinfra_iac.loader import yaml_source
from mailinfra_iac.render import RendererRegistry, inventory

AS_OF = synth.AS_OF
PARSE_GOAL = 3.0
SCALING_GOAL = 11.0
STAGES = [
    ('compose', 'libyaml composes the node tree (C parser, Python node objects)'),
    ('build', 'loader: plain data from the node tree (parse_source minus compose)'),
    ('pydantic', 'validation.build_model (Deployment.model_validate)'),
    ('facts', 'facts.derive'),
    ('checks', 'checks registry run'),
    ('sort', 'sort_problems'),
]
"""Fixed stages; one ``render:<name>`` stage per renderer follows, then ``other``."""
SUBSTAGES = {'to_yaml': ('render:inventory', 'of which inventory.to_yaml (YAML emitter)')}


# --- GC accounting ---------------------------------------------------------------------------


class _GcClock:
    """Total time spent in the cyclic garbage collector, from gc.callbacks."""

    def __init__(self) -> None:
        self.total = 0.0
        self.collections = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == 'start':
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start
            self.collections[info['generation']] += 1

    def reset(self) -> None:
        self.total = 0.0
        self.collections = [0, 0, 0]


GC = _GcClock()


# --- Stage timers, installed by wrapping internal functions ------------------------------------


class _Stages:
    def __init__(self) -> None:
        self.time: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.gc: dict[str, float] = {}

    def reset(self) -> None:
        self.time = {}
        self.cpu = {}
        self.gc = {}

    def timed(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            gc_before, cpu, start = GC.total, time.process_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.time[stage] = self.time.get(stage, 0.0) + time.perf_counter() - start
                self.cpu[stage] = self.cpu.get(stage, 0.0) + time.process_time() - cpu
                self.gc[stage] = self.gc.get(stage, 0.0) + GC.total - gc_before

        wrapper.__wrapped__ = function  # type: ignore[attr-defined]
        return wrapper


class _TimedRenderer:
    """A renderer whose output is produced (the generator consumed) inside a stage timer."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer
        self.name = renderer.name
        self.description = renderer.description
        self._render = STAGE.timed(f'render:{renderer.name}', lambda context: list(renderer.render(context)))

    def render(self, context: Any) -> list[Any]:
        return self._render(context)


STAGE = _Stages()


@contextlib.contextmanager
def instrumented() -> Iterator[list[str]]:
    """Wrap the stage functions with timers; yields the stages that could not be hooked."""
    patches: list[tuple[Any, str, Any]] = []
    missing: list[str] = []

    def patch(owner: Any, attribute: str, stage: str, factory: Callable[[Any], Any] | None = None) -> None:
        original = owner.__dict__.get(attribute) if isinstance(owner, type) else getattr(owner, attribute, None)
        if original is None:
            missing.append(stage)
            return
        patches.append((owner, attribute, original))
        setattr(owner, attribute, factory(original) if factory else STAGE.timed(stage, original))

    # parse_source = compose (libyaml, inside _Loader.get_single_node) + build (the Python builder)
    compose = getattr(yaml_source._Loader, 'get_single_node', None)
    if compose is not None:
        patches.append((yaml_source._Loader, 'get_single_node', yaml_source._Loader.__dict__.get('get_single_node')))
        yaml_source._Loader.get_single_node = STAGE.timed('compose', compose)
    else:
        missing.append('compose')
    patch(api, 'parse_source', 'build')
    patch(validation, 'build_model', 'pydantic')
    patch(api, 'derive', 'facts')

    def registry_factory(original: Callable[[], Any]) -> Callable[[], Any]:
        def make() -> Any:
            registry = original()
            registry.run = STAGE.timed('checks', registry.run)
            return registry

        return make

    patch(api, 'default_registry', 'checks', registry_factory)
    patch(api, 'sort_problems', 'sort')

    def renderers_factory(original: Callable[[], Any]) -> Callable[[], Any]:
        def make() -> Any:
            return RendererRegistry([_TimedRenderer(renderer) for renderer in original()])

        return make

    patch(api, 'default_renderers', 'render', renderers_factory)
    patch(inventory, 'to_yaml', 'to_yaml')
    try:
        yield missing
    finally:
        for owner, attribute, original in reversed(patches):
            if original is None:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)


def _exclusive(times: dict[str, float]) -> dict[str, float]:
    """The wrappers nest (build contains compose): make the stages add up. Sub-stages stay inclusive."""
    result = dict(times)
    if 'build' in result:
        result['build'] = max(0.0, result['build'] - result.get('compose', 0.0))
    return result


# --- The measured operations -----------------------------------------------------------------


class SyntheticDkim:
    """Made-up DKIM public keys of the real size, derived from the names: no key store, no disk, no crypto.

    The DNS renderer needs a key source (a real one reads the key store); this one keeps key
    management out of the measurement while the records, zone files and their sizes stay realistic.
    """

    def records(self, domain: str, wanted: list[tuple[str, str]]) -> tuple[list[Any], list[tuple[str, str]]]:
        from mailinfra_iac.dkim.source import DkimTxt

        found = []
        for selector, algorithm in wanted:
            ed25519 = 'ed25519' in algorithm
            key = hashlib.shake_256(f'{domain}/{selector}/{algorithm}'.encode()).digest(32 if ed25519 else 294)
            value = f'v=DKIM1; k={"ed25519" if ed25519 else "rsa"}; p={base64.b64encode(key).decode()}'
            found.append(DkimTxt(selector, algorithm, value))
        return found, []


def _render_kwargs() -> dict[str, Any]:
    """``dkim=`` for a render API that takes a DKIM key source, nothing for one that does not."""
    return {'dkim': SyntheticDkim()} if 'dkim' in inspect.signature(mailinfra_iac.render_files).parameters else {}


RENDER_KWARGS = _render_kwargs()


def parse_only(text: str) -> Any:
    """The baseline, measured like our own loader runs: the cyclic GC paused (``mailinfra_iac.batch.gc_paused``).

    ``parse_spec`` and ``render_files`` pause the collector around each step, so a baseline with the
    collector running would pay for collections (growing with the heap) that the measured side never pays.
    """
    with gc_paused():
        return yaml.load(text, Loader=yaml.CSafeLoader)


def validate_render(text: str) -> tuple[mailinfra_iac.Spec, dict[str, Any]]:
    spec = mailinfra_iac.parse_spec(text, 'synthetic.yml', as_of=AS_OF)
    return spec, mailinfra_iac.render_files(spec, **RENDER_KWARGS)


def validate_render_gc_paused(text: str) -> tuple[mailinfra_iac.Spec, dict[str, Any]]:
    """Diagnostic (--pause-gc): validate+render with the collector paused, as a library could do it.

    Pausing defers, not removes, the work: everything allocated meanwhile sits in the young
    generation, and the first collection after ``gc.enable()`` traverses all of it. That collection
    is forced here, inside the timed call, so the figure includes it (it shows as GC in "other").
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return validate_render(text)
    finally:
        if enabled:
            gc.enable()
            gc.collect(0)


def _fresh_heap() -> None:
    """Start every repetition from the same heap: results of the previous one are gone."""
    gc.collect()


class Budget:
    """The wall-clock budget of the whole run: repetitions stop early (never below one) once it is spent."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + seconds
        self.cut: list[str] = []

    def allows(self, next_run_s: float, reserve_s: float = 0.0) -> bool:
        return time.perf_counter() + next_run_s + reserve_s <= self.deadline


UNLIMITED = Budget(float('inf'))


def best_of(
    repeat: int,
    operation: Callable[[], Any],
    *,
    stages: bool = False,
    budget: Budget = UNLIMITED,
    what: str = '',
    reserve: float = 0.0,
) -> tuple[dict[str, Any], Any]:
    """Run ``operation`` up to ``repeat`` times from a collected heap; the fastest run and the last result."""
    runs: list[dict[str, Any]] = []
    result = None
    for _ in range(repeat):
        fastest = min((run['s'] for run in runs), default=0.0)
        if runs and not budget.allows(fastest, reserve * fastest):
            budget.cut.append(f'{what}: {len(runs)} of {repeat} runs')
            break
        del result  # the previous result must not weigh on the next run's GC
        _fresh_heap()
        GC.reset()
        STAGE.reset()
        cpu, start = time.process_time(), time.perf_counter()
        result = operation()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        gc_total, collections = GC.total, list(GC.collections)  # before anything else can trigger a collection
        run: dict[str, Any] = {'s': elapsed, 'cpu_s': cpu, 'gc_s': gc_total, 'gc_collections': collections}
        if stages:
            exclusive, gc_exclusive, cpu_exclusive = _exclusive(STAGE.time), _exclusive(STAGE.gc), _exclusive(STAGE.cpu)
            top = [key for key in exclusive if key not in SUBSTAGES]
            exclusive['other'] = max(0.0, elapsed - sum(exclusive[key] for key in top))
            gc_exclusive['other'] = max(0.0, gc_total - sum(gc_exclusive.get(key, 0.0) for key in top))
            cpu_exclusive['other'] = max(0.0, cpu - sum(cpu_exclusive.get(key, 0.0) for key in top))
            run['stages_s'] = exclusive
            run['stages_gc_s'] = gc_exclusive
            run['stages_cpu_s'] = cpu_exclusive
        runs.append(run)
    best = min(runs, key=lambda run: run['s'])
    timing = {
        'best': best,
        'all_s': [run['s'] for run in runs],
        'cpu_s': min(run['cpu_s'] for run in runs),
        'all_cpu_s': [run['cpu_s'] for run in runs],
        'runs': len(runs),
        'asked': repeat,
    }
    return timing, result


def render_to_disk(spec: mailinfra_iac.Spec, repeat: int, budget: Budget, what: str) -> dict[str, Any]:
    """``render(spec, dir)``: the in-memory render again, then every file written and fsync'ed."""
    with tempfile.TemporaryDirectory(prefix='mailinfra-bench-') as tmp:
        counter = iter(range(10**6))

        def once() -> Path:
            return mailinfra_iac.render(spec, Path(tmp) / f'out{next(counter)}', **RENDER_KWARGS)

        timing, _ = best_of(repeat, once, budget=budget, what=what)
        return timing


def digest(files: dict[str, Any]) -> str:
    """SHA-256 over every path, mode and content of a render (in path order): equal digests, equal output."""
    total = hashlib.sha256()
    for path, output in sorted(files.items()):
        total.update(f'{path}\0{output.mode:o}\0'.encode() + hashlib.sha256(output.content).digest())
    return total.hexdigest()


def _shape(text: str, spec: mailinfra_iac.Spec, files: dict[str, Any]) -> dict[str, Any]:
    deployment, facts = spec.deployment, spec.facts
    return {
        'ips': len(facts.ips),
        'allocated_ips': sum(1 for ip in facts.ips if ip.allocated),
        'domains': len(deployment.sending_domains),
        'hosts': len(deployment.hosts),
        'streams': len(deployment.streams),
        'zones': len(deployment.dns.zones),
        'yaml_bytes': len(text.encode()),
        'yaml_lines': text.count('\n'),
        'output_files': len(files),
        'output_bytes': sum(len(output.content) for output in files.values()),
        'problems': {
            severity: sum(1 for problem in spec.problems if problem.severity == severity)
            for severity in ('error', 'warning', 'advice')
        },
    }


def measure_scale(
    scale: int,
    repeat: int,
    warmup: int,
    disk_repeat: int,
    breakdown: bool,
    budget: Budget,
    pause_gc: bool = False,
    with_digest: bool = False,
) -> dict[str, Any]:
    operation = validate_render_gc_paused if pause_gc else validate_render
    started = time.perf_counter()
    text = synth.generate(scale)
    generated = time.perf_counter() - started

    for _ in range(warmup):
        _fresh_heap()
        parse_only(text)
        validate_render(text)

    baseline, _ = best_of(repeat, lambda: parse_only(text), budget=budget, what=f'{scale}x parse-only')
    # keep room in the budget for one render to disk (about as long as one validate+render run)
    timing: dict[str, Any] = {
        'budget': budget,
        'what': f'{scale}x validate+render',
        'reserve': 1.0 if disk_repeat else 0.0,
    }
    missing: list[str] = []
    if breakdown:
        with instrumented() as missing:
            full, (spec, files) = best_of(repeat, lambda: operation(text), stages=True, **timing)
    else:
        full, (spec, files) = best_of(repeat, lambda: operation(text), **timing)

    # The last run's result: check the spec has the promised size, then time the render to disk with it.
    shape = _shape(text, spec, files)
    expected = synth.counts(scale)
    if (shape['ips'], shape['domains'], shape['hosts']) != (expected['ips'], expected['domains'], expected['hosts']):
        raise AssertionError(f'synthetic spec of scale {scale} has {shape}, expected {expected}')
    if with_digest:
        shape['digest'] = digest(files)
    del files
    disk = None
    if disk_repeat and budget.allows(full['best']['s']):
        disk = render_to_disk(spec, disk_repeat, budget, f'{scale}x render to disk')
    elif disk_repeat:
        budget.cut.append(f'{scale}x render to disk: skipped')
    del spec
    _fresh_heap()
    return {
        'scale': scale,
        'shape': shape,
        'generate_s': generated,
        'repeat': repeat,
        'warmup': warmup,
        'parse_only': baseline,
        'validate_render': full,
        'render_to_disk': disk,
        'unhooked_stages': missing,
        'ratio_to_parse': full['best']['s'] / baseline['best']['s'],
        'cpu_ratio_to_parse': full['cpu_s'] / baseline['cpu_s'],
        'wall_s': time.perf_counter() - started,
    }


# --- Output ----------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return '-' if seconds is None else f'{seconds * 1000:,.0f}'


def _summary(results: dict[str, Any]) -> list[str]:
    lines = [
        f'{"scale":>5} {"IPs":>6} {"domains":>7} {"hosts":>5} {"YAML KB":>7} | {"parse-only ms":>13} '
        f'{"validate+render ms":>18} {"ratio":>6} {"goal":>5} | {"render() to disk ms":>19}'
    ]
    for item in results['scales']:
        shape = item['shape']
        ratio = item['ratio_to_parse']
        disk = item['render_to_disk']
        lines.append(
            f'{item["scale"]:>4}x {shape["ips"]:>6,} {shape["domains"]:>7,} {shape["hosts"]:>5} '
            f'{shape["yaml_bytes"] / 1024:>7,.0f} | {_ms(item["parse_only"]["best"]["s"]):>13} '
            f'{_ms(item["validate_render"]["best"]["s"]):>18} {ratio:>5.1f}x '
            f'{"ok" if ratio <= PARSE_GOAL else "MISS":>5} | {_ms(disk["best"]["s"] if disk else None):>17}'
        )
    scaling = results.get('scaling')
    if scaling:
        met = 'ok' if scaling['validate_render'] <= SCALING_GOAL else 'MISS'
        lines += [
            '',
            f'validate+render {scaling["to"]}x/{scaling["from"]}x: {scaling["validate_render"]:.1f}x '
            f'(goal <= {SCALING_GOAL:g}x: {met}); '
            f'parse-only {scaling["to"]}x/{scaling["from"]}x: {scaling["parse_only"]:.1f}x',
        ]
    lines += [
        '',
        'CPU time (user + system, least of the runs): '
        + '; '.join(
            f'{item["scale"]}x parse-only {_ms(item["parse_only"]["cpu_s"])} ms, validate+render '
            f'{_ms(item["validate_render"]["cpu_s"])} ms = {item["cpu_ratio_to_parse"]:.1f}x'
            for item in results['scales']
        )
        + (
            f'; validate+render {scaling["to"]}x/{scaling["from"]}x {scaling["validate_render_cpu"]:.1f}x'
            if scaling
            else ''
        ),
    ]
    lines += [
        '',
        'GC share (gc.callbacks, best run): '
        + '; '.join(
            f'{item["scale"]}x parse-only {_share(item["parse_only"]["best"])}, '
            f'validate+render {_share(item["validate_render"]["best"])}'
            for item in results['scales']
        ),
    ]
    return lines


def _breakdown(scales: list[dict[str, Any]]) -> list[str]:
    if not all('stages_s' in item['validate_render']['best'] for item in scales):
        return []
    lines = ['', 'Breakdown of the best validate+render run, ms (of which GC) and its CPU time, ms:']
    lines.append(f'{"stage":<18}' + ''.join(f'{str(item["scale"]) + "x":>18}{"CPU":>8}' for item in scales))
    rows: list[tuple[str, str]] = list(STAGES)
    for item in scales:
        for stage in item['validate_render']['best']['stages_s']:
            if stage.startswith('render:') and stage not in dict(rows):
                rows.append((stage, f'renderer "{stage[7:]}" (its files, serialised)'))
    for sub, (parent, description) in SUBSTAGES.items():
        if parent in dict(rows):
            rows.insert([name for name, _ in rows].index(parent) + 1, (sub, description))
    rows.append(('other', 'everything outside the stages (Spec, RenderContext, registry, sorting files)'))
    for stage, description in rows:
        label = f'  {stage}' if stage in SUBSTAGES else stage
        row = f'{label:<18}'
        for item in scales:
            best = item['validate_render']['best']
            cell = f'{_ms(best["stages_s"].get(stage))} ({_ms(best["stages_gc_s"].get(stage))})'
            row += f'{cell:>18}{_ms(best.get("stages_cpu_s", {}).get(stage)):>8}'
        lines.append(f'{row}   {description}')
    lines.append(
        'Stages add up to the total (indented sub-stages are inside their parent). '
        'GC is charged to the stage it interrupted.'
    )
    for item in scales:
        if item['unhooked_stages']:
            hooks = ', '.join(item['unhooked_stages'])
            lines.append(f'  {item["scale"]}x: could not hook {hooks} (counted in other)')
    return lines


def _details(results: dict[str, Any]) -> list[str]:
    lines = ['']
    for item in results['scales']:
        shape = item['shape']
        disk = item['render_to_disk']
        lines.append(
            f'{item["scale"]}x: {shape["streams"]} streams, {shape["zones"]} zones, {shape["allocated_ips"]} allocated '
            f'IPs, {shape["yaml_lines"]:,} YAML lines; output {shape["output_files"]} files, '
            f'{shape["output_bytes"] / 1e6:.1f} MB; problems {shape["problems"]}; runs ms parse '
            f'{[round(s * 1000) for s in item["parse_only"]["all_s"]]}, validate+render '
            f'{[round(s * 1000) for s in item["validate_render"]["all_s"]]}'
            + (f', disk {[round(s * 1000) for s in disk["all_s"]]}' if disk else '')
        )
        if 'digest' in shape:
            lines.append(f'{item["scale"]}x output SHA-256 (paths, modes, contents): {shape["digest"]}')
    if results['budget']['cut']:
        spent = f'time budget of {results["budget"]["seconds"]:g} s spent: '
        lines.append(spent + '; '.join(results['budget']['cut']))
    if results.get('pause_gc'):
        lines.append('DIAGNOSTIC: GC disabled during validate+render (--pause-gc); not the goal measurement')
    if RENDER_KWARGS:
        lines.append('render_files/render called with dkim=SyntheticDkim() (made-up public keys, no key store)')
    env = results['environment']
    lines.append(f'mailinfra-iac {env["package"]}')
    lines.append(
        f'python {env["python"]}, pydantic {env["pydantic"]}, PyYAML {env["pyyaml"]} (libyaml {env["libyaml"]}), '
        f'{env["cpus"]} CPUs, load average {env["loadavg"]}, peak RSS {env["max_rss_mb"]:,.0f} MB, '
        f'wall {results["wall_s"]:.1f} s'
    )
    return lines


def report(results: dict[str, Any]) -> str:
    return '\n'.join(_summary(results) + _breakdown(results['scales']) + _details(results))


def _share(run: dict[str, Any]) -> str:
    return f'{run["gc_s"] / run["s"]:.0%} ({_ms(run["gc_s"])} ms, gen2 x{run["gc_collections"][2]})'


def _package_state() -> str:
    """The commit of the package measured, and whether its files had uncommitted changes."""
    import subprocess

    root = Path(mailinfra_iac.__file__).resolve().parent
    try:
        head = subprocess.run(
            ['git', 'rev-parse', '--short', 'HEAD'], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ['git', 'status', '--porcelain', '--', '.'], cwd=root, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return f'{mailinfra_iac.__version__} (no git)'
    return f'{mailinfra_iac.__version__} at {head}' + (f' + {len(dirty)} uncommitted file(s)' if dirty else '')


def environment() -> dict[str, Any]:
    import pydantic

    return {
        'package': _package_state(),
        'python': platform.python_version(),
        'implementation': platform.python_implementation(),
        'pydantic': pydantic.VERSION,
        'pyyaml': yaml.__version__,
        'libyaml': yaml.__with_libyaml__,
        'cpus': os.cpu_count(),
        'loadavg': [round(value, 2) for value in os.getloadavg()],
        'gc_threshold': gc.get_threshold(),
        'max_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'as_of': AS_OF.isoformat(),
    }


def profile(scale: int, top: int) -> str:
    import cProfile
    import pstats

    text = synth.generate(scale)
    validate_render(text)  # warm-up
    _fresh_heap()
    profiler = cProfile.Profile()
    profiler.enable()
    validate_render(text)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs()
    stats.sort_stats('cumulative').print_stats(top)
    stats.sort_stats('tottime').print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Benchmark validate+render against a libyaml parse.')
    parser.add_argument('--scales', default='1,10', help='comma-separated scales (default 1,10)')
    parser.add_argument('--repeat', type=int, default=None, help='runs per measurement at every scale (best of)')
    parser.add_argument('--repeat-1x', type=int, default=5, help='runs at scale 1 (default 5)')
    parser.add_argument('--repeat-10x', type=int, default=3, help='runs at scales above 1 (default 3)')
    parser.add_argument('--quick', action='store_true', help='smoke run: best of 2 at 1x, 1 run at 10x, no disk at 10x')
    parser.add_argument(
        '--warmup',
        type=int,
        default=None,
        help='warm-up runs per scale (default 1 before the first scale, 0 after: same code, warm)',
    )
    parser.add_argument(
        '--disk-repeat',
        type=int,
        default=None,
        help='runs of render() to disk (default 3 at scale 1, 1 above; 0 skips)',
    )
    parser.add_argument('--no-breakdown', action='store_true', help='do not wrap internal functions with timers')
    parser.add_argument(
        '--budget',
        type=float,
        default=90.0,
        help='wall-clock seconds for the whole run: repetitions stop early (never below one) '
        'once it is spent (default 90)',
    )
    parser.add_argument(
        '--pause-gc',
        action='store_true',
        help='diagnostic, not the goal measurement: disable the collector during validate+render '
        '(the parse-only baseline keeps it), to show what pausing GC in the library would give',
    )
    parser.add_argument(
        '--digest',
        action='store_true',
        help="also print a SHA-256 over every path, mode and content of each scale's render (to compare two trees)",
    )
    parser.add_argument('--json', action='store_true', help='print the results as JSON')
    parser.add_argument('--profile', action='store_true', help='print a cProfile of one validate+render and exit')
    parser.add_argument('--profile-scale', type=int, default=1)
    parser.add_argument('--top', type=int, default=30, help='rows of the profile (default 30)')
    args = parser.parse_args(argv)

    if args.profile:
        print(profile(args.profile_scale, args.top))
        return 0

    gc.callbacks.append(GC)
    started = time.perf_counter()
    budget = Budget(args.budget)
    scales = [int(value) for value in args.scales.split(',') if value.strip()]
    results: dict[str, Any] = {'as_of': AS_OF.isoformat(), 'scales': [], 'pause_gc': args.pause_gc}
    for position, scale in enumerate(scales):
        warmup = args.warmup if args.warmup is not None else (1 if position == 0 else 0)
        repeat = args.repeat or (args.repeat_1x if scale == 1 else args.repeat_10x)
        disk = args.disk_repeat if args.disk_repeat is not None else (3 if scale == 1 else 1)
        if args.quick:
            repeat, disk = (2, 2) if scale == 1 else (1, 0)
        item = measure_scale(scale, repeat, warmup, disk, not args.no_breakdown, budget, args.pause_gc, args.digest)
        results['scales'].append(item)
    by_scale = {item['scale']: item for item in results['scales']}
    if 1 in by_scale and len(by_scale) > 1:
        top = max(by_scale)

        def growth(measure: str) -> float:
            return by_scale[top][measure]['best']['s'] / by_scale[1][measure]['best']['s']

        results['scaling'] = {
            'from': 1,
            'to': top,
            'validate_render': growth('validate_render'),
            'parse_only': growth('parse_only'),
            'validate_render_cpu': by_scale[top]['validate_render']['cpu_s'] / by_scale[1]['validate_render']['cpu_s'],
        }
    results['goals'] = {
        'ratio_to_parse_max': PARSE_GOAL,
        'scaling_max': SCALING_GOAL,
        'ratio_met': {str(item['scale']): item['ratio_to_parse'] <= PARSE_GOAL for item in results['scales']},
        'scaling_met': results['scaling']['validate_render'] <= SCALING_GOAL if 'scaling' in results else None,
    }
    results['budget'] = {'seconds': args.budget, 'cut': budget.cut}
    results['wall_s'] = time.perf_counter() - started
    results['environment'] = environment()
    gc.callbacks.remove(GC)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        print(report(results))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
