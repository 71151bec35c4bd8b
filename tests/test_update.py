"""`aistarter update`: a 3-way merge of the new render into the user's repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from aistarter.answers import validate
from aistarter.cli import main
from aistarter.render import ANSWERS_RECORD, generate, render_project, template_dir
from aistarter.update import UpdateError, git, update

OLD_VERSION = "0.0.9"
SLUG_DIR = "{{cookiecutter.project_slug}}"


def older_template(tmp_path: Path) -> Path:
    """The current template minus a file and with different README/.gitignore text: a stand-in for release N-1."""
    old = tmp_path / "old-template"
    shutil.copytree(template_dir(), old, ignore=shutil.ignore_patterns("__pycache__"))
    root = old / SLUG_DIR
    (root / "app" / "__main__.py").unlink()
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("## Test it", "## Tests"))
    gitignore = root / ".gitignore"
    gitignore.write_text(gitignore.read_text().replace(".ruff_cache/\n", ""))
    return old


def commit_all(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


USER_ROUTE = '\n\n@app.get("/hello")\ndef hello() -> dict[str, str]:\n    return {"hello": "world"}\n'


def user_edits(project: Path) -> None:
    main_py = project / "app" / "main.py"
    main_py.write_text(main_py.read_text() + USER_ROUTE)
    (project / "docs" / "decisions" / "0003-iteration.md").unlink()


def test_update_from_an_older_release_equals_fresh_render_plus_user_edits(tmp_path: Path) -> None:
    answers = validate({"project_name": "golden"})
    project = generate(answers, tmp_path / "golden", template=older_template(tmp_path), version=OLD_VERSION).path
    user_edits(project)
    commit_all(project, "my edits")

    result = update(project)

    assert (result.from_version, result.changed, result.conflicts) == (OLD_VERSION, True, [])
    expected = render_project(answers, tmp_path / "expected")
    user_edits(expected)
    assert files(project) == files(expected)
    assert git(project, "status", "--porcelain").stdout == ""


def test_user_edit_on_a_line_the_template_changed_conflicts_visibly(tmp_path: Path) -> None:
    project = generate(validate({}), tmp_path / "p", template=older_template(tmp_path), version=OLD_VERSION).path
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("## Tests", "## Tests (ours)"))
    commit_all(project, "retitle")

    result = update(project)

    assert result.conflicts == ["README.md"]
    text = readme.read_text()
    assert "<<<<<<<" in text and "## Tests (ours)" in text and "## Test it" in text


def test_deleted_file_stays_deleted_when_template_did_not_change_it(tmp_path: Path) -> None:
    project = generate(validate({}), tmp_path / "p", template=older_template(tmp_path), version=OLD_VERSION).path
    (project / "tests" / "test_health.py").unlink()
    commit_all(project, "drop health test")
    assert update(project).conflicts == []
    assert not (project / "tests" / "test_health.py").exists()
    assert (project / "app" / "__main__.py").exists(), "file new in the template arrives"


def test_changing_an_answer_adds_and_removes_files_like_a_fresh_render(tmp_path: Path) -> None:
    project = generate(validate({"cloud": "aws"}), tmp_path / "p").path
    before = set(files(project))
    result = update(project, {"cloud": "existing", "self_hosted": "small", "providers": ["openai", "local"]})
    assert result.conflicts == []
    fresh = render_project(validate({"cloud": "existing", "self_hosted": "small", "providers": ["openai", "local"]}),
                           tmp_path / "fresh")
    assert set(files(project)) == set(files(fresh))
    assert set(files(project)) != before
    assert "cloud: existing" in (project / ".aistarter" / "answers.yml").read_text()


def test_up_to_date_project_is_left_alone(tmp_path: Path) -> None:
    project = generate(validate({}), tmp_path / "p").path
    head = git(project, "rev-parse", "HEAD").stdout
    assert update(project).changed is False
    assert git(project, "rev-parse", "HEAD").stdout == head


def test_refuses_dirty_tree_and_downgrade(tmp_path: Path) -> None:
    project = generate(validate({}), tmp_path / "p").path
    (project / "README.md").write_text("dirty")
    with pytest.raises(UpdateError, match="uncommitted changes"):
        update(project)
    git(project, "checkout", "--", "README.md")
    record = project / ".aistarter" / "answers.yml"
    record.write_text(record.read_text().replace("aistarter_version: 0.1.0", "aistarter_version: 99.0.0"))
    commit_all(project, "from the future")
    with pytest.raises(UpdateError, match="refusing to downgrade"):
        update(project)


def test_cli_update_exit_codes(tmp_path: Path) -> None:
    project = generate(validate({}), tmp_path / "p", template=older_template(tmp_path), version=OLD_VERSION).path
    runner = CliRunner()
    assert runner.invoke(main, ["update", str(project), "--set", "use_case=crud"]).exit_code == 2
    ok = runner.invoke(main, ["update", str(project)])
    assert ok.exit_code == 0, ok.output
    assert "from aistarter 0.0.9" in ok.output
    log = subprocess.run(["git", "log", "--oneline"], cwd=project, capture_output=True, text=True).stdout
    assert "Update to aistarter" in log


def test_an_aborted_update_is_redone_not_reported_as_up_to_date(tmp_path: Path) -> None:
    project = generate(validate({}), tmp_path / "p").path
    readme = project / "README.md"
    # A user edit on a line the --set changes, so the update conflicts and the user aborts the merge.
    settings = project / ".env.example"
    settings.write_text(settings.read_text().replace("FALLBACK=", "FALLBACK_MINE=", 1))
    commit_all(project, "my env")
    head = git(project, "rev-parse", "HEAD").stdout
    first = update(project, {"providers": ["openai", "anthropic"]})
    if first.conflicts:
        git(project, "merge", "--abort")
    else:  # no conflict on this template: undo the merge, which leaves the same state as an abort
        git(project, "reset", "-q", "--hard", "HEAD~1")
    assert git(project, "rev-parse", "HEAD").stdout == head and "anthropic" not in readme.read_text().lower()

    again = update(project, {"providers": ["openai", "anthropic"]})

    assert again.changed, "the render was never applied: the update must be redone"
    assert "- anthropic" in (project / ".aistarter" / "answers.yml").read_text() or again.conflicts


def test_fresh_clone_finds_the_last_applied_render_as_base(tmp_path: Path) -> None:
    project = generate(validate({}), tmp_path / "p", template=older_template(tmp_path), version=OLD_VERSION).path
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("## Tests", "## Tests (ours)"))
    commit_all(project, "retitle")
    assert update(project).conflicts == ["README.md"]
    text = readme.read_text()
    resolved = text[:text.index("<<<<<<<")] + "## Tests (ours)\n" + text[text.index(">>>>>>>"):].split("\n", 1)[1]
    readme.write_text(resolved)
    commit_all(project, "resolved: keep our title")

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    assert git(clone, "rev-parse", "--verify", "--quiet", "aistarter/template", check=False).returncode != 0

    result = update(clone, {"providers": ["openai", "anthropic"]})

    assert result.changed and result.conflicts == [], "the conflict resolved before the clone must not come back"
    assert "## Tests (ours)" in (clone / "README.md").read_text()


def test_untracked_files_do_not_block_unless_in_the_way_and_then_are_named(tmp_path: Path) -> None:
    project = generate(validate({}), tmp_path / "p", template=older_template(tmp_path), version=OLD_VERSION).path
    (project / "app.db-wal").write_text("sqlite journal")
    (project / "app" / "__main__.py").write_text("mine, untracked")  # the new release adds this file
    with pytest.raises(UpdateError, match=r"untracked files would be overwritten by the update: app/__main__.py;"):
        update(project)
    (project / "app" / "__main__.py").unlink()
    assert update(project).conflicts == []
    assert (project / "app.db-wal").read_text() == "sqlite journal"


def test_update_names_the_questions_a_newer_aistarter_added(tmp_path: Path) -> None:
    # A project whose recorded answers predate `model` and `region`: update says they took their defaults.
    project = generate(validate({}), tmp_path / "p", template=older_template(tmp_path), version=OLD_VERSION).path
    record = project / ANSWERS_RECORD
    record.write_text("".join(line for line in record.read_text().splitlines(keepends=True)
                              if not line.lstrip().startswith(("model:", "region:"))))
    commit_all(project, "answers recorded by an aistarter without model and region")
    result = CliRunner().invoke(main, ["update", str(project), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["added_keys"] == ["model", "region"]


def test_update_text_lists_the_added_keys(tmp_path: Path) -> None:
    project = generate(validate({}), tmp_path / "p", template=older_template(tmp_path), version=OLD_VERSION).path
    record = project / ANSWERS_RECORD
    record.write_text("".join(line for line in record.read_text().splitlines(keepends=True)
                              if not line.lstrip().startswith("precision:")))
    commit_all(project, "answers without precision")
    out = CliRunner().invoke(main, ["update", str(project)]).output
    assert "new questions since aistarter 0.0.9, set to their defaults: precision" in out


def test_update_writes_the_added_keys_into_the_recorded_answers(tmp_path: Path) -> None:
    # The merge alone keeps the old record (the template's side did not touch those lines): update rewrites it.
    project = generate(validate({}), tmp_path / "p", template=older_template(tmp_path), version=OLD_VERSION).path
    record = project / ANSWERS_RECORD
    record.write_text("".join(line for line in record.read_text().splitlines(keepends=True)
                              if not line.lstrip().startswith(("model:", "region:"))))
    commit_all(project, "answers recorded by an aistarter without model and region")

    result = update(project)

    assert result.added_keys == ("model", "region") and result.conflicts == []
    text = record.read_text()
    assert "  model: auto\n" in text and "  region: auto\n" in text
    assert git(project, "status", "--porcelain", "--untracked-files=no").stdout == "", "the merge commit holds it"
    assert "model: auto" in git(project, "show", f"HEAD:{ANSWERS_RECORD.as_posix()}").stdout
    assert update(project).added_keys == (), "the next update finds every key recorded"


def test_an_up_to_date_project_still_gets_its_missing_keys_recorded(tmp_path: Path) -> None:
    project = generate(validate({}), tmp_path / "p").path
    record = project / ANSWERS_RECORD
    record.write_text("".join(line for line in record.read_text().splitlines(keepends=True)
                              if not line.lstrip().startswith("precision:")))
    commit_all(project, "answers without precision")

    result = update(project)

    assert result.changed and result.added_keys == ("precision",) and "  precision: auto\n" in record.read_text()
    assert git(project, "status", "--porcelain", "--untracked-files=no").stdout == ""
    assert not update(project).changed


def test_update_works_after_new_force_into_an_existing_git_repository(tmp_path: Path) -> None:
    repo = tmp_path / "chatbot"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "notes.md").write_text("my notes\n")
    commit_all(repo, "my history")
    generate(validate({}), repo, force=True)
    assert git(repo, "log", "--format=%s", "main").stdout == "my history\n", "the user's branch is untouched"
    assert git(repo, "rev-parse", "--verify", "--quiet", "aistarter/template", check=False).returncode == 0
    with pytest.raises(UpdateError, match=r"is not committed on this branch: commit the generated project first"):
        update(repo)
    commit_all(repo, "add the generated project")
    main_py = repo / "app" / "main.py"
    main_py.write_text(main_py.read_text() + USER_ROUTE)
    commit_all(repo, "my route")

    result = update(repo, {"providers": ["openai", "anthropic"]})

    assert result.changed and result.conflicts == [], "the render new left is the base, not an empty tree"
    assert USER_ROUTE in main_py.read_text() and (repo / "notes.md").read_text() == "my notes\n"
    assert "- anthropic" in (repo / ANSWERS_RECORD).read_text()
    assert "my history" in git(repo, "log", "--format=%s").stdout
    assert not update(repo, {"providers": ["openai", "anthropic"]}).changed, "the next update finds its base in HEAD"
