"""Generation speed: `aistarter new` against the raw engines rendering the same template with the same context.

Like for like: the raw engines get exactly the answers aistarter hands them (`render.engine_answers`) through their own
CLIs (copier `--data-file`, cookiecutter `--config-file` with `default_context`), and the template's Jinja extension
computes the blueprint inside each engine, as it does under `aistarter new`; the hooks and copier's tasks are off, as
for aistarter's own engine call. So the difference is what aistarter adds around rendering: parsing and validating
the answers, the staging folder, vendoring the infra library and the first git commit. Every contender runs as a fresh
subprocess, interleaved round-robin so drift hits all of them alike.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from .common import BENCH_DIR, BenchError, log, median, rnd

# The biggest combination the questionnaire allows: every optional subsystem on, most providers, a GPU pool.
COMBINATIONS: dict[str, list[str]] = {
    "default": [],
    "biggest": [
        "use_case=agents",
        "providers=openai,anthropic,gemini,local",
        "self_hosted=large",
        "vector_store=pgvector",
        "task_queue=celery",
        "observability=langfuse",
        "usage_billing=stripe",
        "streaming=websocket",
        "cloud=gcp",
    ],
}
GOAL_RATIO = 1.25
GOAL_DEFAULT_SECONDS = 1.0
PROFILE_TXT = BENCH_DIR / "profile-generation.txt"


def _tool(name: str, module: str) -> list[str]:
    # The console script a user types when it sits next to this interpreter; `python -m` otherwise.
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


def _answers(sets: list[str]) -> tuple[dict[str, Any], str]:
    """The answers as aistarter hands them to an engine, and the project's slug."""
    try:
        from aistarter.answers import parse_set_options, validate
        from aistarter.render import engine_answers
    except ImportError as exc:
        raise BenchError(f"aistarter is not importable ({exc}); run `pip install -e '.[dev]'` from the repo root"
                         ) from exc
    answers = validate(parse_set_options(sets))
    return engine_answers(answers), answers.project_slug


def _named(sets: list[str]) -> list[str]:
    """`aistarter new DIR` names the project after DIR; pin the name the raw engines get (the default one)."""
    if any(item.startswith("project_name=") for item in sets):
        return sets
    return [f"project_name={_answers(sets)[0]['project_name']}", *sets]


def _template_dir() -> Path:
    from aistarter.render import template_dir

    return template_dir()


