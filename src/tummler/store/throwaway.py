"""A throwaway PostgreSQL server for tests and benchmarks: initdb in a temporary directory, a loopback
port, stopped and removed afterwards.

PostgreSQL refuses to run as root; when we are root, ``initdb`` and ``pg_ctl`` run as the ``postgres``
system user that Debian's package creates, over a data directory that user owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from tummler.core.errors import ConfigError
from tummler.core.network import free_loopback_port

__all__ = ["ThrowawayPostgres", "find_postgres_bindir"]

_INSTALL_HINT = (
    "PostgreSQL server binaries not found; install them with `apt-get install postgresql` "
    "(or put initdb and pg_ctl on PATH)"
)


def find_postgres_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or ``None`` when PostgreSQL is absent."""
    candidates = [os.environ.get("TUMMLER_PG_BINDIR", "")]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if (
            candidate
            and (Path(candidate) / "initdb").exists()
            and (Path(candidate) / "pg_ctl").exists()
        ):
            return Path(candidate)
    return None


class ThrowawayPostgres:
    """Start a private PostgreSQL server on 127.0.0.1; use as a context manager.

    >>> with ThrowawayPostgres() as server:  # doctest: +SKIP
    ...     url = server.url("postgres")
    """

    def __init__(self) -> None:
        bindir = find_postgres_bindir()
        if bindir is None:
            raise ConfigError(_INSTALL_HINT)
        self._bindir = bindir
        self._as_root = os.geteuid() == 0
        self._root = Path(tempfile.mkdtemp(prefix="tummler-pg-"))
        self._data = self._root / "data"
        self.port = free_loopback_port()
        self.user = "postgres" if self._as_root else (os.environ.get("USER") or "postgres")

    def _run(self, *args: str) -> None:
        command = [str(self._bindir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ConfigError(
                f"{args[0]} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}"
            )

    def start(self) -> ThrowawayPostgres:
        if self._as_root:
            shutil.chown(self._root, user="postgres", group="postgres")
        self._run(
            "initdb",
            "-D",
            str(self._data),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        options = (
            f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self._data),
            "-o",
            options,
            "-l",
            str(self._root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def stop(self) -> None:
        try:
            if (self._data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self._root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for ``database`` on this server."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
