"""System prompts.
{%- if cookiecutter.prompt_versioning %}

Prompts live as versioned files, `prompts/<name>/<version>.md`; every interaction records the name, the
exact version and the sha256 of the text it used. Ship a change as a new version file, not an edit.
{%- else %}

One system prompt from `prompts/<name>.md`; the interaction record keeps its sha256 as the version.
{%- endif %}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class PromptError(ValueError):
    pass


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    text: str
    sha256: str


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.stem)) or (0,)


def versions(directory: str, name: str) -> list[str]:
    """The versions `load` accepts besides 'latest', oldest first (the playground offers them)."""
{%- if cookiecutter.prompt_versioning %}
    return [f.stem for f in sorted((Path(directory) / name).glob("*.md"), key=_version_key)]
{%- else %}
    path = Path(directory) / f"{name}.md"
    return [load(directory, name).version] if path.is_file() else []
{%- endif %}


@lru_cache(maxsize=64)
def load(directory: str, name: str, version: str = "latest") -> Prompt:
    base = Path(directory)
    # Tenants choose these (request metadata): a leading '.' would allow '..' and hidden folders.
    if not SAFE_NAME.fullmatch(name) or not SAFE_NAME.fullmatch(version):
        raise PromptError("prompt name/version must start with a letter or digit and use letters, digits, "
                          f"'.', '_' and '-' only, at most 64 characters (got {name[:70]!r}/{version[:70]!r})")
{%- if cookiecutter.prompt_versioning %}
    folder = base / name
    files = sorted(folder.glob("*.md"), key=_version_key)
    if not files:
        # The server's paths are not the tenant's business; the operator finds them in PROMPTS_DIR.
        raise PromptError(f"no prompt named {name!r} (add prompts/{name}/v1.md or set PROMPT_NAME)")
    path = files[-1] if version == "latest" else folder / f"{version}.md"
    if not path.is_file():
        known = ", ".join(f.stem for f in files)
        raise PromptError(f"prompt {name!r} has no version {version!r} (known: {known}); set PROMPT_VERSION")
    text = path.read_text(encoding="utf-8").strip()
    return Prompt(name, path.stem, text, hashlib.sha256(text.encode()).hexdigest())
{%- else %}
    path = base / f"{name}.md"
    if not path.is_file():
        raise PromptError(f"no prompt named {name!r} (add prompts/{name}.md or set PROMPT_NAME)")
    text = path.read_text(encoding="utf-8").strip()
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Prompt(name, digest[:12], text, digest)
{%- endif %}
