"""One pod = one bubblewrap sandbox: own network and PID namespaces, the manifest's user, a read-only root, and
only the declared volumes writable. The host's root filesystem stands in for the base image; the project image's
own files (the venv and the Dockerfile's COPYs) are bound at the paths the Dockerfile puts them."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .manifests import Container, Image

PROXY = Path(__file__).with_name("podproxy.py")
POD_DIR = "/run/rehearsal"  # where the pod's own proxy keeps its sockets (inside the sandbox)
SVC_DIR = "/run/rehearsal-svc"  # the host's Service sockets, as the pod's proxy sees them


def image_venv(project: Path, image: Image, cache: Path) -> tuple[Path, bool]:
    """The venv the Dockerfile's build stage produces (`pip install <target>`), cached by the project's content."""
    digest = hashlib.sha256()
    locks = [project / name for name in image.requirements]
    for path in sorted([project / "pyproject.toml", *locks, *(project / "app").rglob("*")]):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(project)).encode() + path.read_bytes())
    digest.update(image.pip_target.encode())
    venv = cache / f"venv-{digest.hexdigest()[:16]}"
    if (venv / ".complete").exists():
        return venv, True
    shutil.rmtree(venv, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    cache.chmod(0o755)
    # The base image's python (python:3.11-slim) is stood in for by this machine's system python.
    base = shutil.which("python3", path="/usr/local/bin:/usr/bin") or sys.executable
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip_install = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    # As the build stage does: the locked packages first, then the project, both without dependency resolution.
    steps = [[*pip_install, "--no-deps", "-r", str(lock)] for lock in locks]
    target = str(project) + image.pip_target.removeprefix(".")
    steps.append([*pip_install, *(["--no-deps"] if locks else []), target])
    for step in steps:
        pip = subprocess.run(step, cwd=project, capture_output=True, text=True)
        if pip.returncode != 0:
            break
    if pip.returncode != 0:
        tail = (pip.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise OSError(f"pip install {image.pip_target} of {project.name}: {tail}")
    (venv / ".complete").write_text("")
    for root, dirs, _files in os.walk(venv):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    return venv, False


def image_files(project: Path, image: Image, target: Path) -> list[tuple[Path, str]]:
    """Materialise the final stage's COPY lines under `target`; return (host dir, path in the image) binds."""
    binds: dict[str, Path] = {}
    for sources, dest in image.copies:
        dest_abs = dest if dest.startswith("/") else os.path.join(image.workdir, dest)
        top = image.workdir if dest_abs.startswith(image.workdir.rstrip("/") + "/") or dest_abs.rstrip("/") \
            == image.workdir.rstrip("/") else os.path.dirname(dest_abs.rstrip("/"))
        host_top = target / top.lstrip("/")
        binds[top] = host_top
        for src in sources:
            s = project / src
            d = target / dest_abs.lstrip("/")
            if dest.endswith("/") or len(sources) > 1:
                d = d / s.name
            if s.is_dir():
                shutil.copytree(s, d, dirs_exist_ok=True)
            else:
                d.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(s, d)
    for top in binds.values():
        top.mkdir(parents=True, exist_ok=True)
        for root, _dirs, files in os.walk(top):
            os.chmod(root, 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)
    return [(host, path) for path, host in binds.items()]


def root_binds(targets: list[str], host: str = "/") -> list[str]:
    """bwrap arguments that rebuild the host's tree read-only around `targets` (paths mounted later): a directory
    holding a target becomes a fresh directory with its other entries bound one by one."""
    args: list[str] = []
    for entry in sorted(os.listdir(host)):
        path = os.path.join(host, entry)
        if host == "/" and entry in ("proc", "dev"):
            continue
        inner = [t for t in targets if t == path or t.startswith(path + "/")]
        if os.path.islink(path):
            if not inner:
                args += ["--symlink", os.readlink(path), path]
        elif path in inner:
            continue
        elif inner and os.path.isdir(path):
            args += ["--dir", path, *root_binds(inner, path)]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


