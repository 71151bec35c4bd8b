"""The PostgreSQL the rehearsal's databases live on: this machine's server, or, when the project needs pgvector
and that server has no `vector` extension, a private embedded PostgreSQL with pgvector (PyPI `pgserver`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .net import Connect, tcp, unix

# The machine's real server (what CI and the test suite use); host:port, or a unix socket directory.
DEFAULT = os.environ.get("AISTARTER_REHEARSE_POSTGRES", "127.0.0.1:5432")
PGSERVER_SPEC = "pgserver==0.1.4"
_KEEPALIVE = ("import sys, pgserver; s = pgserver.get_server(sys.argv[1], cleanup_mode='stop'); "
              "print(s.get_uri(), flush=True); sys.stdin.read()")


class Postgres:
    def __init__(self, where: str = DEFAULT, user: str | None = None) -> None:
        self.where = where
        self.user = user or os.environ.get("PGUSER", "postgres")
        self.proc: subprocess.Popen[str] | None = None
        self.embedded = False

    @property
    def port(self) -> int:
        return 5432 if self.where.startswith("/") else int(self.where.rpartition(":")[2])

    def connect(self) -> Connect:
        if self.where.startswith("/"):
            return unix(f"{self.where}/.s.PGSQL.{self.port}")
        host, _, port = self.where.rpartition(":")
        return tcp(host, int(port))

    def describe(self) -> str:
        return (f"an embedded PostgreSQL with pgvector ({PGSERVER_SPEC}; this machine's has no vector extension)"
                if self.embedded else f"the real PostgreSQL at {self.where}")

    def psql(self, sql: str, db: str = "postgres") -> str:
        host = self.where if self.where.startswith("/") else self.where.rpartition(":")[0]
        out = subprocess.run(["psql", "-h", host, "-p", str(self.port), "-U", self.user, "-d", db,
                              "-v", "ON_ERROR_STOP=1", "-Atc", sql], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            lines = out.stderr.strip().splitlines() or ["psql failed"]
            raise RuntimeError(next((ln for ln in lines if "ERROR" in ln or "FATAL" in ln), lines[-1]))
        return out.stdout.strip()

    def has_vector(self) -> bool:
        return self.psql("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'") != "0"

    def start_embedded(self, cache: Path, data: Path) -> None:
        """pgserver in a venv of its own (cached), its data under the run directory, its socket in there too."""
        venv = cache / "pgserver-venv"
        if not (venv / ".complete").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                                  PGSERVER_SPEC], capture_output=True, text=True)
            if pip.returncode != 0:
                raise RuntimeError(f"pip install {PGSERVER_SPEC}: {(pip.stderr.strip().splitlines() or [''])[-1]}")
            (venv / ".complete").write_text("")
        data.mkdir(parents=True)
        self.proc = subprocess.Popen([str(venv / "bin" / "python"), "-c", _KEEPALIVE, str(data)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, start_new_session=True)
        assert self.proc.stdout is not None
        uri = self.proc.stdout.readline().strip()  # postgresql://postgres:@/postgres?host=<socket dir>
        if "host=" not in uri:
            raise RuntimeError(f"pgserver did not start (printed {uri!r})")
        self.where = uri.split("host=", 1)[1].split("&")[0]
        self.user = "postgres"
        self.embedded = True

    def stop(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
