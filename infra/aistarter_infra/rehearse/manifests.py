"""What the rehearsal runs, read from the rendered manifests and the project's Dockerfile (nothing re-declared).

The app stack is rendered under the same Pulumi mocks as `render.py`, with two differences: every secret gets a
real (random) value instead of a placeholder, and the values stay readable, because the workloads must run with
them; a platform StackReference answers `database_url` with the database the rehearsal creates.
"""

from __future__ import annotations

import base64
import re
import runpy
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from .. import render as r

# The base image's PATH (python:*-slim): what `$PATH` expands to in the Dockerfile's ENV lines.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


class ManifestError(RuntimeError):
    """A manifest cannot be run as declared (missing Secret key, unknown port name...): the message says which."""


def _reveal(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(r._SECRET_SIG_KEY) == r._SECRET_SIG:
            return _reveal(value.get("value"))
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def render_revealed(program_dir: Path, stack: str, secrets: dict[str, str],
                    platform_outputs: dict[str, Any]) -> r.RenderResult:
    """`render.render_program`, but secrets get the given values (or a generated one) and stay readable."""
    program_dir = program_dir.resolve()
    project, raw = r.read_program(program_dir, stack)
    prefix = f"{project}:"
    config: dict[str, str] = {}
    secret_names: list[str] = []
    keys = set(r._app_secret_keys(project, raw)) | set(secrets)
    for key, value in raw.items():
        full = key if ":" in key else prefix + key
        if r._is_secure(value):
            keys.add(full.removeprefix(prefix))
        else:
            config[full] = r._config_value(value)
    for key in sorted(keys):
        config[prefix + key] = secrets.get(key) or secrets.setdefault(key, _random_secret(key))
        secret_names.append(prefix + key)
    mocks = r._RecordingMocks({"*": platform_outputs})
    r.install_mocks(mocks, project=project, stack=stack)
    pulumi.runtime.set_all_config(config, secret_names)
    added = str(program_dir) not in sys.path
    try:
        pulumi.runtime.mocks.test(lambda: runpy.run_path(str(program_dir / "__main__.py"), run_name="__main__"))()
    except Exception as exc:
        raise r.RenderError(f"{program_dir.name} stack {stack!r}: {exc}") from exc
    finally:
        if added and str(program_dir) in sys.path:
            sys.path.remove(str(program_dir))
    records = [(t, n, _reveal(inputs), c) for t, n, inputs, c in mocks.records]
    return r.collect(records, program_dir, project, stack)


def _random_secret(key: str) -> str:
    import secrets as s

    return f"rehearsal-{key.replace('_', '-')}-{s.token_hex(8)}"


def stack_config(program_dir: Path, stack: str) -> dict[str, Any]:
    project, raw = r.read_program(program_dir, stack)
    prefix = f"{project}:"
    return {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}


# ---------------------------------------------------------------------------------------------------- Dockerfile


@dataclass
class Image:
    """The final stage of the project's Dockerfile: what the stand-in for its image must reproduce."""

    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    copies: list[tuple[list[str], str]] = field(default_factory=list)  # (sources in the context, destination)
    venv_copies: list[str] = field(default_factory=list)  # destinations of COPY --from=<build stage>
    pip_target: str = "."  # what the build stage pip-installs, e.g. ".[postgres]"
    # Lock files the build stage installs first (`pip install --no-deps -r requirements.lock`); then the target
    # goes in with --no-deps too, so the venv holds exactly the locked versions.
    requirements: list[str] = field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    lines = []
    buf = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        op, _, rest = buf.partition(" ")
        lines.append((op.upper(), rest.strip()))
        buf = ""
    return lines


def _exec_form(rest: str) -> list[str]:
    import json

    if rest.startswith("["):
        return [str(x) for x in json.loads(rest)]
    return ["/bin/sh", "-c", rest]


def parse_dockerfile(path: Path) -> Image:
    stages: list[list[tuple[str, str]]] = []
    for op, rest in _instructions(path.read_text()):
        if op == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append((op, rest))
    if not stages:
        raise ManifestError(f"{path}: no FROM line")
    image = Image()
    extras: list[str] = []
    for op, rest in stages[0]:
        if op != "RUN":
            continue
        m = re.search(r"pip install\s+(?:--[\w-]+\s+)*['\"]?(\.[^'\"\s&;]*)", rest)
        if m:
            image.pip_target = m.group(1)
        image.requirements += re.findall(r"pip install\s+(?:--[\w-]+\s+)*-r\s+['\"]?([^'\"\s&;]+)", rest)
        # Dependencies installed from pyproject.toml before the app is copied (a layer of their own), extras
        # named as tomllib reads them: `p['optional-dependencies']['postgres']`.
        extras += re.findall(r"optional-dependencies['\"]\]\[['\"]([\w-]+)['\"]\]", rest)
    if extras and "[" not in image.pip_target:
        image.pip_target = f"{image.pip_target}[{','.join(dict.fromkeys(extras))}]"
    env = {"PATH": BASE_PATH}
    for op, rest in stages[-1]:
        if op == "WORKDIR":
            image.workdir = rest
        elif op == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)
        elif op == "USER":
            image.user = rest
        elif op == "ENTRYPOINT":
            image.entrypoint = _exec_form(rest)
        elif op == "CMD":
            image.cmd = _exec_form(rest)
        elif op == "COPY":
            parts = shlex.split(rest)
            flags = [p for p in parts if p.startswith("--")]
            args = [p for p in parts if not p.startswith("--")]
            if any(f.startswith("--from=") for f in flags):
                image.venv_copies.append(args[-1])
            else:
                image.copies.append((args[:-1], args[-1]))
    image.env = env
    return image


