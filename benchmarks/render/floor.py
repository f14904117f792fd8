"""What the 1x goal (validate+render <= 3x parse-only) would cost at the least: measured floors, CPU time.

Prints, best of N in one process (``time.process_time``), at one scale of the synthetic spec:

* parse-only (the goal's baseline) against ``parse_spec`` alone (loading, validation, facts, checks: no render);
* the inventory's variables (the bulk of the output) written by our YAML emitter, by libyaml's C emitter
  (``yaml.dump(Dumper=yaml.CSafeDumper)``, other bytes: what a C emitter costs for the same data) and by orjson
  (JSON, the fastest serialiser in the requirements), with the bytes each writes;
* the whole render (``render_files``) for comparison.

    python benchmarks/render/floor.py [--scale 1] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run
import synth

import mailinfra_iac
from mailinfra_iac.batch import gc_paused
from mailinfra_iac.render import RenderContext
from mailinfra_iac.render.inventory import InventoryRenderer
from mailinfra_iac.render.serialise import Shared, to_yaml


def cpu(repeat: int, operation: Callable[[], Any]) -> tuple[float, Any]:
    """Least CPU time of ``repeat`` runs, each from a collected heap with the collector paused, and a result."""
    best, result = float('inf'), None
    for _ in range(repeat):
        result = None
        gc.collect()
        with gc_paused():
            start = time.process_time()
            result = operation()
            best = min(best, time.process_time() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scale', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args(argv)
    text = synth.generate(args.scale)
    run.validate_render(text)  # warm-up

    parse, _ = cpu(args.repeat, lambda: run.parse_only(text))
    spec_s, spec = cpu(args.repeat, lambda: mailinfra_iac.parse_spec(text, 'synthetic.yml', as_of=synth.AS_OF))
    render_s, files = cpu(args.repeat, lambda: mailinfra_iac.render_files(spec, **run.RENDER_KWARGS))
    output = sum(len(file.content) for file in files.values())
    del files

    context = RenderContext(spec.deployment, spec.facts, spec.name, {}, run.SyntheticDkim())
    inventory = InventoryRenderer()
    variables = [inventory.host_vars(context, host) for host in spec.deployment.hosts]
    variables = [value for value in variables if value]
    fresh: list[Shared] = []

    def ours() -> int:
        fresh.append(Shared())  # the render's shared objects, not yet written, and a cold string cache
        for value, _ in context.shared._yaml.values():
            fresh[-1].add(value)
        return sum(len(to_yaml(value, '', fresh[-1])) for value in variables)

    rows = [
        ('our YAML emitter (Python)', *cpu(args.repeat, ours)),
        (
            'libyaml C emitter (CSafeDumper)',
            *cpu(
                min(args.repeat, 2),
                lambda: sum(
                    len(yaml.dump(value, Dumper=yaml.CSafeDumper, sort_keys=True).encode()) for value in variables
                ),
            ),
        ),
        (
            'orjson, indented JSON',
            *cpu(
                args.repeat,
                lambda: sum(
                    len(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)) for value in variables
                ),
            ),
        ),
    ]
    print(f'scale {args.scale}x, CPU ms, least of {args.repeat}:')
    print(f'  parse-only (goal baseline)        {parse * 1000:8.0f}')
    print(f'  parse_spec (no render)            {spec_s * 1000:8.0f}   {spec_s / parse:.1f}x parse-only')
    label = f'render_files ({output / 1e6:.1f} MB)'
    print(f'  {label:<32}  {render_s * 1000:8.0f}   {render_s / parse:.1f}x parse-only')
    print(f'  the goal allows for the render    {(3 * parse - spec_s) * 1000:8.0f}')
    print(f'inventory host variables, {len(variables)} hosts:')
    for name, seconds, size in rows:
        print(f'  {name:<32}  {seconds * 1000:8.0f} ms  {size / 1e6:6.1f} MB  {size / 1e6 / seconds:6.0f} MB/s')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
