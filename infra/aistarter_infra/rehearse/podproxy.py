"""Runs inside each rehearsed pod's own network namespace (stdlib only): the pod's side of Service routing.

- egress: relay a local port per Service address:port to the host's unix socket for it; the host's nftables
  rules in the pod DNAT the Service address there while it has endpoints and reject it (connection refused,
  as kube-proxy does) while it has none;
- ingress: relay the host's unix socket for each container port to 127.0.0.1:<port> in the pod;
- exec: run an exec probe's command inside the pod (same namespaces, user, mounts and environment).
Usage: python podproxy.py CONFIG.json -- COMMAND... (the workload is started as a child and its exit ends us).
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import struct
import sys


async def _pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _reset(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


def _relay(connect):
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await connect()
        except OSError:
            _reset(writer)
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    return handle


async def _egress(port, path):
    # The pod's nftables rules DNAT each Service address:port with endpoints to this local port.
    server = await asyncio.start_server(_relay(lambda: asyncio.open_unix_connection(path)), "127.0.0.1", port)
    await server.serve_forever()


async def _exec(reader, writer, env, cwd):
    request = json.loads(await reader.readline())
    try:
        proc = await asyncio.create_subprocess_exec(*request["argv"], env=env, cwd=cwd,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), request.get("timeout", 10))
            result = {"rc": proc.returncode, "output": out.decode(errors="replace")[-2000:]}
        except TimeoutError:
            proc.kill()
            result = {"rc": -1, "output": f"timed out after {request.get('timeout')} s"}
    except OSError as exc:
        result = {"rc": 127, "output": str(exc)}
    writer.write(json.dumps(result).encode() + b"\n")
    await writer.drain()
    writer.close()


async def main(config, command):
    env = dict(os.environ)
    tasks = [asyncio.ensure_future(_egress(e["local_port"], e["path"])) for e in config["egress"]]
    for ing in config["ingress"]:
        port = ing["port"]
        await asyncio.start_unix_server(
            _relay(lambda port=port: asyncio.open_connection("127.0.0.1", port)), ing["path"])
        os.chmod(ing["path"], 0o777)
    await asyncio.start_unix_server(lambda r, w: _exec(r, w, env, os.getcwd()), config["exec"])
    os.chmod(config["exec"], 0o777)
    # The host loads the pod's nftables rules (its "kube-proxy") first, then says so.
    for _ in range(200):
        if os.path.exists(config["net_ready"]):
            break
        await asyncio.sleep(0.05)
    proc = await asyncio.create_subprocess_exec(*command)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda s=sig: proc.send_signal(s))
    rc = await proc.wait()
    for t in tasks:
        t.cancel()
    return rc


if __name__ == "__main__":
    cfg_path, sep, *cmd = sys.argv[1:]
    with open(cfg_path) as f:
        cfg = json.load(f)
    try:
        code = asyncio.run(main(cfg, cmd))
    except FileNotFoundError as exc:
        print(f"exec {cmd[0]}: {exc.strerror}", file=sys.stderr)
        code = 127
    sys.exit(code if code >= 0 else 128 - code)
