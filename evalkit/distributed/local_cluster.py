"""A real Ray cluster of separate processes on one machine (loopback): a head and worker nodes, each its own
``ray start --block`` process group, so a worker node can be killed (SIGKILL to the whole group: raylet, agents
and the actors it runs) as when a machine is lost, and started again. The tests and the scaling benchmark run
``--backend ray`` against it; it is also the quickest way to try the backend without a cluster."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRayCluster:
    """``with LocalRayCluster() as cluster: cluster.add_worker(cpus=1)``; everything is killed on exit."""

    def __init__(self) -> None:
        # Loopback only, so no token authentication: Ray 2.5x turns it on once ~/.ray/auth_token exists (any local
        # ray.init() writes one), and then a head started here refuses clients that do not send the token. Set for
        # this process and inherited by the nodes and drivers it starts.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        # Ray's unix sockets live under the temp dir, whose path must stay short (108 bytes for a socket path).
        self.temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.head: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> LocalRayCluster:
        self.head = self._start(
            "--head", "--port", str(self.port), "--num-cpus", "0", "--include-dashboard", "false",
            "--temp-dir", self.temp_dir,
        )  # fmt: skip
        try:
            self._wait_for(lambda resources: True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for process in [*self.workers, self.head]:
            if process is not None:
                self._kill(process)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def add_worker(self, cpus: int = 1) -> subprocess.Popen[bytes]:
        """A worker node with ``cpus`` CPUs; returns once the cluster counts them."""
        before = self._cpus()
        worker = self._start("--address", self.address, "--num-cpus", str(cpus))
        self.workers.append(worker)
        self._wait_for(lambda resources: resources.get("CPU", 0) >= before + cpus)
        return worker

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        """The node is gone at once, as when its machine dies: no clean shutdown."""
        self._kill(worker)
        self.workers.remove(worker)

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [RAY, "start", "--disable-usage-stats", "--block", *args],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def _cpus(self) -> float:
        return float(self._resources().get("CPU", 0))

    def _resources(self) -> dict[str, float]:
        """The cluster's resources as ``ray status`` sees them (without connecting this process to Ray)."""
        result = subprocess.run(
            [sys.executable, "-c", _RESOURCES, self.address], capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            return {}
        return {k: float(v) for k, v in (line.split("=") for line in result.stdout.split() if "=" in line)}

    def _wait_for(self, ready: object, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resources = self._resources()
            if resources and ready(resources):  # type: ignore[operator]
                return
            time.sleep(1)
        raise TimeoutError(f"the Ray cluster at {self.address} did not come up in {timeout:.0f} s")


_RESOURCES = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
print(" ".join(f"{k}={v}" for k, v in ray.cluster_resources().items() if "=" not in k and " " not in k))
"""
