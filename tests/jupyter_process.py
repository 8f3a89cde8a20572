"""A real ``jupyter server`` on 127.0.0.1 in a subprocess, for the server tests and
benchmarks/bench_server.py: temporary config, data and runtime folders, its own port, the
cpet_nb extension enabled, polled on ``/api/status`` until it answers.

Users: a small :class:`IdentityProvider` in the server's config maps each token of
:data:`TOKENS` to its user name (JupyterHub gives a server real user names the same way),
keeping Jupyter's cookie login and XSRF rules.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

#: token -> user name, for the identity provider of the test servers.
TOKENS = {"alice-token": "alice", "bob-token": "bob", "carol-token": "carol",
          "dave-token": "dave", "erin-token": "erin", "frank-token": "frank"}
START_TIMEOUT_S = 120.0
#: Extensions that may be installed beside cpet_nb (disabled in the test servers).
OTHER_EXTENSIONS = ("jupyterlab", "notebook", "notebook_shim", "voila.server_extension",
                    "jupyter_lsp", "jupyter_server_terminals", "nbclassic")

CONFIG = '''
from jupyter_server.auth.identity import IdentityProvider, User

TOKENS = {tokens!r}


class TokensPerUser(IdentityProvider):
    """One token per user (what JupyterHub's provider does with its own tokens)."""

    async def get_user_token(self, handler):
        name = TOKENS.get(self.get_token(handler))
        return None if name is None else User(name)


c.ServerApp.identity_provider_class = TokensPerUser
c.IdentityProvider.token = {first!r}
# only cpet_nb: other extensions installed beside it (JupyterLab, Voila...) slow the start
c.ServerApp.jpserver_extensions = {{name: False for name in {others!r}}}
c.ServerApp.jpserver_extensions["cpet_nb.server"] = True
c.ServerApp.allow_unauthenticated_access = False
{settings}
{extra}
'''


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JupyterServer:
    """``with JupyterServer(folder, cpet_nb={...}) as server:`` -- a running server.

    Parameters
    ----------
    folder : pathlib.Path
        Holds ``root/`` (the server's root), ``config/``, ``data/``, ``runtime/`` and the
        server's log ``server.log``.
    cpet_nb : mapping
        ``c.CpetNb`` settings (``store`` defaults to ``folder/store/jobs.sqlite``).
    env : mapping, optional
        Extra environment variables (e.g. ``CPET_NB_*`` settings).
    config : str
        More lines of the server's config file (Python, run in the server process).
    """

    def __init__(self, folder: Path, cpet_nb: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None, config: str = "") -> None:
        self.folder = folder
        self.root = folder / "root"
        settings = {"store": str(folder / "store" / "jobs.sqlite")} | dict(cpet_nb or {})
        self.store = Path(settings["store"])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/cpet-nb/api/v1"
        for name in ("root", "config", "data", "runtime"):
            (folder / name).mkdir(parents=True, exist_ok=True)
        lines = "\n".join(f"c.CpetNb.{k} = {v!r}" for k, v in settings.items())
        (folder / "config" / "jupyter_server_config.py").write_text(CONFIG.format(
            tokens=TOKENS, first=next(iter(TOKENS)), others=OTHER_EXTENSIONS, settings=lines,
            extra=config))
        self.env = os.environ | {
            "JUPYTER_CONFIG_DIR": str(folder / "config"), "JUPYTER_DATA_DIR": str(folder / "data"),
            "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
        } | dict(env or {})
        self.env.pop("JUPYTER_TOKEN", None)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> JupyterServer:
        log = (self.folder / "server.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
             "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
             f"--ServerApp.root_dir={self.root}"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter server exited ({self.process.returncode}):\n"
                                   + self.log())
            try:
                if requests.get(f"{self.url}/api/status", headers=self.auth("alice"),
                                timeout=2).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"jupyter server did not answer in {START_TIMEOUT_S} s:\n"
                           + self.log())

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        """The server's output so far."""
        return (self.folder / "server.log").read_text(errors="replace")

    @staticmethod
    def auth(user: str) -> dict[str, str]:
        """The Authorization header of ``user`` (a name in :data:`TOKENS`)."""
        token = next(t for t, name in TOKENS.items() if name == user)
        return {"Authorization": f"token {token}"}

    def session(self, user: str) -> requests.Session:
        """A requests session authenticated as ``user`` by token."""
        session = requests.Session()
        session.headers.update(self.auth(user))
        return session

    def wait(self, session: requests.Session, job_id: str, timeout_s: float = 120.0,
             until: str | None = None) -> dict[str, Any]:
        """Poll the job's status until it is no longer ``running`` (or is ``until``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = session.get(f"{self.api}/batches/{job_id}").json()
            if (status["state"] == until) if until else status["state"] != "running":
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(json.dumps(status)[:2000])
            time.sleep(0.2)