def _commands(sets: list[str], work: Path, template: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv with {dest} placeholder, output subpath of the project inside dest)."""
    context, slug = _answers(sets)
    copier_data = work / "copier-data.yml"
    copier_data.write_text(yaml.safe_dump(context, sort_keys=False), encoding="utf-8")
    cc_config = work / "cookiecutter-config.yml"
    # cookiecutter's user config also fixes where replays go; keep them inside the work folder.
    cc_config.write_text(yaml.safe_dump({"default_context": context, "replay_dir": str(work / "replay"),
                                         "cookiecutters_dir": str(work / "cookiecutters")}, sort_keys=False),
                         encoding="utf-8")
    set_args = [arg for item in _named(sets) for arg in ("--set", item)]
    aistarter = _tool("aistarter", "aistarter")
    return {
        "aistarter_copier": ([*aistarter, "new", "{dest}", "--no-input", *set_args], ""),
        "copier": ([*_tool("copier", "copier"), "copy", "--data-file", str(copier_data), "--defaults", "--overwrite",
                    "--trust", "--skip-tasks", "--quiet", str(template), "{dest}"], ""),
        "aistarter_cookiecutter": ([*aistarter, "new", "{dest}", "--no-input", "--engine", "cookiecutter", *set_args],
                                   ""),
        # The same options aistarter passes to cookiecutter(): conditional folders render to their parent's
        # name, which needs overwrite_if_exists; no hooks. copier writes into {dest} itself (_subdirectory).
        "cookiecutter": ([*_tool("cookiecutter", "cookiecutter"), "--no-input", "--config-file", str(cc_config),
                          "--overwrite-if-exists", "--accept-hooks", "no", "-o", "{dest}", str(template)], slug),
    }


def _run_once(argv: list[str], dest: Path, env: dict[str, str] | None = None) -> float:
    cmd = [a.replace("{dest}", str(dest)) for a in argv]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise BenchError(f"`{' '.join(cmd[:4])} ...` failed (exit {proc.returncode}): {tail[0]}")
    return elapsed


def _same_tree(a: Path, b: Path) -> bool:
    """Byte-identical apart from what only aistarter adds (.git, the vendored infra library) and copier's answers
    file, which only a direct `copier copy` writes (for `copier update`)."""
    skip = {".git", "aistarter_infra", ".copier-answers.yml"}

    def files(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for p in root.rglob("*")
                if p.is_file() and not skip.intersection(p.relative_to(root).parts)}

    fa, fb = files(a), files(b)
    if fa != fb:
        return False
    match, mismatch, errors = filecmp.cmpfiles(a, b, sorted(fa), shallow=False)
    return not mismatch and not errors


def _no_git_env() -> dict[str, str] | None:
    """PATH without git: aistarter then skips the first commit, which isolates git's cost without touching aistarter.

    Every PATH folder holding a git is dropped (/bin is often /usr/bin); the contenders are started by absolute path.
    None when git is not installed.
    """
    if not shutil.which("git"):
        return None
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not (Path(p) / "git").exists())
    return None if shutil.which("git", path=env["PATH"]) else env


def _import_seconds(module: str, runs: int) -> float | None:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
        if proc.returncode != 0:
            return None
        times.append(time.perf_counter() - start)
    return median(times)


def _profile(sets: list[str], work: Path) -> str | None:
    """pyinstrument text profile of one `aistarter new` (only when a goal is missed)."""
    pyinstrument = Path(sys.executable).parent / "pyinstrument"
    if not pyinstrument.exists():
        return None
    dest = work / "profiled"
    set_args = [arg for item in _named(sets) for arg in ("--set", item)]
    # The default engine (copier), with copier's own frames shown: that is where most of the time goes.
    proc = subprocess.run([str(pyinstrument), "-i", "0.001", "-r", "text", "--show", "*/copier/_main.py", "-m",
                           "aistarter", "new", str(dest), "--no-input", *set_args],
                          capture_output=True, text=True)
    shutil.rmtree(dest, ignore_errors=True)
    return proc.stdout if proc.returncode == 0 else None


def goals(results: dict[str, Any]) -> dict[str, Any]:
    """Issue 8's generation goals, one per engine ratio (worst combination) and one for the default's time."""
    combos = results.get("combinations", {})
    out: dict[str, Any] = {}
    for engine in ("copier", "cookiecutter"):
        ratios = [row.get(f"ratio_{engine}") for row in combos.values()]
        worst = None if None in ratios or not ratios else max(ratios)
        out[f"ratio_{engine}"] = {"text": f"aistarter <= {GOAL_RATIO}x raw {engine}", "met": None if worst is None
                                  else worst <= GOAL_RATIO, "detail": f"worst {worst}x"}
    default = combos.get("default", {}).get("median_s", {}).get("aistarter_copier")
    out["default_seconds"] = {"text": f"default project < {GOAL_DEFAULT_SECONDS} s", "met": None if default is None
                              else default < GOAL_DEFAULT_SECONDS, "detail": f"{default} s"}
    return out


def run(runs: int = 7, warmup: int = 1) -> dict[str, Any]:
    template = _template_dir()
    results: dict[str, Any] = {"runs": runs, "warmup": warmup, "template": template.name, "combinations": {}}
    with tempfile.TemporaryDirectory(prefix="aistarter-bench-gen-") as tmp:
        work = Path(tmp)
        for combo, sets in COMBINATIONS.items():
            combo_dir = work / combo
            combo_dir.mkdir()
            commands = _commands(sets, combo_dir, template)
            names = list(commands)
            times: dict[str, list[float]] = {n: [] for n in names}
            errors: dict[str, str] = {}
            outputs: dict[str, Path] = {}
            for i in range(warmup + runs):
                # Rotate the order every round so no contender always runs right after another.
                order = names[i % len(names):] + names[:i % len(names)]
                for name in order:
                    if name in errors:
                        continue
                    argv, sub = commands[name]
                    dest = combo_dir / f"{name}-{i}"
                    try:
                        elapsed = _run_once(argv, dest)
                    except BenchError as exc:
                        errors[name] = str(exc)
                        log(f"generation {combo}/{name}: {exc}")
                        continue
                    if i >= warmup:
                        times[name].append(elapsed)
                    if name not in outputs:
                        outputs[name] = dest / sub if sub else dest
                    else:
                        shutil.rmtree(dest, ignore_errors=True)
            row: dict[str, Any] = {"sets": sets, "median_s": {}, "all_s": {}, "errors": errors}
            for name in names:
                row["median_s"][name] = rnd(median(times[name]), 4)
                row["all_s"][name] = [round(t, 4) for t in times[name]]
            for engine in ("copier", "cookiecutter"):
                ours, raw = row["median_s"].get(f"aistarter_{engine}"), row["median_s"].get(engine)
                row[f"ratio_{engine}"] = rnd(ours / raw, 3) if ours and raw else None
                a, b = outputs.get(f"aistarter_{engine}"), outputs.get(engine)
                row[f"same_output_{engine}"] = _same_tree(a, b) if a and b else None
            results["combinations"][combo] = row
            log(f"generation {combo}: " + ", ".join(f"{n} {row['median_s'][n]}s" for n in names))

        # Where aistarter's extra time goes: interpreter + imports, and the first git commit.
        breakdown: dict[str, Any] = {
            "import_aistarter_cli_s": rnd(_import_seconds("aistarter.cli", runs), 4),
            "import_copier_s": rnd(_import_seconds("copier", runs), 4),
            "import_cookiecutter_main_s": rnd(_import_seconds("cookiecutter.main", runs), 4),
            "python_startup_s": rnd(_import_seconds("sys", runs), 4),
        }
        no_git = _no_git_env()
        if no_git is not None:
            cmds = _commands([], work / "default", template)
            argv = cmds["aistarter_cookiecutter"][0]
            with_git, without_git = [], []
            for i in range(runs):
                with_git.append(_run_once(argv, work / f"git-{i}"))
                without_git.append(_run_once(argv, work / f"nogit-{i}", env=no_git))
            breakdown["aistarter_cookiecutter_default_without_git_s"] = rnd(median(without_git), 4)
            breakdown["first_git_commit_s"] = rnd((median(with_git) or 0) - (median(without_git) or 0), 4)
        results["breakdown"] = breakdown

        results["goals"] = goals(results)
        if not all(g["met"] for g in results["goals"].values()):
            profile = _profile([], work)
            if profile:
                PROFILE_TXT.write_text(profile, encoding="utf-8")
                results["profile"] = PROFILE_TXT.name
    return results
