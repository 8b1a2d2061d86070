"""A project written for `docker compose`, brought up unchanged by `corral compose`.

The file below uses what real projects do: a built image, healthchecks, depends_on with
its three conditions, a profile, secrets from a file and from the environment (.env)
with owners and modes, and named volumes shared between services. Nothing in it is
corral's; the assertions are what `docker compose up -d --wait` leaves behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Daemon

LABEL = "com.docker.compose.project=shop"
PROJECT_FILE = """\
services:
  db:
    build:
      context: ./db
      args: {APP_UID: "1000"}
    user: "1000:1000"
    volumes: [dbdata:/data]
    secrets:
      - source: db_password
        target: db_password
        uid: "1000"
        gid: "1000"
        mode: 0400
    healthcheck:
      test: ["CMD", "test", "-f", "/data/ready"]
      interval: 1s
      timeout: 2s
      retries: 30
      start_period: 0s
    stop_grace_period: 1s

  migrate:
    image: busybox
    depends_on:
      db: {condition: service_healthy}
    volumes: [dbdata:/data]
    command: ["sh", "-c", "echo migrated > /data/migrated"]

  web:
    image: busybox
    command: ["sh", "-c", "exec sleep 1000"]
    depends_on:
      db: {condition: service_healthy, restart: true}
      migrate: {condition: service_completed_successfully}
    secrets: [api_key]
    environment:
      API_URL: http://db:8080
    volumes: [webcache:/cache]
    healthcheck:
      test: ["CMD-SHELL", "test -s /run/secrets/api_key"]
      interval: 1s
      retries: 30
    stop_grace_period: 1s

  debug:
    image: busybox
    profiles: [debug]
    command: ["sleep", "1000"]
    depends_on: [web]
    stop_grace_period: 1s

volumes:
  dbdata:
  webcache:

secrets:
  db_password:
    file: ./secrets/db_password.txt
  api_key:
    environment: API_KEY
"""

DB_DOCKERFILE = """\
FROM busybox
ARG APP_UID
RUN mkdir -p /data && chown ${APP_UID}:${APP_UID} /data
COPY start.sh /start.sh
CMD ["sh", "/start.sh"]
"""

DB_START = """\
cat /run/secrets/db_password > /data/seen
touch /data/ready
exec sleep 1000
"""


def _write(tmp: Path) -> Path:
    project = tmp / "shop"
    (project / "db").mkdir(parents=True)
    (project / "secrets").mkdir()
    (project / "compose.yaml").write_text(PROJECT_FILE)
    (project / "db" / "Dockerfile").write_text(DB_DOCKERFILE)
    (project / "db" / "start.sh").write_text(DB_START)
    (project / "secrets" / "db_password.txt").write_text("hunter2")
    (project / ".env").write_text("API_KEY=k-123\n")
    return project


def _sh(c: Any, script: str, user: str = "") -> tuple[int, str]:
    code, out = c.exec_run(["sh", "-c", script], user=user)
    return code, out.decode()


def test_a_docker_compose_project_comes_up_unchanged(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    project = _write(tmp_path)

    def compose(*args: str) -> Any:
        return corral.cli("compose", "--project-directory", str(project), *args, timeout=300)

    r = compose("up", "-d", "--wait")
    try:
        assert r.returncode == 0, r.stderr
        running = {
            c.name: c.status
            for c in dk.containers.list(all=True, filters={"label": LABEL})
        }
        # the profile's service is not started; the one-shot migration ran and exited
        assert running == {"shop-db-1": "running", "shop-migrate-1": "exited",
                           "shop-web-1": "running"}
        migrate = dk.containers.get("shop-migrate-1")
        assert migrate.attrs["State"]["ExitCode"] == 0
        assert dk.images.get("shop-db").id  # the built image, named PROJECT-SERVICE
        db, web = dk.containers.get("shop-db-1"), dk.containers.get("shop-web-1")
        assert db.attrs["State"]["Health"]["Status"] == "healthy"
        assert web.attrs["State"]["Health"]["Status"] == "healthy"

        # the secret: its owner and mode, readable by the service's user only
        assert _sh(db, "stat -c '%a %u %g' /run/secrets/db_password") == (0, "400 1000 1000\n")
        assert _sh(db, "cat /run/secrets/db_password") == (0, "hunter2")
        code, out = _sh(db, "cat /run/secrets/db_password", user="65534")
        assert code != 0 and "Permission denied" in out
        assert _sh(db, "echo x > /run/secrets/db_password")[0] != 0  # and not writable
        # an environment-sourced secret (the value from .env), compose's default mode
        assert _sh(web, "cat /run/secrets/api_key") == (0, "k-123")
        assert _sh(web, "stat -c '%a %u' /run/secrets/api_key") == (0, "444 0\n")

        # one named volume shared: db wrote to it as uid 1000, the migration as root
        assert _sh(db, "cat /data/seen /data/migrated") == (0, "hunter2migrated\n")
        assert _sh(db, "stat -c %u /data") == (0, "1000\n")  # the image's owner, copied up
        names = {v.name for v in dk.volumes.list(filters={"label": LABEL})}
        assert names == {"shop_dbdata", "shop_webcache"}

        # the profile brings its service, and nothing else changes
        r = compose("--profile", "debug", "up", "-d")
        assert r.returncode == 0, r.stderr
        assert dk.containers.get("shop-debug-1").status == "running"
        assert dk.containers.get("shop-db-1").id == db.id
    finally:
        r = compose("--profile", "debug", "down", "-v", "-t", "0")
    assert r.returncode == 0, r.stderr
    assert dk.containers.list(all=True, filters={"label": LABEL}) == []
    assert dk.volumes.list(filters={"label": LABEL}) == []