# ----------------------------------------------------------------------------------------------------- workloads


@dataclass
class Container:
    workload: str  # kind/name
    kind: str
    name: str
    spec: dict[str, Any]
    pod: dict[str, Any]
    replicas: int
    init: bool = False  # an initContainer: runs to completion before the pod's containers start

    @property
    def image(self) -> str:
        return str(self.spec.get("image", ""))

    def port_number(self, port: Any) -> int:
        if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
            return int(port)
        for p in self.spec.get("ports", []):
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ManifestError(f"{self.workload}: container {self.spec.get('name')} has no port named {port!r}")

    @property
    def labels(self) -> dict[str, str]:
        return self.pod.get("metadata", {}).get("labels", {})

    def user(self, image_user: str | None) -> tuple[int, int]:
        ctx = {**(self.pod.get("spec", {}).get("securityContext") or {}), **(self.spec.get("securityContext") or {})}
        uid = ctx.get("runAsUser")
        gid = ctx.get("runAsGroup")
        if uid is None and image_user:
            u, _, g = image_user.partition(":")
            uid, gid = (int(u) if u.isdigit() else None), (int(g) if g.isdigit() else gid)
        uid = 0 if uid is None else int(uid)
        return uid, int(gid if gid is not None else uid)


def containers(manifests: list[dict[str, Any]]) -> list[Container]:
    out = []
    for m in manifests:
        if m["kind"] not in WORKLOAD_KINDS:
            continue
        pod = m.get("spec", {}).get("template", {})
        replicas = int(m.get("spec", {}).get("replicas", 1) or 1)
        workload = f"{m['kind']}/{m['metadata']['name']}"
        for c in pod.get("spec", {}).get("initContainers", []) or []:
            out.append(Container(f"{workload} init {c['name']}", m["kind"], m["metadata"]["name"], c, pod,
                                 replicas, init=True))
        for c in pod.get("spec", {}).get("containers", []):
            out.append(Container(workload, m["kind"], m["metadata"]["name"], c, pod, replicas))
    order = {"Job": 0, "StatefulSet": 1, "Deployment": 2}
    return sorted(out, key=lambda c: order[c.kind])


def _object_data(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, str] | None:
    for m in manifests:
        if m["kind"] == kind and m["metadata"]["name"] == name:
            data = {k: base64.b64decode(v).decode() for k, v in (m.get("data") or {}).items()} if kind == "Secret" \
                else dict(m.get("data") or {})
            data.update(m.get("stringData") or {})
            return {k: str(v) for k, v in data.items()}
    return None


def _expand(value: str, env: dict[str, str]) -> str:
    # Kubernetes semantics: $(VAR) of a variable defined earlier expands, $$ escapes, anything else stays.
    return re.sub(r"\$\$|\$\((\w+)\)", lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
                  value)


def resolve_env(c: Container, manifests: list[dict[str, Any]], namespace: str, pod_ip: str) -> dict[str, str]:
    """The container's environment exactly as the kubelet builds it: envFrom, then env in order."""
    env: dict[str, str] = {}
    for src in c.spec.get("envFrom", []) or []:
        for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            if key in src:
                data = _object_data(manifests, kind, src[key]["name"])
                if data is None and not src[key].get("optional"):
                    raise ManifestError(f"{c.workload}: envFrom {kind} {src[key]['name']!r} is not in the manifests")
                env.update({src.get("prefix", "") + k: v for k, v in (data or {}).items()})
    for item in c.spec.get("env", []) or []:
        name = item["name"]
        if "value" in item:
            env[name] = _expand(str(item["value"]), env)
            continue
        ref = item.get("valueFrom", {})
        for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
            if key in ref:
                sel = ref[key]
                data = _object_data(manifests, kind, sel["name"])
                if data is None or sel["key"] not in data:
                    if sel.get("optional"):
                        break
                    where = f"{kind} {sel['name']!r}" + ("" if data is None else f" has no key {sel['key']!r}")
                    raise ManifestError(f"{c.workload}: env {name} refers to {where}"
                                        + (" that is not in the manifests" if data is None else ""))
                env[name] = data[sel["key"]]
                break
        else:
            if "fieldRef" in ref:
                path = ref["fieldRef"]["fieldPath"]
                env[name] = {"metadata.namespace": namespace, "status.podIP": pod_ip,
                             "metadata.name": f"{c.name}-0"}.get(path, "")
            elif ref:
                raise ManifestError(f"{c.workload}: env {name} uses {sorted(ref)}, which the rehearsal cannot resolve")
    return env


def argv(c: Container, image: Image | None) -> list[str]:
    """Kubernetes: `command` replaces ENTRYPOINT (and drops CMD), `args` replaces CMD."""
    command = c.spec.get("command")
    args = c.spec.get("args")
    if command:
        return [*command, *(args or [])]
    if image is None:
        raise ManifestError(f"{c.workload}: no command, and the image {c.image} is not the project's")
    return [*image.entrypoint, *(args if args is not None else image.cmd)]


def volumes_of(c: Container) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(volume, mount) pairs for every volumeMount of the container."""
    vols = {v["name"]: v for v in c.pod.get("spec", {}).get("volumes", []) or []}
    out = []
    for mount in c.spec.get("volumeMounts", []) or []:
        vol = vols.get(mount["name"])
        if vol is None:  # a StatefulSet's volumeClaimTemplate: a claim of its own per pod
            vol = {"name": mount["name"], "persistentVolumeClaim": {"claimName": mount["name"]}}
        out.append((vol, mount))
    return out


def object_data(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, str] | None:
    return _object_data(manifests, kind, name)
