"""`liaison serve` as a separate OS process, for what only a real process shows: signals,
graceful shutdown, and several processes sharing one database (and Redis)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from yarl import URL

from server.settings import PROJECT_ROOT, Settings
from tests.conftest import PASSWORD, free_port

READY_TIMEOUT_S = 60.0


def serve_env(settings: Settings, port: int, **overrides: str) -> dict[str, str]:
    """The environment of a `liaison serve` on ``port`` over the test's database (as
    ``make_settings`` made it): this machine's, less its LIAISON_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env.update(
        {
            "PYTHONPATH": str(PROJECT_ROOT),
            "LIAISON_DATABASE__URL": settings.database.url,
            "LIAISON_PATHS__VAR_DIR": str(settings.paths.var_dir),
            "LIAISON_PASSWORDS__TIME_COST": "1",
            "LIAISON_PASSWORDS__MEMORY_COST_KIB": "8",
            "LIAISON_PASSWORDS__PARALLELISM": "1",
            "LIAISON_LOGGING__FORMAT": "console",
            "LIAISON_SERVER__HOST": "127.0.0.1",
            "LIAISON_SERVER__PORT": str(port),
            "LIAISON_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
            **overrides,
        }
    )
    return env


@dataclass
class ServeProcess:
    """One `liaison serve`; its standard error goes to ``log_path`` (shown when it fails)."""

    settings: Settings
    log_path: Path
    overrides: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        # free_port() finds a port that was free a moment ago; by the time the new process has
        # started and binds it (a second or two later) another process may have taken it. Then
        # the server stops at once, saying so, and it is started again on another port.
        for _ in range(3):
            if await self._start():
                return
            self.port = free_port()
        raise AssertionError(f"no free port for `liaison serve`:\n{self.log_tail()}")

    async def _start(self) -> bool:
        """Start the process and wait until it is ready; False if its port was taken."""
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server.cli", "serve",
                cwd=PROJECT_ROOT,
                env=serve_env(self.settings, self.port, **self.overrides),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )  # fmt: skip
        # Each poll is short: whatever holds a taken port may never answer.
        poll = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=poll) as http, asyncio.timeout(READY_TIMEOUT_S):
            while True:
                if self.proc.returncode is not None:
                    if "address already in use" in self.log_tail().lower():
                        return False
                    raise AssertionError(f"exited:\n{self.log_tail()}")
                try:
                    async with http.get(self.base_url + "/readyz") as response:
                        if response.status == 200:
                            return True
                except (aiohttp.ClientConnectionError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)

    def terminate(self) -> None:
        """SIGTERM: what an orchestrator sends to stop a process."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    async def exit_code(self, timeout_s: float = 30) -> int:
        assert self.proc is not None
        async with asyncio.timeout(timeout_s):
            return await self.proc.wait()

    async def stop(self) -> None:
        """Stop it whatever state it is in (teardown)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.terminate()
        try:
            await self.exit_code()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


async def signed_in_cookie(base_url: str, username: str, cookie_name: str) -> str:
    """Sign in over HTTP as a browser would; the session cookie's value."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        response = await http.post(
            base_url + "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert response.status == 200, await response.text()
        return http.cookie_jar.filter_cookies(URL(base_url))[cookie_name].value
