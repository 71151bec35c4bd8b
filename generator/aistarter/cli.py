"""The `aistarter` command: parse, call, print. Decisions and rendering live elsewhere."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from . import __version__, report
from .answers import AnswerError, check_one, load_answers_file, merge, parse_set_options, validate
from .check import STEPS, CheckError, StepResult, as_dicts
from .check import check as check_project
from .decide import decide
from .infra import InfraError, rehearse_infra, render_infra
from .prompts import ask
from .questions import Answers
from .render import ENGINES, RenderError, check_destination, generate, plan
from .summary import answers_file_text, next_commands
from .update import UpdateError
from .update import update as update_project

console = Console()


class _Path(click.Path):
    """A path parameter that refuses NUL bytes with a usage error (the OS would raise ValueError)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and "\x00" in value:
            self.fail(f"{value!r} contains a NUL byte", param, ctx)
        return super().convert(value, param, ctx)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _dir_defaults(directory: Path | None) -> dict[str, Any]:
    """`new DIR` names the project after DIR unless told otherwise."""
    if directory is None:
        return {}
    name = directory.resolve().name
    try:
        check_one("project_name", name)
    except AnswerError as exc:
        raise AnswerError(f"{exc}; the default project_name is DIR's name: pass --set project_name=NAME") from None
    return {"project_name": name}


def _destination_checks(kwargs: dict[str, Any], given: dict[str, Any]) -> dict[str, Callable[[Any], None]]:
    """`new` refuses a bad destination before the first prompt, or right after the name that decides it."""
    force = bool(kwargs.get("force")) or bool(kwargs.get("dry_run"))

    def check_slug_of(name: str) -> None:
        check_destination(Path(Answers(project_name=name).project_slug).resolve(), force)

    if kwargs.get("directory") is not None:
        check_destination(kwargs["directory"].resolve(), force)
        return {}
    if "project_name" in given:
        check_one("project_name", given["project_name"])
        check_slug_of(given["project_name"])
        return {}
    return {"project_name": check_slug_of}


def answer_options(command: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--answers", "answers_file", type=_Path(path_type=Path, dir_okay=False),
                  help="YAML or JSON file of answers.")
    @click.option("--set", "set_values", multiple=True, metavar="KEY=VALUE",
                  help="Set one answer; repeatable; wins over --answers.")
    @click.option("--no-input", is_flag=True, help="Do not prompt: unanswered questions take their defaults.")
    @functools.wraps(command)
    def wrapper(*args: Any, answers_file: Path | None, set_values: tuple[str, ...], no_input: bool,
                **kwargs: Any) -> Any:
        try:
            from_file = load_answers_file(answers_file) if answers_file else {}
            from_set = parse_set_options(set_values)
            given = merge(from_file, from_set)
            defaults = {} if "project_name" in given else _dir_defaults(kwargs.get("directory"))
            checks = _destination_checks(kwargs, given) if "force" in kwargs else {}
            prompted = {} if no_input else ask(given, defaults, checks)
            answers = validate(merge(defaults, prompted, from_file, from_set))
        except AnswerError as exc:
            _fail(str(exc))
        return command(*args, answers=answers, **kwargs)

    return wrapper


