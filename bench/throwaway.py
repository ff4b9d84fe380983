"""Throwaway PostgreSQL for the bench and the failover drill: a server to make databases in
(DATABASE_URL's when it is PostgreSQL, else 127.0.0.1:5432) and whole clusters of their own
(Debian's binaries, initdb, run as the ``postgres`` user when we are root, as PostgreSQL
refuses root), on free loopback ports.

    with throwaway.database("bench_ha") as url: ...          # a database, dropped after
    primary = throwaway.Cluster(tmp, "primary").init()        # a cluster of its own
    standby = primary.standby(tmp, "standby")                 # pg_basebackup -R from it
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import time

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_url():
    """The server the bench makes its databases in, as a SQLAlchemy URL (database
    ``postgres``): DATABASE_URL's when it is PostgreSQL, else 127.0.0.1:5432."""
    from sqlalchemy.engine import make_url

    url = os.environ.get("DATABASE_URL") or ""
    base = make_url(url) if url.startswith("postgresql") else make_url(PG_ADMIN)
    return base.set(database="postgres")


@contextlib.contextmanager
def database(name: str, server=None):
    """A new database ``name`` on ``server`` (server_url() by default), dropped after;
    yields its URL as a string."""
    from sqlalchemy import create_engine, text

    base = server or server_url()
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            connection.execute(text(f"CREATE DATABASE {name}"))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with contextlib.suppress(Exception), admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def pg_bin() -> str:
    """The newest Debian PostgreSQL binaries (initdb, pg_ctl, pg_basebackup)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not found:
        raise RuntimeError("no PostgreSQL server binaries: apt-get install postgresql")
    return os.path.dirname(found[-1])


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def temp_dir(prefix: str) -> str:
    """A temporary folder (under /tmp) the clusters' user and nginx's workers may enter."""
    import tempfile

    path = tempfile.mkdtemp(prefix=prefix)
    os.chmod(path, 0o755)
    return path


def prepare_dir(path: str) -> str:
    """A directory the clusters' user may write (chowned to postgres when we are root); its
    parents must be open to that user (temp_dir())."""
    os.makedirs(path, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


class Cluster:
    """One PostgreSQL cluster under ``base``/``name`` listening on 127.0.0.1:``port`` (a
    free one by default), its socket and log beside it."""

    def __init__(self, base: str, name: str, port: int | None = None):
        self.base = prepare_dir(base)
        self.name = name
        self.data = os.path.join(base, name)
        self.log = os.path.join(base, f"{name}.log")
        self.port = port or free_port()
        self.bin = pg_bin()

    def _run(self, *args, check=True, timeout=120) -> subprocess.CompletedProcess:
        done = subprocess.run([*_as_postgres(), *args], timeout=timeout,
                              capture_output=True, text=True)
        if check and done.returncode:
            raise RuntimeError(f"{os.path.basename(args[0])} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-500:]}")
        return done

    def _configure(self, settings: dict) -> None:
        lines = [f"{key} = '{value}'" if isinstance(value, str) else f"{key} = {value}"
                 for key, value in settings.items()]
        with open(os.path.join(self.data, "postgresql.conf"), "a", encoding="utf-8") as conf:
            conf.write("\n# throwaway settings (bench/throwaway.py)\n" + "\n".join(lines) + "\n")

    def settings(self) -> dict:
        return {"listen_addresses": "127.0.0.1", "port": self.port,
                "unix_socket_directories": self.base, "cluster_name": self.name,
                "logging_collector": "off"}

    def init(self, **settings) -> "Cluster":
        """initdb (trust on loopback, replication included), the settings given, start."""
        self._run(f"{self.bin}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync")
        self._configure({**self.settings(), **settings})
        return self.start()

    def standby(self, base: str, name: str, **settings) -> "Cluster":
        """A streaming-replication standby of this cluster: pg_basebackup -R (standby.signal
        and primary_conninfo), started; its cluster_name is the application_name the
        primary's synchronous_standby_names names."""
        other = Cluster(base, name)
        self_conn = f"host=127.0.0.1 port={self.port} user=postgres"
        other._run(f"{self.bin}/pg_basebackup", "-d", self_conn, "-D", other.data, "-R",
                   "--wal-method=stream", "--checkpoint=fast", "--no-sync")
        # the copied postgresql.conf is the primary's: the standby gets its own port and
        # name, and no synchronous standby of its own (else, once promoted, every commit
        # would wait for a standby that does not exist)
        other._configure({**other.settings(), "synchronous_standby_names": "", **settings})
        return other.start()

    def start(self) -> "Cluster":
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                  "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop; ``immediate``: as a crash (no shutdown checkpoint)."""
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop",
                  check=False)

    def promote(self) -> None:
        """pg_ctl promote, waiting until the cluster takes writes."""
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-w", "-t", "60", "promote")

    def running(self) -> bool:
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres"):
        """One statement in autocommit; the first column of every row."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname=database, autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(statement)
            return [row[0] for row in cursor.fetchall()] if cursor.description else []

    def wait_synchronous(self, standby: str, seconds: float = 30) -> None:
        """Until ``standby`` streams as this primary's synchronous standby (it is reported
        ``async`` while it still catches up after its start)."""
        stop = time.monotonic() + seconds
        query = ("SELECT state || ' ' || sync_state FROM pg_stat_replication "
                 f"WHERE application_name = '{standby}'")
        while (found := self.sql(query)) != ["streaming sync"]:
            if time.monotonic() > stop:
                raise RuntimeError(f"{standby} is not a synchronous standby: {found}")
            time.sleep(0.1)


def remove(*clusters: Cluster) -> None:
    """Stop every cluster still running (immediate) and remove its directory."""
    for cluster in clusters:
        if cluster is None:
            continue
        with contextlib.suppress(Exception):
            if cluster.running():
                cluster.stop("immediate")
        shutil.rmtree(cluster.data, ignore_errors=True)
