"""Server processes for the benchmarks (and the Redis tests): start on a free loopback port, wait
until ready, read their CPU time from /proc, and always stop them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A redis-server on a free loopback port, keeping nothing on disk; it can be stopped and
    started again on the same port (an outage), or paused."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            "redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with asyncio.timeout(10):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                await writer.wait_closed()
                return

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing is answered, as when Redis hangs or the
        network between drops every packet."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGCONT)  # a paused one cannot act on SIGTERM
            self._process.terminate()
            await self._process.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads), from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may hold spaces: split after the last ")".
    fields = raw.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # stat fields 14 and 15
    return (utime + stime) / CLOCK_TICKS


def run_delay_seconds(pid: int) -> float:
    """Time the process's main thread (its event loop) spent runnable but waiting for a CPU,
    from /proc/<pid>/task/<pid>/schedstat: on a loaded machine, what other work took from it.
    (Only the main thread: other threads come and go, and their share leaves with them.)"""
    fields = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    return int(fields[1]) / 1e9


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


@dataclass
class ServerProcess:
    """A server started as a subprocess; ``stop()`` is safe to call at any time, twice."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    ready_path: str
    log_path: Path
    ready_timeout_s: float = 90.0
    _proc: asyncio.subprocess.Process | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None, f"{self.name} is not running"
        return self._proc.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def run_delay_seconds(self) -> float:
        return run_delay_seconds(self.pid)

    async def start(self) -> None:
        self._log = self.log_path.open("wb")
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.ready_timeout_s
        async with aiohttp.ClientSession() as http:
            while True:
                if self._proc.returncode is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self._proc.returncode}:\n{self.log_tail()}"
                    )
                try:
                    async with http.get(self.base_url + self.ready_path) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready in {self.ready_timeout_s:.0f} s")
                await asyncio.sleep(0.2)

    async def settle(self, idle_share: float = 0.03, timeout_s: float = 60.0) -> None:
        """Wait until the server uses less than ``idle_share`` of a core (work left over from
        a previous phase, such as disconnect handling, must not count in the next one)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            before, started = self.cpu_seconds(), time.monotonic()
            await asyncio.sleep(0.5)
            if (self.cpu_seconds() - before) / (time.monotonic() - started) < idle_share:
                return

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(15):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