class _Group(click.Group):
    """Ctrl-C ends with the shell's convention (130) and one line; input ending mid-questionnaire is an error."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("\ninterrupted; nothing was written", err=True)
            raise click.exceptions.Exit(130) from None
        except EOFError:
            click.echo("\nerror: input ended before every question was answered; pass --set KEY=VALUE or "
                       "--no-input to take the defaults", err=True)
            raise click.exceptions.Exit(2) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aistarter")
def main() -> None:
    """Turn an AI product's needs into a backend repository and its Kubernetes infrastructure.

    \b
    Examples:
      aistarter recommend                      # answer the questions, see the stack and why
      aistarter new chatbot                    # generate ./chatbot (asks the questions)
      aistarter new chatbot --no-input --set use_case=rag
      aistarter check chatbot                  # tests, lint, infra and drift of a generated project

    Shell completion (bash; zsh and fish alike with zsh_source / fish_source):
      eval "$(_AISTARTER_COMPLETE=bash_source aistarter)"
    """


def _warn(blueprint: Any, strict: bool, quiet: bool = False) -> None:
    """Feasibility warnings go to stderr (JSON carries them in `warnings` instead); --strict makes them fatal."""
    for line in [] if quiet else report.warning_lines(blueprint):
        click.echo(line, err=True)
    if strict and blueprint.warnings:
        _fail(f"{len(blueprint.warnings)} feasibility warning(s) and --strict is set")


STRICT = click.option("--strict", is_flag=True, help="Exit 2 when the plan has feasibility warnings.")


@main.command()
@answer_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table")
@click.option("--save", type=_Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the answers to this file, for `aistarter new DIR --answers FILE`.")
@STRICT
def recommend(answers: Answers, fmt: str, save: Path | None, strict: bool) -> None:
    """Show the stack and the reason for every choice; generates nothing.

    \b
    Examples:
      aistarter recommend
      aistarter recommend --no-input --set use_case=rag --format json
      aistarter recommend --save answers.yml && aistarter new chatbot --answers answers.yml
      aistarter recommend --no-input --set self_hosted=small --set providers=local --strict
    """
    blueprint = decide(answers)
    if save is not None:
        try:
            save.write_text(answers_file_text(answers), encoding="utf-8")
        except OSError as exc:
            _fail(f"--save {save}: cannot write it ({exc.strerror})")
        click.echo(f"saved answers to {save}; generate with: aistarter new DIR --answers {save}", err=True)
    if fmt == "json":
        click.echo(report.as_json(blueprint))
    elif fmt == "markdown":
        click.echo(report.as_markdown(blueprint), nl=False)
    else:
        report.print_table(blueprint, console)
    _warn(blueprint, strict, quiet=fmt == "json")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def options(fmt: str) -> None:
    """List every question with its allowed values, default and criterion.

    \b
    Examples:
      aistarter options
      aistarter options --format json
    """
    if fmt == "json":
        click.echo(json.dumps(report.options_rows(), indent=2))
    else:
        report.print_options(console)


@main.command()
@click.argument("directory", required=False, type=_Path(path_type=Path, file_okay=False))
@answer_options
@click.option("--engine", type=click.Choice(ENGINES), default="copier", show_default=True)
@click.option("--force", is_flag=True,
              help="Write into a non-empty DIRECTORY: replace only the files the template produces; keep the rest "
                   "and .git.")
@click.option("--dry-run", is_flag=True, help="Show the plan and the file list; write nothing.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@STRICT
def new(answers: Answers, directory: Path | None, engine: str, force: bool, dry_run: bool, fmt: str,
        strict: bool) -> None:
    """Generate the project into DIRECTORY (default: ./<project slug>); the project is named after DIRECTORY.

    A non-empty DIRECTORY needs --force, which replaces only the files the template produces and keeps the rest,
    .git included.

    \b
    Examples:
      aistarter new chatbot
      aistarter new chatbot --no-input --set use_case=rag --set providers=openai,anthropic
      aistarter new . --force --answers answers.yml
      aistarter new chatbot --no-input --dry-run
    """
    dest = directory or Path(answers.project_slug)
    _warn(decide(answers), strict)
    try:
        if dry_run:
            files = plan(answers, engine)  # type: ignore[arg-type]
            if fmt == "json":
                click.echo(json.dumps({"path": str(dest.resolve()), "dry_run": True, "files": files}, indent=2))
                return
            report.print_table(decide(answers), console)
            click.echo(f"\nwould write {len(files)} files to {dest}/:")
            for name in files:
                click.echo(f"  {name}")
            return
        result = generate(answers, dest, engine=engine, force=force)  # type: ignore[arg-type]
    except (AnswerError, RenderError) as exc:
        _fail(str(exc))
    steps = next_commands(answers, result.path, Path.cwd())
    if fmt == "json":
        click.echo(json.dumps({"path": str(result.path), "engine": engine, "files": result.files,
                               "overwritten": result.overwritten, "kept_git": result.kept_git,
                               "committed": result.committed,
                               "next": [{"purpose": p, "command": c} for p, c in steps],
                               "blueprint": json.loads(report.as_json(decide(answers)))}, indent=2))
        return
    if result.overwritten:
        click.echo(f"overwrote {len(result.overwritten)} existing files: {', '.join(result.overwritten)}")
    if result.kept_git:
        click.echo("kept the existing git repository's branches, index and history; added the branch "
                   "aistarter/template (the pristine render `aistarter update` merges against): review with "
                   "`git status` and commit the generated files")
    report.print_table(decide(answers), console)
    click.echo(f"created {result.path} ({len(result.files)} files, engine {engine}); every decision is explained "
               "in docs/decisions/")
    click.echo("next:")
    for purpose, command in steps:
        click.echo(f"  {purpose + ':':<12} {command}")


@main.command()
@click.argument("directory", required=False, default=".", type=_Path(path_type=Path, file_okay=False,
                                                                          exists=True))
@click.option("--set", "set_values", multiple=True, metavar="KEY=VALUE", help="Change a recorded answer.")
@click.option("--engine", type=click.Choice(ENGINES), default="copier", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def update(directory: Path, set_values: tuple[str, ...], engine: str, fmt: str) -> None:
    """Merge the installed template into a generated project, keeping your edits (3-way, through git).

    \b
    Examples:
      aistarter update
      aistarter update chatbot --set providers=openai,anthropic
    """
    try:
        result = update_project(directory, parse_set_options(set_values), engine=engine)  # type: ignore[arg-type]
    except (AnswerError, UpdateError, RenderError) as exc:
        _fail(str(exc))
    if fmt == "json":
        click.echo(json.dumps({"from_version": result.from_version, "to_version": result.to_version,
                               "changed": result.changed, "conflicts": result.conflicts,
                               "added_keys": list(result.added_keys)}, indent=2))
        if result.conflicts:
            sys.exit(1)
        return
    if result.added_keys:
        click.echo(f"new questions since aistarter {result.from_version or 'unknown'}, set to their defaults: "
                   f"{', '.join(result.added_keys)} (change one with --set KEY=VALUE)")
    if not result.changed:
        click.echo(f"already up to date with aistarter {result.to_version}")
    elif result.conflicts:
        click.echo(f"merged aistarter {result.from_version} -> {result.to_version} with conflicts in: "
                   f"{', '.join(result.conflicts)}; resolve them, then `git commit`", err=True)
    else:
        click.echo(f"updated {directory} from aistarter {result.from_version} to {result.to_version} (merge commit)")
    if result.conflicts:
        sys.exit(1)


@main.command()
@click.argument("directory", required=False, default=".", type=_Path(path_type=Path, file_okay=False,
                                                                          exists=True))
@click.option("--step", "steps", multiple=True, type=click.Choice(STEPS), help="Run only these steps (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--python", "python", default=None, show_default="the project's own .aistarter/venv",
              help="Interpreter whose environment has the project's dependencies.")
def check(directory: Path, steps: tuple[str, ...], fmt: str, python: str | None) -> None:
    """Validate a generated repository: tests, lint, infra (schemas, checkov, GPU, policy) and drift.

    The steps run in the project's own environment, .aistarter/venv, made on first use (with uv when it is
    installed) and refreshed when pyproject.toml or infra requirements change. A step whose tests were skipped
    says "skipped" and why; only a failure makes the exit code 1.

    \b
    Examples:
      aistarter check
      aistarter check chatbot --step tests --step lint
      aistarter check --format json
    """
    from rich.table import Table

    style = {"ok": "[green]ok[/]", "skipped": "[yellow]skipped[/]", "failed": "[red]FAILED[/]"}
    status_console = Console(stderr=True)
    with status_console.status("aistarter check: starting") as status:
        def progress(message: str) -> None:
            status.update(f"aistarter check: {message}")

        def done(result: StepResult) -> None:
            if fmt != "json":
                status_console.print(f"{style[result.status]} {result.step}")

        try:
            results = check_project(directory, steps or STEPS, python, progress=progress, done=done)
        except CheckError as exc:
            _fail(str(exc))
    if fmt == "json":
        click.echo(json.dumps({"ok": all(r.ok for r in results), "steps": as_dicts(results)}, indent=2))
    else:
        table = Table(title=f"aistarter check {directory}")
        for column in ("step", "result", "detail"):
            table.add_column(column)
        for r in results:
            table.add_row(r.step, style[r.status], r.detail)
        console.print(table)
    if not all(r.ok for r in results):
        sys.exit(1)


@main.command("serve-context")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
def serve_context(host: str, port: int) -> None:
    """Serve the template context to a Backstage Software Template (POST /context); see backstage/README.md.

    \b
    Examples:
      aistarter serve-context
      aistarter serve-context --host 0.0.0.0 --port 8765
    """
    from .backstage import make_server

    try:
        server = make_server(host, port)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --host or --port")
    click.echo(f"aistarter {__version__} context service on http://{host}:{server.server_port}/context", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@main.command()
@click.option("--write", "write", is_flag=False, flag_value=".", default=None, metavar="[PATH]",
              type=_Path(path_type=Path), help="Write template.yaml to PATH, a file or a folder (default: .).")
def backstage(write: Path | None) -> None:
    """Print the Backstage Software Template generated from the questionnaire.

    \b
    Examples:
      aistarter backstage > template.yaml
      aistarter backstage --write            # writes ./template.yaml
      aistarter backstage --write backstage/
    """
    from .backstage import template_text, write_template

    if write is None:
        click.echo(template_text(), nl=False)
        return
    target = write / "template.yaml" if write.is_dir() else write
    try:
        click.echo(f"wrote {write_template(target)}")
    except (OSError, ValueError) as exc:
        _fail(f"--write {write}: {getattr(exc, 'strerror', None) or exc}")


@main.group("catalog")
def catalog_group() -> None:
    """The GPU, model and price catalog the decision engine sizes from.

    \b
    Examples:
      aistarter catalog check
      aistarter catalog check --max-age-days 90
    """


@catalog_group.command("check")
@click.option("--max-age-days", type=click.IntRange(1), default=None, help="Oldest acceptable price (default 180).")
def catalog_check(max_age_days: int | None) -> None:
    """Fail when a row lacks source/as_of/kind or a price is older than the limit.

    \b
    Examples:
      aistarter catalog check
    """
    from . import catalog

    findings = catalog.check(max_age_days=max_age_days or catalog.PRICE_MAX_AGE_DAYS)
    for f in findings:
        click.echo(f"{f.where}: {f.problem}", err=True)
    if findings:
        click.echo(f"catalog check failed: {len(findings)} problem(s)", err=True)
        sys.exit(1)
    click.echo("catalog check passed: every row has source, as_of and kind; no price is stale")


@main.group()
def infra() -> None:
    """Work with a generated project's Pulumi infrastructure.

    \b
    Examples:
      aistarter infra render chatbot
      aistarter infra rehearse chatbot
    """


@infra.command("render")
@click.argument("directory", required=False, default=".", type=_Path(path_type=Path, file_okay=False,
                                                                          exists=True))
@click.option("--out", type=_Path(path_type=Path, file_okay=False), default=None,
              help="Where to write the YAML (default: DIRECTORY/build/infra).")
@click.option("--no-checkov", is_flag=True, help="Skip checkov; schema and GPU checks still run.")
def infra_render(directory: Path, out: Path | None, no_checkov: bool) -> None:
    """Render the app stack under Pulumi mocks to YAML, then validate schemas, checkov and GPU scheduling.

    \b
    Examples:
      aistarter infra render
      aistarter infra render chatbot --out /tmp/manifests --no-checkov
    """
    try:
        code, why = render_infra(directory, out or directory / "build" / "infra", checkov=not no_checkov)
    except InfraError as exc:
        _fail(str(exc))
    except (OSError, ValueError) as exc:
        _fail(f"infra render: {getattr(exc, 'strerror', None) or exc}")
    if code:
        click.echo(f"error: infra render failed: {why}", err=True)
    sys.exit(code)


@infra.command("rehearse")
@click.argument("directory", required=False, default=".", type=_Path(path_type=Path, file_okay=False,
                                                                          exists=True))
@click.option("--stack", default=None, help="Stack to rehearse (default: dev).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--keep", is_flag=True, help="Keep the run directory with every pod's log.")
def infra_rehearse(directory: Path, stack: str | None, fmt: str, keep: bool) -> None:
    """Run the app stack's own workloads as its manifests declare them (sandboxed), probe, scrape, wake the model.

    \b
    Examples:
      aistarter infra rehearse chatbot
      aistarter infra rehearse chatbot --format json --keep
    """
    try:
        code = rehearse_infra(directory, stack, fmt, keep)
    except InfraError as exc:
        _fail(str(exc))
    sys.exit(code)


if __name__ == "__main__":
    main()