@dataclass
class Pod:
    name: str
    container: Container
    address: str
    env: dict[str, str]
    argv: list[str]
    uid: int
    gid: int
    workdir: str
    dir: Path
    binds: list[tuple[str, Path, str]] = field(default_factory=list)  # (mode ro|rw|tmpfs, host, path)
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ready: bool = False
    netns_pid: int = 0

    @property
    def log(self) -> Path:
        return self.dir / "log.txt"

    def socket(self, port: int) -> str:
        return str(self.dir / f"port-{port}.sock")

    def log_tail(self) -> str:
        """The log's last exception line (the cause) and its last line, which is what a pod's status shows."""
        try:
            text = [ln.strip() for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        if not text:
            return "(no output)"
        cause = next((ln for ln in reversed(text) if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*:", ln)), "")
        return text[-1] if not cause or cause == text[-1] else f"{cause[:300]} ... {text[-1][:200]}"

    def start(self, hosts: Path, egress: list[dict[str, Any]], ports: list[int], svc_dir: Path) -> None:
        self.dir.chmod(0o777)
        config = {"egress": egress,
                  "ingress": [{"path": f"{POD_DIR}/port-{p}.sock", "port": p} for p in ports],
                  "exec": f"{POD_DIR}/exec.sock", "net_ready": f"{POD_DIR}/net-ready"}
        (self.dir / "proxy.json").write_text(json.dumps(config))
        # A copy the pod's user can read wherever the project lives (pytest's tmp dirs are 0700).
        proxy = self.dir.parent / PROXY.name
        if not proxy.exists():
            shutil.copyfile(PROXY, proxy)
            proxy.chmod(0o644)
            self.dir.parent.chmod(0o755)
        cmd: list[str] = []
        if self.uid != 0:
            cmd += ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]
        cmd += ["bwrap", "--unshare-user", "--uid", str(self.uid), "--gid", str(self.gid), "--unshare-net",
                "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session",
                "--hostname", self.name]
        targets = ["/etc/hosts", POD_DIR, SVC_DIR, f"{POD_DIR}-proxy.py", *(path for _, _, path in self.binds)]
        cmd += [*root_binds(targets), "--dev", "/dev", "--proc", "/proc", "--ro-bind", str(hosts), "/etc/hosts"]
        for mode, host, path in self.binds:
            if mode == "tmpfs":
                cmd += ["--tmpfs", path]
            else:
                cmd += ["--bind" if mode == "rw" else "--ro-bind", str(host), path]
        cmd += ["--bind", str(self.dir), POD_DIR, "--ro-bind", str(svc_dir), SVC_DIR,
                "--ro-bind", str(proxy), f"{POD_DIR}-proxy.py",
                "--remount-ro", "/", "--chdir", self.workdir, "--clearenv"]
        env = {"HOSTNAME": self.name, **self.env}
        for k, v in env.items():
            cmd += ["--setenv", k, v]
        cmd += ["--", "/usr/bin/python3", f"{POD_DIR}-proxy.py", f"{POD_DIR}/proxy.json", "--", *self.argv]
        read_fd, write_fd = os.pipe()
        cmd[cmd.index("bwrap") + 1:cmd.index("bwrap") + 1] = ["--info-fd", str(write_fd)]
        self.started = time.monotonic()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, pass_fds=(write_fd,))
        os.close(write_fd)
        info = b""
        with os.fdopen(read_fd, "rb") as f:
            while b"}" not in info and (chunk := f.read(1)):
                info += chunk
        self.netns_pid = int(json.loads(info)["child-pid"]) if b"}" in info else 0

    def nft(self, ruleset: str) -> str:
        """Load nftables rules into the pod's network namespace (the host's root does it: the pod cannot)."""
        if not self.netns_pid:
            return "no network namespace"
        done = subprocess.run(["nsenter", f"--net=/proc/{self.netns_pid}/ns/net", "nft", "-f", "-"],
                              input=ruleset, text=True, capture_output=True, check=False)
        return done.stderr.strip()

    def net_ready(self) -> None:
        (self.dir / "net-ready").write_text("")

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def exec(self, argv: list[str], timeout: float) -> tuple[int, str]:
        path = str(self.dir / "exec.sock")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(timeout + 5)
                s.connect(path)
                s.sendall(json.dumps({"argv": argv, "timeout": timeout}).encode() + b"\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            result = json.loads(data)
            return int(result["rc"]), str(result["output"]).strip()
        except (OSError, ValueError) as exc:
            return -1, f"exec into the pod failed: {exc}"

    def stop(self, grace: float = 5.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass
