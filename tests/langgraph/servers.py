"""Real LangGraph API servers for tests: ``langgraph dev`` (langgraph-cli[inmem]) in a
temporary directory each, on a free loopback port, with no network and no ambient keys.

The environment is built from nothing (PATH, HOME, tracing and analytics off, a dead
proxy for anything not on loopback), so neither a developer's LangSmith key nor the
network can reach the servers. The inmem runtime pickles its state into
``./.langgraph_api`` of its working directory, so every server gets a fresh one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

APP = Path(__file__).parent / "app"
READY_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(home: Path) -> dict[str, str]:
    """Only what the server needs: no inherited API keys, no way out to the network."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(home),
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@dataclass
class Server:
    """One running ``langgraph dev``: its URL, directory and process."""

    graphs: dict[str, str]
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="chatledger-lg-")))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        shutil.copy(APP / "graph.py", self.directory / "graph.py")
        config = {"dependencies": ["."], "graphs": self.graphs}
        (self.directory / "langgraph.json").write_text(json.dumps(config))
        home = self.directory / "home"
        home.mkdir()
        command = [
            str(Path(sys.executable).parent / "langgraph"),
            "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        log = open(self.directory / "server.log", "wb")  # noqa: SIM115 - the process owns it
        self.process = subprocess.Popen(
            command, cwd=self.directory, env=server_environment(home), stdout=log, stderr=subprocess.STDOUT
        )
        return self

    def wait(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"langgraph dev exited with {self.process.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"langgraph dev did not answer /ok in {READY_SECONDS} s: {self.log()}")

    def log(self) -> str:
        return (self.directory / "server.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_servers(*graph_sets: dict[str, str]) -> list[Server]:
    """Start several servers at once (they boot in parallel) and wait for all."""
    servers = [Server(graphs).start() for graphs in graph_sets]
    try:
        for server in servers:
            server.wait()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def environment_is_clean() -> bool:
    """True when no LangGraph/LangSmith key is in this process's environment."""
    return not any(
        name in os.environ for name in ("LANGGRAPH_API_KEY", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY")
    )
