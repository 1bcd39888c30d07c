"""A PostgreSQL cluster of our own: its data directory, started and stopped with Debian's tools.

PostgreSQL refuses to run as root, so when this process is root the cluster belongs to, and
every server program runs as, the system user ``postgres`` (Debian's ``postgresql`` package
makes it); otherwise as the current user. The cluster listens on TCP only (no Unix socket: its
default directory belongs to the system's own cluster) and every connection needs the
password (SCRAM), kept in a ``pgpass`` file (mode 0600) that libpq reads through
``$PGPASSFILE``. Its own PID file (``postmaster.pid`` in the data directory) says whether it
runs, on which port, and is what ``pg_ctl stop`` uses.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from softmax_lab.errors import TrackingError

__all__ = ["SUPERUSER", "Cluster", "find_bin_dir", "server_user"]

SUPERUSER = "softmax_lab"  # the cluster's superuser (initdb -U), the MLflow server's login
SYSTEM_USER = "postgres"  # who runs PostgreSQL when we are root
BIN_ENV = "SOFTMAX_LAB_PG_BIN"  # a directory holding initdb and pg_ctl, to use instead
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections


def find_bin_dir() -> Path:
    """The directory of ``initdb`` and ``pg_ctl``: ``$SOFTMAX_LAB_PG_BIN``, else the newest
    ``/usr/lib/postgresql/<version>/bin`` (Debian's layout), else the one on ``PATH``.

    Raises
    ------
    TrackingError
        PostgreSQL's server programs are nowhere to be found.
    """
    named = os.environ.get(BIN_ENV)
    if named:
        if not (Path(named) / "pg_ctl").is_file():
            raise TrackingError(f"${BIN_ENV}={named}: no pg_ctl in that directory")
        return Path(named)
    versions = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if versions:
        newest = max(versions, key=lambda p: int(Path(p).parts[-3]))
        return Path(newest).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise TrackingError(
        "PostgreSQL is not installed (no pg_ctl in /usr/lib/postgresql/*/bin or on PATH): "
        f"`apt-get install postgresql`, or name its bin directory in ${BIN_ENV}"
    )


def server_user() -> pwd.struct_passwd:
    """The user PostgreSQL runs as: ``postgres`` when we are root, else ourselves.

    Raises
    ------
    TrackingError
        We are root and there is no ``postgres`` user.
    """
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise TrackingError(
            f"PostgreSQL refuses to run as root and there is no {SYSTEM_USER!r} user to run it "
            "as: `apt-get install postgresql` makes one (or run softmax-lab as another user)"
        ) from None


@dataclass(frozen=True)
class Cluster:
    """One PostgreSQL cluster: ``data`` (its data directory), ``pgpass`` (the password file),
    ``log`` (the server's log file)."""

    data: Path
    pgpass: Path
    log: Path

    # --- running the server's programs ----------------------------------------------------

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``program`` (one of PostgreSQL's, or a plain command) as the server user."""
        path = find_bin_dir() / program
        argv = [str(path) if path.is_file() else program, *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", server_user().pw_name, "--", *argv]
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def _chown(self, path: Path) -> None:
        user = server_user()
        if os.geteuid() == 0:
            os.chown(path, user.pw_uid, user.pw_gid)

    # --- life cycle -------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether ``initdb`` made the data directory (its ``PG_VERSION`` file is there)."""
        return (self.data / "PG_VERSION").is_file()

    def init(self) -> None:
        """Create the cluster: a fresh data directory (mode 0700, the server user's) with the
        superuser ``SUPERUSER`` and a random password, written to ``pgpass`` (mode 0600).

        Raises
        ------
        TrackingError
            The server user cannot reach the data directory, or ``initdb`` failed.
        """
        password = secrets.token_urlsafe(24)
        self.data.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._chown(self.data)
        self._check_reachable()
        # initdb reads the password from a file the server user can read; gone right after
        pwfile = self.data.parent / ".initdb-password"
        write_private(pwfile, password + "\n")
        self._chown(pwfile)
        try:
            done = self._run(
                "initdb",
                "--pgdata",
                str(self.data),
                "--username",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
            )
        finally:
            pwfile.unlink()
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise TrackingError(f"initdb {self.data} failed: {last}")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# softmax-lab: TCP only (-h/-p given by pg_ctl start)\n")
            conf.write("unix_socket_directories = ''\n")
        write_private(self.pgpass, f"*:*:*:{SUPERUSER}:{password}\n")

    def _check_reachable(self) -> None:
        if self._run("test", "-w", str(self.data)).returncode != 0:
            raise TrackingError(
                f"PostgreSQL's user {server_user().pw_name!r} cannot reach {self.data}: a parent "
                "directory is closed to other users; choose a --dir it can reach (e.g. under "
                "/srv or /tmp) or open the parents with `chmod o+x`"
            )

    def running_port(self) -> int | None:
        """The port of the running server of this data directory, or None when none runs (its
        PID file names a live process started on this data directory)."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's (postgres when we are not root: not ours then)
        return port

    def pid(self) -> int | None:
        """The postmaster's PID from its PID file, or None when it does not run."""
        if self.running_port() is None:
            return None
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def start(self, *, host: str, port: int) -> None:
        """Start the server on ``host:port`` and wait until it accepts connections.

        Raises
        ------
        TrackingError
            It did not start within ``START_TIMEOUT`` s; the message names its log file.
        """
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        self._chown(self.log)
        done = self._run(
            "pg_ctl",
            "--pgdata",
            str(self.data),
            "--log",
            str(self.log),
            "--wait",
            f"--timeout={START_TIMEOUT}",
            "--options",
            f"-h {host} -p {port}",
            "start",
        )
        if done.returncode != 0:
            raise TrackingError(f"PostgreSQL did not start on {host}:{port}; see {self.log}")

    def stop(self) -> bool:
        """Stop the server (fast shutdown: open sessions are ended, data is flushed); whether
        one was running."""
        if self.running_port() is None:
            return False
        done = self._run("pg_ctl", "--pgdata", str(self.data), "--mode=fast", "--wait", "stop")
        if done.returncode != 0:
            raise TrackingError(f"PostgreSQL of {self.data} did not stop: {done.stderr.strip()}")
        return True

    def create_database(
        self, name: str, *, host: str, port: int, owner: tuple[str, str] | None = None
    ) -> None:
        """Create database ``name`` unless it exists, owned by ``SUPERUSER``, or by the login
        role ``owner`` (name, password: created, or its password set, first)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            host=host,
            port=port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            passfile=str(self.pgpass),
        ) as con:
            if owner is not None:
                role, password = owner
                exists = con.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                verb = "ALTER" if exists.fetchone() is not None else "CREATE"
                con.execute(
                    sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
            found = con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if found is None:
                con.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                    if owner is None
                    else sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(name), sql.Identifier(owner[0])
                    )
                )


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable and writable by its owner only (mode 0600), never
    readable by others in between."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode under O_CREAT
    with os.fdopen(fd, "w") as f:
        f.write(text)
