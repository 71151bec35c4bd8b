"""Render + validate in one call, for `aistarter infra render DIR`, CI and `python -m aistarter_infra`.

    python -m aistarter_infra infra/app --out build/infra            # render every stack, validate, write YAML
    python -m aistarter_infra infra/app --stack dev --no-checkov      # schema + GPU checks only
Exit status 0 when every stack passes, 1 when a check fails, 2 on a usage or config error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import ConfigError, config_from_mapping
from .render import (
    SECRET_PLACEHOLDER,
    RenderError,
    RenderResult,
    default_platform_outputs,
    read_program,
    render_program,
    stacks_of,
    write_render,
    write_resources,
)
from .validate import (
    DEFAULT_K8S_VERSION,
    ValidationReport,
    pools_from_app_config,
    pools_from_platform_outputs,
    validate_manifests,
)


def gpu_pools_for(program_dir: Path, stack: str,
                  platform_outputs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The GPU pool(s) an app stack targets: from its own config (cloud=existing) or the platform outputs."""
    project, raw = read_program(program_dir, stack)
    prefix = f"{project}:"
    values = {k[len(prefix):]: v for k, v in raw.items()
              if k.startswith(prefix) and not (isinstance(v, dict) and set(v) == {"secure"})}
    if "api" not in values:
        return []
    cfg = config_from_mapping(values | {"project": "render"})
    if cfg.gpu is None:
        return []
    if cfg.cloud == "existing":
        pools = pools_from_app_config(cfg)
    else:
        pools = pools_from_platform_outputs(platform_outputs or default_platform_outputs(cfg.cloud),
                                            cfg.gpu.gpus_per_node)
    # Taints the cloud adds by itself (AKS spot) are declared as extra tolerations: the pool carries them.
    for t in cfg.gpu.extra_tolerations:
        pools[0]["taints"].append({"key": t.key, "value": t.value, "effect": t.effect})
    return pools


def render_and_validate(program_dir: str | Path, out_dir: str | Path | None = None,
                        stacks: Sequence[str] | None = None, platform_outputs: dict[str, Any] | None = None,
                        checkov: bool = True, k8s_version: str = DEFAULT_K8S_VERSION,
                        ) -> list[tuple[RenderResult, ValidationReport]]:
    """Render each stack of a program under mocks, write it under `out_dir`, and validate it."""
    program_dir = Path(program_dir)
    results = []
    for stack in stacks or stacks_of(program_dir):
        result = render_program(program_dir, stack, platform_outputs=platform_outputs)
        if out_dir is not None:
            target = write_render(result, out_dir)
        report = validate_manifests(result.manifests, gpu_pools_for(program_dir, stack, platform_outputs),
                                    k8s_version=k8s_version, checkov=checkov)
        if out_dir is not None:
            (target / "validation.txt").write_text(report.summary() + "\n")
        results.append((result, report))
    if not results:
        raise RenderError(f"no Pulumi.<stack>.yaml in {program_dir}")
    return results


def render_platform_resources(platform_dir: Path, out_dir: Path | None, stack: str = "dev") -> dict[str, Any]:
    """Render the platform stack under mocks; write `<out>/platform/resources.json` (secrets masked) and
    `outputs.json` (secret outputs masked). Returns the outputs unmasked, for the app stack's StackReference:
    under mocks they hold placeholders only, never a real secret."""
    from .platform.program import SECRET_OUTPUT_NAMES
    from .platform.render import render_platform_dir

    try:
        result = render_platform_dir(platform_dir, stack)
    except ModuleNotFoundError as exc:
        raise ImportError(f"rendering {platform_dir} needs {exc.name}: pip install -r "
                          f"{platform_dir / 'requirements.txt'}") from None
    if out_dir is not None:
        write_resources(result.resources, out_dir / "platform" / "resources.json")
        shown = {k: (SECRET_PLACEHOLDER if k in SECRET_OUTPUT_NAMES else v) for k, v in result.outputs.items()}
        (out_dir / "platform" / "outputs.json").write_text(json.dumps(shown, indent=1, sort_keys=True) + "\n")
    print(f"== platform / {stack}: {len(result.resources)} resources")
    return dict(result.outputs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aistarter_infra", description=__doc__.split("\n")[0])
    parser.add_argument("program_dir", type=Path, help="a Pulumi program directory, e.g. infra/app")
    parser.add_argument("--out", type=Path, help="write <out>/<stack>/manifests.yaml, helm/*.yaml, summary.json")
    parser.add_argument("--stack", action="append", help="stack name (default: every Pulumi.<stack>.yaml)")
    parser.add_argument("--platform-outputs", type=Path, help="JSON file with the platform stack's outputs")
    parser.add_argument("--k8s-version", default=DEFAULT_K8S_VERSION)
    parser.add_argument("--no-checkov", action="store_true", help="skip checkov (schemas and GPU checks still run)")
    parser.add_argument("--platform-dir", type=Path,
                        help="the platform stack (infra/platform): render it first, write <out>/platform/"
                             "resources.json, and render the app stack against its outputs")
    args = parser.parse_args(argv)
    try:
        outputs = json.loads(args.platform_outputs.read_text()) if args.platform_outputs else None
        if args.platform_dir is not None:
            outputs = render_platform_resources(args.platform_dir, args.out)
        results = render_and_validate(args.program_dir, args.out, args.stack, outputs, not args.no_checkov,
                                      args.k8s_version)
    except (RenderError, ConfigError, OSError, json.JSONDecodeError, ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out is not None and results:
        # The default stack's resources as {type, name, inputs}: what tests and reviewers read.
        app = next((r for r, _ in results if r.stack == "dev"), results[0][0])
        write_resources(app.resources, args.out / "app" / "resources.json")
    ok = True
    for result, report in results:
        print(f"== {result.project} / {result.stack}: {result.resource_count} resources {result.kinds()}")
        print(report.summary())
        ok = ok and report.ok and (report.checkov is not None or args.no_checkov)
    return 0 if ok else 1
