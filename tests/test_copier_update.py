"""`copier update` as copier users know it: a project made from one tag of a git template updates to the next,
keeping the user's edits, with answer changes (`--data`) adding files as a fresh render would."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aistarter.render import template_dir

SLUG_DIR = "{{cookiecutter.project_slug}}"
USER_LINE = "# our scratch space\n/scratch/\n"


def git(repo: Path, *args: str) -> str:
    ident = ["-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *ident, *args], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """The template as its own git repository: v1 is today's, v2 adds a file, a question and changes a default."""
    repo = tmp_path / "template"
    shutil.copytree(template_dir(), repo, ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    git(repo, "tag", "v1")
    config = repo / "copier.yml"
    text = config.read_text()
    # a changed default: the project's recorded answer must win over it
    old_default = "  choices:\n  - full\n  - redacted\n  - metadata\n  default: redacted\n"
    assert old_default in text
    text = text.replace(old_default, old_default.replace("default: redacted", "default: full"))
    # a new question, used by a new file
    config.write_text(text + "team:\n  type: str\n  help: Who owns the service.\n  default: platform\n")
    (repo / SLUG_DIR / "OWNERS.md").write_text("{{ cookiecutter.project_name }} is owned by {{ team }}.\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v2")
    git(repo, "tag", "v2")
    return repo


def answers_file(project: Path) -> dict:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def test_copier_update_keeps_user_edits_and_applies_the_next_tag(tmp_path: Path, template_repo: Path) -> None:
    import copier

    project = tmp_path / "project"
    copier.run_copy(str(template_repo), str(project), vcs_ref="v1", defaults=True, unsafe=True, quiet=True)
    assert answers_file(project)["_commit"] == "v1" and not (project / "OWNERS.md").exists()
    assert not git(project, "status", "--porcelain"), "the after-hook commits the fresh project"
    # An edit where the template does not change (an edit where it does is the conflict test below).
    edited = project / ".gitignore"
    edited.write_text(edited.read_text() + USER_LINE)
    git(project, "commit", "-q", "-am", "my edit")
    assert not (project / "agents.json").exists()

    # `copier update --trust --defaults --data use_case=agents`: the latest tag, one changed answer
    copier.run_update(str(project), data={"use_case": "agents"}, defaults=True, unsafe=True, overwrite=True,
                      quiet=True)

    assert edited.read_text().endswith(USER_LINE), "the user's edit survives"
    recorded = answers_file(project)
    assert recorded["_commit"] == "v2" and recorded["team"] == "platform" and recorded["use_case"] == "agents"
    assert recorded["trace_content"] == "redacted", "the project's answer wins over the new default"
    assert (project / "OWNERS.md").read_text() == "my-ai-app is owned by platform.\n"
    assert (project / "agents.json").is_file(), "a changed answer adds its files, as a fresh render does"
    assert "use_case: agents" in (project / ".aistarter" / "answers.yml").read_text()
    assert not list(project.rglob("*.rej")), "no conflicts expected"


def test_copier_update_shows_a_conflict_the_copier_way(tmp_path: Path, template_repo: Path) -> None:
    import copier

    project = tmp_path / "project"
    copier.run_copy(str(template_repo), str(project), vcs_ref="v1", defaults=True, unsafe=True, quiet=True)
    # The user rewrites the line the v2 template changes: copier marks the conflict inline in the file.
    answers = project / ".aistarter" / "answers.yml"
    answers.write_text(answers.read_text().replace("trace_content: redacted", "trace_content: full  # ours"))
    git(project, "commit", "-q", "-am", "my edit")
    copier.run_update(str(project), data={"trace_content": "metadata"}, defaults=True, unsafe=True,
                      overwrite=True, quiet=True)
    text = answers.read_text()
    assert "<<<<<<< before updating" in text and ">>>>>>> after updating" in text, text
