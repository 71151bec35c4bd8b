"""The rehearsal itself: render, stand up every workload as the manifests say, probe, scrape, wake, verify."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .. import render as r
from .manifests import (
    Container,
    ManifestError,
    argv,
    containers,
    object_data,
    parse_dockerfile,
    render_revealed,
    resolve_env,
    stack_config,
    volumes_of,
)
from .net import ModelDouble, Router, unix
from .postgres import Postgres
from .report import FAILED, NOT_REHEARSED, OK, Report
from .sandbox import SVC_DIR, Pod, image_files, image_venv

Plant = Callable[[list[dict[str, Any]]], None]
# The hostname the platform's database_url output points at; the rehearsal maps it to its PostgreSQL.
DB_HOST = "rehearsal-database.internal"
CACHE = Path(os.environ.get("AISTARTER_REHEARSE_CACHE", "/var/tmp/aistarter-rehearse"))


def _budget(probe: dict[str, Any]) -> float:
    return float(probe.get("initialDelaySeconds", 0)) + float(probe.get("periodSeconds", 10)) * float(
        probe.get("failureThreshold", 3))


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", str(duration))
    return float(m.group(1)) * units[m.group(2)] if m else 30.0


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class Rehearsal:
    def __init__(self, program_dir: Path, stack: str, plant: Plant | None = None,
                 project_dir: Path | None = None, keep: bool = False) -> None:
        self.program_dir = program_dir.resolve()
        self.project_dir = (project_dir or self.program_dir.parent.parent).resolve()
        self.stack = stack
        self.plant = plant
        self.keep = keep
        self.run_dir = Path(tempfile.mkdtemp(prefix="aistarter-rehearse-"))
        self.run_dir.chmod(0o755)
        self.router = Router(self.run_dir)
        self.pods: list[Pod] = []
        self.db = f"rehearse_{secrets.token_hex(6)}"
        self.db_created = False
        self.pg = Postgres()
        self.egress: list[dict[str, Any]] = []
        self.live_ports: dict[tuple[str, int], bool] = {}
        self.created_roles: list[str] = []
        self.created_dbs: list[str] = []
        self.prometheus: subprocess.Popen[bytes] | None = None
        self.scrape_interval = 15.0
        self.double: ModelDouble | None = None
        self.report = Report(project=self.project_dir.name, stack=stack)
        self.services: dict[str, dict[str, Any]] = {}  # name -> {"address", "manifest"}
        self.addresses: dict[str, str] = {}  # hostname -> address (the hosts file)

    # ------------------------------------------------------------------------------------------------- helpers
    def add_host(self, address: str, *names: str) -> None:
        for n in names:
            self.addresses[n] = address

    def write_hosts(self) -> Path:
        by_addr: dict[str, list[str]] = {}
        for name, addr in self.addresses.items():
            by_addr.setdefault(addr, []).append(name)
        text = "127.0.0.1 localhost\n::1 localhost\n" + "".join(
            f"{a} {' '.join(ns)}\n" for a, ns in by_addr.items())
        path = self.run_dir / "hosts"
        path.write_text(text)
        path.chmod(0o644)
        return path

    # ---------------------------------------------------------------------------------------------------- run
    def run(self) -> Report:
        try:
            self._run()
        except _Stop:
            pass
        finally:
            self.teardown()
            self.report.seconds = round(time.monotonic() - self.report.started, 1)
        return self.report

    def _run(self) -> None:
        rep = self.report
        cfg = stack_config(self.program_dir, self.stack)
        cloud = str(cfg.get("cloud", "aws"))
        t = time.monotonic()
        try:
            if (cfg.get("vector_store") or {}).get("kind") == "pgvector" and not self.pg.has_vector():
                self.pg.start_embedded(CACHE, self.run_dir / "pgdata")
            self.pg.psql(f'CREATE DATABASE "{self.db}"')
            self.db_created = True
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            rep.add("create the deployment's database", FAILED, f"PostgreSQL at {self.pg.where}: {exc}", t)
            raise _Stop from None
        db_addr = self.router.address()
        self.add_host(db_addr, DB_HOST)
        self._serve(db_addr, self.pg.port, self.pg.connect())
        rep.add("create the deployment's database", OK, f"{DB_HOST} -> {self.pg.describe()}, "
                f"database {self.db} (dropped afterwards)", t)
        t = time.monotonic()
        # Trust auth ignores it; the characters a URL must encode prove the manifests carry the URL intact.
        db_password = secrets.token_urlsafe(12) + "/+@:"
        db_url = (f"postgresql://{self.pg.user}:{urllib.parse.quote(db_password, safe='')}"
                  f"@{DB_HOST}:{self.pg.port}/{self.db}")
        outputs = {**r.default_platform_outputs(cloud), "database_url": db_url}
        try:
            result = render_revealed(self.program_dir, self.stack, {"database_url": db_url}, outputs)
        except (r.RenderError, OSError) as exc:
            rep.add("render the app stack under mocks", FAILED, str(exc), t)
            raise _Stop from None
        manifests = result.manifests
        if self.plant is not None:
            self.plant(manifests)
        rep.add("render the app stack under mocks", OK,
                f"{len(manifests)} objects; platform output database_url -> {DB_HOST}/{self.db}", t)
        self.manifests = manifests
        ns = next((m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"), str(cfg.get("namespace")))
        self.namespace = ns

        # The image: the project's Dockerfile, stood in for by a venv with the project installed plus its COPYs.
        t = time.monotonic()
        dockerfile = self.project_dir / "Dockerfile"
        try:
            self.image = parse_dockerfile(dockerfile)
            venv, cached = image_venv(self.project_dir, self.image, CACHE)
            self.image_binds = [(host, path) for host, path in image_files(
                self.project_dir, self.image, self.run_dir / "image")]
            self.image_binds += [(venv, dest) for dest in self.image.venv_copies]
        except (OSError, ManifestError, subprocess.CalledProcessError) as exc:
            rep.add("build the image stand-in", FAILED, str(exc), t)
            raise _Stop from None
        self.project_image = str((cfg.get("api") or {}).get("image", ""))
        rep.notes.append(f"image {self.project_image} is stood in for by this machine's python with the project "
                         f"installed ({'pip install ' + self.image.pip_target}) and the Dockerfile's COPYs"
                         f" bound under {self.image.workdir}; the rest of the root filesystem is the host's, "
                         "read-only")
        rep.add("build the image stand-in", OK, f"venv {'cached' if cached else 'built'} from the Dockerfile", t)

        for release in result.helm_releases:
            rep.add(f"helm release {release['name']}", NOT_REHEARSED,
                    f"chart {release.get('chart')} {release.get('version')}: a Helm chart is not rendered to manifests "
                    "here; its job is played by the rehearsal itself (Prometheus, the model double's scaling)")
        self._plan_services()
        for provider in [p for p in cfg.get("providers") or [] if p != "local"]:
            rep.add(f"provider {provider}", NOT_REHEARSED, "an external API: the sandboxes have no route to the "
                    "internet, so every call to it fails as unreachable")
        self._classify()
        self._run_workloads()
        self._prometheus()
        self._wake()
        self._final_liveness()

    # ------------------------------------------------------------------------------------------------ services
    def _serve(self, address: str, port: int, connect: Any) -> None:
        """Point a Service port at its endpoint (None: no endpoint), here and in every pod's kube-proxy rules."""
        self.router.serve(address, port, connect)
        self.live_ports[(address, port)] = connect is not None
        for pod in self.pods:
            if pod.exited() is None:  # a finished Job's namespace is gone with it
                self._kube_proxy(pod)

    def _kube_proxy(self, pod: Pod) -> None:
        """What kube-proxy's nftables mode does on a node: a Service address:port with endpoints is DNATed to the
        pod proxy's local port for it; one without endpoints is rejected (connection refused)."""
        nat, reject = [], []
        for e in self.egress:
            if self.live_ports.get((e["host"], e["port"])):
                nat.append(f"ip daddr {e['host']} tcp dport {e['port']} dnat to 127.0.0.1:{e['local_port']}")
            else:
                reject.append(f"ip daddr {e['host']} tcp dport {e['port']} reject with tcp reset")
        ruleset = ("table ip rehearsal\ndelete table ip rehearsal\ntable ip rehearsal {\n"
                   "  chain nat { type nat hook output priority -100; policy accept;\n"
                   + "".join(f"    {r}\n" for r in nat) + "  }\n"
                   "  chain filter { type filter hook output priority 0; policy accept;\n"
                   + "".join(f"    {r}\n" for r in reject) + "  }\n}\n")
        error = pod.nft(ruleset)
        if error:
            self.report.add(f"{pod.container.workload} network", FAILED, f"nft: {error}")

    def _plan_services(self) -> None:
        ns = self.namespace
        for m in self.manifests:
            if m["kind"] != "Service":
                continue
            name = m["metadata"]["name"]
            addr = self.router.address()
            self.services[name] = {"address": addr, "manifest": m}
            self.add_host(addr, name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local")

    def _services_selecting(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return [s for s in self.services.values() if _matches(s["manifest"]["spec"].get("selector") or {}, labels)]

    def _classify(self) -> None:
        self.run_list: list[tuple[Container, str]] = []  # (container, how)
        self.double_container: Container | None = None
        for c in containers(self.manifests):
            limits = (c.spec.get("resources") or {}).get("limits") or {}
            command = c.spec.get("command") or []
            if c.image == self.project_image:
                self.run_list.append((c, "project image"))
            elif any(k.endswith("/gpu") for k in limits):
                self.double_container = c
            elif command and shutil.which(command[0]):
                self.run_list.append((c, f"this machine's {command[0]}"))
            elif re.search(r"(^|/)(postgres|pgvector)[:/]", c.image + "/"):
                self._postgres_backend(c)
            else:
                name = c.image.split("/")[-1].split(":")[0]
                self.report.add(f"{c.workload}", NOT_REHEARSED,
                                f"no {name} server on this machine ({c.image}); its Services refuse connections")

    def _postgres_backend(self, c: Container) -> None:
        t = time.monotonic()
        env = resolve_env(c, self.manifests, self.namespace, "")
        # The postgres image's contract: POSTGRES_USER is the bootstrap superuser and owns POSTGRES_DB.
        user = env.get("POSTGRES_USER", "postgres")
        db = env.get("POSTGRES_DB", user)
        password = env.get("POSTGRES_PASSWORD", "")
        if not password and env.get("POSTGRES_PASSWORD_FILE"):
            password = next((v for vol, m in volumes_of(c) if "secret" in vol
                             and env["POSTGRES_PASSWORD_FILE"].startswith(m["mountPath"].rstrip("/") + "/")
                             for k, v in (object_data(self.manifests, "Secret", vol["secret"]["secretName"])
                                          or {}).items() if env["POSTGRES_PASSWORD_FILE"].endswith("/" + k)), "")
        try:
            quoted = password.replace("'", "''")
            if self.pg.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{user}'") == "0":
                self.pg.psql(f'CREATE ROLE "{user}" SUPERUSER LOGIN PASSWORD \'{quoted}\'')
                self.created_roles.append(user)
            if self.pg.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{db}'") == "0":
                self.pg.psql(f'CREATE DATABASE "{db}" OWNER "{user}"')
                self.created_dbs.append(db)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            self.report.add(c.workload, FAILED, f"creating role {user} and database {db}: {exc}", t)
            return
        for svc in self._services_selecting(c.labels):
            for p in svc["manifest"]["spec"]["ports"]:
                self._serve(svc["address"], int(p["port"]), self.pg.connect())
        self.report.add(c.workload, OK, f"image {c.image} stood in for by {self.pg.describe()}: role {user}, "
                        f"database {db} as its env declares", t)

    # ----------------------------------------------------------------------------------------------- workloads
    def _egress(self) -> list[dict[str, Any]]:
        pairs = [(svc["address"], int(p["port"])) for svc in self.services.values()
                 for p in svc["manifest"]["spec"].get("ports", [])]
        pairs.append((self.addresses[DB_HOST], self.pg.port))
        # Paths as the pod sees them: the host's socket directory is bound at SVC_DIR in every sandbox.
        return [{"host": h, "port": p, "path": f"{SVC_DIR}/{Path(self.router.svc_socket(h, p)).name}",
                 "local_port": 41000 + i} for i, (h, p) in enumerate(pairs)]

    def _make_pod(self, c: Container, how: str) -> Pod:
        address = self.router.address()
        name = f"{c.name}-{secrets.token_hex(3)}"
        pod_dir = self.run_dir / "pods" / name
        pod_dir.mkdir(parents=True)
        env = resolve_env(c, self.manifests, self.namespace, address)
        uid, gid = c.user(self.image.user if how == "project image" else None)
        is_project = how == "project image"
        base_env = dict(self.image.env) if is_project else {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                                                    "/usr/bin:/sbin:/bin"}
        pod = Pod(name=name, container=c, address=address, env={**base_env, **env},
                  argv=argv(c, self.image if is_project else None), uid=uid, gid=gid,
                  workdir=c.spec.get("workingDir") or (self.image.workdir if is_project else "/"), dir=pod_dir)
        if is_project:
            pod.binds += [("ro", host, path) for host, path in self.image_binds]
        for vol, mount in volumes_of(c):
            path = mount["mountPath"]
            if "emptyDir" in vol and (vol["emptyDir"] or {}).get("medium") == "Memory":
                pod.binds.append(("tmpfs", Path(), path))
            elif "secret" in vol or "configMap" in vol:
                kind, ref = ("Secret", vol["secret"]["secretName"]) if "secret" in vol else \
                    ("ConfigMap", vol["configMap"]["name"])
                data = object_data(self.manifests, kind, ref) or {}
                host = pod_dir / "volumes" / vol["name"]
                host.mkdir(parents=True)
                items = (vol.get("secret") or vol.get("configMap") or {}).get("items")
                for key, value in data.items():
                    target = next((i["path"] for i in items or [] if i["key"] == key), None if items else key)
                    if target:
                        (host / target).write_text(value)
                        (host / target).chmod(0o444)
                host.chmod(0o555)
                pod.binds.append(("ro", host, path))
            else:  # emptyDir, PVC, generic ephemeral volume: writable, owned by the pod's user (fsGroup)
                host = pod_dir / "volumes" / vol["name"]
                host.mkdir(parents=True)
                os.chown(host, uid, gid)
                pod.binds.append(("ro" if mount.get("readOnly") else "rw", host, path))
        return pod

    def _run_workloads(self) -> None:
        hosts = self.write_hosts()
        egress = self.egress = self._egress()
        for c, how in self.run_list:
            t = time.monotonic()
            try:
                pod = self._make_pod(c, how)
            except ManifestError as exc:
                self.report.add(f"{c.workload} starts", FAILED, str(exc), t)
                continue
            ports = [int(p["containerPort"]) for p in c.spec.get("ports", []) or []]
            pod.start(hosts, egress, ports, self.router.svc_dir)
            self.pods.append(pod)
            self._kube_proxy(pod)
            pod.net_ready()
            for port in ports:
                self.router.serve(pod.address, port, unix(pod.socket(port)), egress=False)
            extra = "" if how == "project image" else f" (image stood in for by {how})"
            if c.kind == "Job" or c.init:
                self._wait_job(pod, t, extra)
            else:
                self._probe_pod(pod, extra)

    def _wait_job(self, pod: Pod, t: float, extra: str) -> None:
        c = pod.container
        spec = next(m for m in self.manifests if m["kind"] == c.kind and m["metadata"]["name"] == c.name)
        deadline = float(spec["spec"].get("activeDeadlineSeconds", 600))
        try:
            assert pod.proc is not None
            rc = pod.proc.wait(deadline)
        except Exception:  # noqa: BLE001 - timeout
            self.report.add(f"{pod.container.workload} completes", FAILED,
                            f"still running after activeDeadlineSeconds={deadline:.0f}", t)
            raise _Stop from None
        if rc != 0:
            self.report.add(f"{pod.container.workload} completes", FAILED,
                            f"exit {rc}: {pod.log_tail()}", t)
            raise _Stop from None
        self.report.add(f"{pod.container.workload} completes", OK, f"exit 0{extra}", t)

    def _probe(self, pod: Pod, probe: dict[str, Any]) -> tuple[bool, str]:
        timeout = float(probe.get("timeoutSeconds", 1))
        c = pod.container
        try:
            if "httpGet" in probe:
                g = probe["httpGet"]
                port = c.port_number(g["port"])
                conn = http.client.HTTPConnection(pod.address, port, timeout=timeout)
                conn.request("GET", g.get("path", "/"))
                status = conn.getresponse().status
                conn.close()
                return 200 <= status < 400, f"GET {g.get('path', '/')} on port {port}: HTTP {status}"
            if "tcpSocket" in probe:
                port = c.port_number(probe["tcpSocket"]["port"])
                # The relay accepts, then resets if nothing listens in the pod: read to tell the two apart.
                with __import__("socket").create_connection((pod.address, port), timeout=timeout) as s:
                    s.settimeout(0.3)
                    try:
                        if s.recv(1) == b"":
                            return False, f"TCP {port}: closed"
                    except TimeoutError:
                        pass
                return True, f"TCP {port}: open"
            if "exec" in probe:
                rc, out = pod.exec(list(probe["exec"]["command"]), timeout)
                return rc == 0, f"exec {' '.join(probe['exec']['command'])}: exit {rc} {out[-200:]}"
        except (OSError, http.client.HTTPException, ManifestError) as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return False, f"unsupported probe {sorted(probe)}"

    def _wait_probe(self, pod: Pod, kind: str, probe: dict[str, Any], extra: str) -> bool:
        t = time.monotonic()
        budget = _budget(probe)
        name = f"{pod.container.workload} {kind}"
        last = ""
        time.sleep(float(probe.get("initialDelaySeconds", 0)))
        while True:
            rc = pod.exited()
            if rc is not None:
                self.report.add(name, FAILED, f"container exited {rc} before the probe passed: {pod.log_tail()}", t)
                return False
            ok, last = self._probe(pod, probe)
            if ok:
                self.report.add(name, OK, f"{last} after {time.monotonic() - t:.1f} s "
                                f"(budget {budget:.0f} s){extra}", t)
                return True
            if time.monotonic() - t > budget:
                self.report.add(name, FAILED, f"not passing within its budget of {budget:.0f} s "
                                f"(initialDelay + period x failureThreshold): {last}; log: {pod.log_tail()}", t)
                return False
            time.sleep(min(1.0, float(probe.get("periodSeconds", 10))))

    def _probe_pod(self, pod: Pod, extra: str) -> None:
        spec = pod.container.spec
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = spec.get(kind)
            if probe is None:
                continue
            if not self._wait_probe(pod, kind, probe, extra):
                return
            if kind == "readinessProbe":
                self._ready(pod)
        if "readinessProbe" not in spec:
            self._ready(pod)

    def _ready(self, pod: Pod) -> None:
        """The pod is an endpoint now: its Services route to it."""
        pod.ready = True
        for svc in self._services_selecting(pod.container.labels):
            for p in svc["manifest"]["spec"]["ports"]:
                target = p.get("targetPort", p["port"])
                try:
                    port = pod.container.port_number(target)
                except ManifestError as exc:
                    self.report.add(f"service/{svc['manifest']['metadata']['name']}", FAILED, str(exc))
                    continue
                self._serve(svc["address"], int(p["port"]), unix(pod.socket(port)))

    def _final_liveness(self) -> None:
        for pod in self.pods:
            probe = pod.container.spec.get("livenessProbe")
            if pod.container.kind == "Job" or probe is None or not pod.ready:
                continue
            ok, detail = self._probe(pod, probe)
            if not ok or pod.exited() is not None:
                self.report.add(f"{pod.container.workload} still live at the end", FAILED,
                                f"{detail}; log: {pod.log_tail()}")

    # ---------------------------------------------------------------------------------------------- Prometheus
    def _prometheus(self) -> None:
        monitors = [m for m in self.manifests if m["kind"] == "ServiceMonitor"]
        self.prom_url = ""
        if not monitors:
            self.report.add("prometheus scrapes the ServiceMonitors", NOT_REHEARSED,
                            "the manifests have no ServiceMonitor (prometheus_monitors is off)")
            return
        t = time.monotonic()
        binary = shutil.which("prometheus")
        if binary is None:
            self.report.add("prometheus scrapes the ServiceMonitors", FAILED,
                            "no prometheus binary: apt-get install -y prometheus")
            return
        scrape = []
        expected: dict[str, int] = {}
        unrun: dict[str, str] = {}  # jobs whose Services select no rehearsed pod (e.g. the model server at zero)
        for sm in monitors:
            for i, ep in enumerate(sm["spec"].get("endpoints", [])):
                targets: list[dict[str, Any]] = []
                selected = False
                for svc in self.services.values():
                    sm_sel = sm["spec"].get("selector", {}).get("matchLabels", {})
                    if not _matches(sm_sel, svc["manifest"]["metadata"].get("labels", {})):
                        continue
                    sport = next((p for p in svc["manifest"]["spec"]["ports"] if p.get("name") == ep.get("port")),
                                 None)
                    if sport is None:
                        continue
                    for pod in self.pods:
                        if _matches(svc["manifest"]["spec"].get("selector") or {}, pod.container.labels):
                            selected = True
                            try:
                                port = pod.container.port_number(sport.get("targetPort", sport["port"]))
                            except ManifestError:
                                continue
                            # The labels the Prometheus Operator gives a ServiceMonitor's targets (job is the
                            # Service's name), which ScaledObject queries may select on.
                            targets.append({"targets": [f"{pod.address}:{port}"], "labels": {
                                "job": svc["manifest"]["metadata"]["name"], "namespace": self.namespace,
                                "service": svc["manifest"]["metadata"]["name"], "pod": pod.name,
                                "container": str(pod.container.spec.get("name", "")),
                                "endpoint": str(ep.get("port", ""))}})
                job = f"serviceMonitor/{self.namespace}/{sm['metadata']['name']}/{i}"
                if not selected:
                    unrun[job] = "no endpoints: its workload is not a rehearsed process"
                    continue
                expected[job] = len(targets)
                scrape.append({"job_name": job, "metrics_path": ep.get("path", "/metrics"),
                               "scrape_interval": ep.get("interval", "30s"), "scrape_timeout": "5s",
                               "static_configs": targets})
        prom_dir = self.run_dir / "prometheus"
        (prom_dir / "data").mkdir(parents=True)
        (prom_dir / "prometheus.yml").write_text(yaml.safe_dump({"global": {"scrape_interval": "15s"},
                                                                  "scrape_configs": scrape}))
        addr = self.router.address()
        self.prom_url = f"http://{addr}:9090"
        with open(prom_dir / "log.txt", "wb") as log:
            self.prometheus = subprocess.Popen(
                [binary, f"--config.file={prom_dir / 'prometheus.yml'}", f"--storage.tsdb.path={prom_dir / 'data'}",
                 f"--web.listen-address={addr}:9090"], stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.scrape_interval = max(_seconds(s["scrape_interval"]) for s in scrape) if scrape else 15.0
        deadline = time.monotonic() + 3 * self.scrape_interval
        detail = ""
        while time.monotonic() < deadline:
            try:
                data = self._prom_get("/api/v1/targets")["data"]["activeTargets"]
            except (OSError, ValueError, KeyError):
                time.sleep(1)
                continue
            results: dict[str, list[str]] = {}
            for tgt in data:
                results.setdefault(tgt["scrapePool"], []).append(
                    tgt["health"] + ("" if tgt["health"] == "up" else f" ({tgt.get('lastError', '')})"))
            pending = [j for j, n in expected.items() if sum(h == "up" for h in results.get(j, [])) < n or n == 0]
            detail = "; ".join([f"{j.split('/')[2]}: {', '.join(results.get(j, [])) or 'no targets'}"
                                for j in expected] + [f"{j.split('/')[2]}: {why}" for j, why in unrun.items()])
            if not pending:
                self.report.add("prometheus scrapes the ServiceMonitors", OK, detail, t)
                return
            if any(n == 0 for n in expected.values()):
                break
            time.sleep(1)
        self.report.add("prometheus scrapes the ServiceMonitors", FAILED, detail or "prometheus did not start", t)

    def _prom_get(self, path: str) -> Any:
        with urllib.request.urlopen(self.prom_url + path, timeout=5) as resp:
            return json.loads(resp.read())

    def _prom_value(self, query: str) -> float | None:
        data = self._prom_get("/api/v1/query?" + urllib.parse.urlencode({"query": query}))["data"]["result"]
        return float(data[0]["value"][1]) if data else None

    # ---------------------------------------------------------------------------------------------------- wake
    def _api(self) -> tuple[str, int, dict[str, str]]:
        api = next(((p, s) for p in self.pods for s in self._services_selecting(p.container.labels)
                    if p.container.spec.get("readinessProbe", {}).get("httpGet")), None)
        if api is None:
            raise ManifestError("no ready HTTP workload behind a Service")
        pod, svc = api
        port = int(svc["manifest"]["spec"]["ports"][0]["port"])
        headers = {"content-type": "application/json"}
        keys = pod.env.get("AISTARTER_API_KEYS", "")
        if keys:
            headers["authorization"] = "Bearer " + keys.split(",")[0].split(":")[-1]
        return svc["address"], port, headers

    def _wake(self) -> None:
        c = self.double_container
        if c is None:
            self.report.add("wake from zero", NOT_REHEARSED, "no self-hosted model server in the manifests")
            return
        scaled = next((m for m in self.manifests if m["kind"] == "ScaledObject"
                       and m["spec"]["scaleTargetRef"]["name"] == c.name), None)
        services = self._services_selecting(c.labels)
        args = c.spec.get("args", [])
        model = args[args.index("--served-model-name") + 1] if "--served-model-name" in args else \
            args[args.index("--model") + 1] if "--model" in args else "model"
        self.double = ModelDouble(self.router, model)
        self.report.notes.append(f"{c.workload} ({c.image}) is stood in for by an OpenAI-compatible double on "
                                 f"its Service address: the only stand-in")
        t = time.monotonic()
        if not any(p.ready for p in self.pods if p.container.image == self.project_image):
            self.report.add("wake from zero", FAILED, "the API is not ready", t)
            return
        try:
            host, port, headers = self._api()
        except ManifestError as exc:
            self.report.add("wake from zero", FAILED, str(exc), t)
            return
        # 1-2: the double is stopped (its Service refuses), a chat request and a job ask for the model.
        chat: dict[str, Any] = {}
        body = {"model": model, "messages": [{"role": "user", "content": "rehearsal: wake up"}], "stream": True}

        def send_chat() -> None:
            try:
                conn = http.client.HTTPConnection(host, port, timeout=600)
                conn.request("POST", "/v1/chat/completions", json.dumps(body), headers)
                resp = conn.getresponse()
                chat.update(status=resp.status, retry_after=resp.getheader("retry-after"),
                            body=resp.read().decode(errors="replace"), at=time.monotonic() - t)
            except (OSError, http.client.HTTPException) as exc:
                chat.update(status=0, body=str(exc), at=time.monotonic() - t)

        thread = threading.Thread(target=send_chat, daemon=True)
        thread.start()
        job_id = None
        # Jobs are queued through the API's own endpoint; a project without a job queue answers 404.
        status, text = self._http(host, port, "POST", "/v1/jobs", headers, {"requests": [
            {"model": model, "messages": [{"role": "user", "content": "rehearsal: queued job"}]}]})
        if status in (200, 202):
            job_id = json.loads(text)["id"]
        elif status != 404:
            self.report.add("wake: queue a job for the model", FAILED, f"POST /v1/jobs: HTTP {status} {text}", t)
        self.report.add("wake: requests held while the model server is down", OK,
                        f"chat request sent{', job ' + job_id + ' queued' if job_id else ' (no job queue)'}; "
                        f"the double is stopped, {c.name}'s Service refuses connections", t)
        # 3: the ScaledObject's own query, sent to the rehearsal's Prometheus, must cross the activation threshold.
        t = time.monotonic()
        trigger = next((tr for tr in (scaled or {}).get("spec", {}).get("triggers", [])
                        if tr.get("type") == "prometheus"), None)
        if trigger is None or not self.prom_url:
            why = "no prometheus trigger" if trigger is None else "no Prometheus (no ServiceMonitors)"
            self.report.add("wake: ScaledObject query crosses its activation threshold", FAILED,
                            f"{c.name}: {why}: nothing would wake the model server", t)
        else:
            query = trigger["metadata"]["query"]
            threshold = float(trigger["metadata"].get("activationThreshold", 0))
            # Two scrapes and one KEDA poll: by then KEDA would have seen the demand.
            deadline = time.monotonic() + 2 * self.scrape_interval + float(scaled["spec"].get("pollingInterval", 30))
            value = None
            while time.monotonic() < deadline:
                try:
                    value = self._prom_value(query)
                except (OSError, ValueError, KeyError):
                    value = None
                if value is not None and value > threshold:
                    break
                time.sleep(1)
            ok = value is not None and value > threshold
            self.report.add("wake: ScaledObject query crosses its activation threshold", OK if ok else FAILED,
                            f"{query} = {value} (activationThreshold {threshold:g})", t)
        # 4: start the double; 5: both complete.
        t = time.monotonic()
        before = ""
        if job_id:
            code, text = self._http(host, port, "GET", f"/v1/jobs/{job_id}", headers, None)
            before = json.loads(text).get("status", "") if code == 200 else ""
        self.double.start()
        for svc in services:
            for p in svc["manifest"]["spec"]["ports"]:
                self._serve(svc["address"], int(p["port"]), self.double.connect())
        thread.join(600)
        how = "held until the double started"
        if chat.get("status") == 503 and chat.get("retry_after"):
            how = (f"answered 503 Retry-After: {chat['retry_after']} after {chat['at']:.1f} s (its latency budget); "
                   "retried once the double started")
            thread = threading.Thread(target=send_chat, daemon=True)
            thread.start()
            thread.join(120)
        chat_ok = chat.get("status") == 200 and "[DONE]" in chat.get("body", "")
        self.report.add("wake: the held chat request completes", OK if chat_ok else FAILED,
                        f"{how}: HTTP {chat.get('status')}" + ("" if chat_ok else f" {chat.get('body', '')[:300]}"),
                        t)
        if job_id:
            t = time.monotonic()
            status = ""
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                code, text = self._http(host, port, "GET", f"/v1/jobs/{job_id}", headers, None)
                status = json.loads(text).get("status", "") if code == 200 else f"HTTP {code}"
                if status in ("succeeded", "failed", "dead_letter"):
                    break
                time.sleep(1)
            self.report.add("wake: the queued job completes", OK if status == "succeeded" else FAILED,
                            f"job {job_id}: {status}" + (f" (already {before} before the double started: the "
                                                          "model's cold start was not waited for)"
                                                          if before in ("failed", "dead_letter") else ""), t)
        # 6: a usage row and an interaction record for each.
        t = time.monotonic()
        # The database the API itself uses (its DATABASE_URL), on the rehearsal's PostgreSQL.
        api_env = next(p.env for p in self.pods if p.container.image == self.project_image and p.ready)
        db = urllib.parse.urlsplit(api_env.get("DATABASE_URL", "")).path.lstrip("/") or self.db
        try:
            usage = int(self.pg.psql(f"SELECT count(*) FROM usage_records WHERE model = '{model}'", db))
            inter = int(self.pg.psql(f"SELECT count(*) FROM interactions WHERE model = '{model}' "
                                     "AND finished_at IS NOT NULL", db))
        except (RuntimeError, ValueError) as exc:
            self.report.add("wake: usage and interaction recorded", FAILED, str(exc), t)
            return
        want = 2 if job_id else 1
        ok = usage >= want and inter >= want
        self.report.add("wake: usage and interaction recorded", OK if ok else FAILED,
                        f"database {db}: {usage} usage row(s), {inter} finished interaction(s) for {model} "
                        f"(expected >= {want})", t)

    def _http(self, host: str, port: int, method: str, path: str, headers: dict[str, str],
              body: Any) -> tuple[int, str]:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=30)
            conn.request(method, path, json.dumps(body) if body is not None else None, headers)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            return 0, str(exc)

    # ------------------------------------------------------------------------------------------------ teardown
    def teardown(self) -> None:
        for pod in self.pods:
            pod.stop()
        if self.prometheus is not None:
            self.prometheus.terminate()
            try:
                self.prometheus.wait(10)
            except subprocess.TimeoutExpired:
                self.prometheus.kill()
        if self.double is not None:
            self.double.stop()
        self.router.close()
        drops = [f'DROP DATABASE IF EXISTS "{d}" WITH (FORCE)' for d in
                 ([self.db] if self.db_created else []) + self.created_dbs]
        drops += [f'DROP ROLE IF EXISTS "{u}"' for u in self.created_roles]
        for sql in drops if not self.pg.embedded else []:
            try:
                self.pg.psql(sql)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                self.report.notes.append(f"could not clean up ({sql}): {exc}")
        self.pg.stop()
        if self.keep:
            self.report.notes.append(f"kept {self.run_dir} (pod logs under pods/)")
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)


class _Stop(Exception):
    """A step failed that every later step needs."""


def rehearse(program_dir: str | Path, stack: str | None = None, plant: Plant | None = None,
             keep: bool = False) -> Report:
    program_dir = Path(program_dir)
    stacks = r.stacks_of(program_dir)
    if not stacks:
        raise r.RenderError(f"no Pulumi.<stack>.yaml in {program_dir}: point at a generated project's infra/app")
    stack = stack or ("dev" if "dev" in stacks else stacks[0])
    return Rehearsal(program_dir, stack, plant, keep=keep).run()
