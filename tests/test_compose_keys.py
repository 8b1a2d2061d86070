"""Service-file keys applied end to end through `corral compose up`: deploy.restart_policy
(mapped to a restart policy as compose maps it), memswap_limit, label_file, and the
older `external: {name: X}` of volumes and networks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Daemon


def up(corral: Daemon, tmp: Path, text: str) -> str:
    path = tmp / "compose.yaml"
    path.write_text(text)
    r = corral.cli("compose", "-f", str(path), "up", "-d")
    assert r.returncode == 0, r.stderr
    return str(path)


def host_config(dk: Any, name: str) -> dict[str, Any]:
    return dict(dk.containers.get(name).attrs["HostConfig"])


def test_deploy_restart_policy_maps_to_restart(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = up(corral, tmp_path, """\
name: ks
services:
  a:
    image: busybox
    command: [sleep, '1000']
    restart: always
    deploy: {restart_policy: {condition: on-failure, max_attempts: 3, delay: 5s}}
  b:
    image: busybox
    command: [sleep, '1000']
    deploy: {restart_policy: {condition: any}}
  c:
    image: busybox
    command: [sleep, '1000']
    deploy: {restart_policy: {condition: none}}
""")
    assert host_config(dk, "ks-a-1")["RestartPolicy"] == {
        "Name": "on-failure", "MaximumRetryCount": 3
    }
    assert host_config(dk, "ks-b-1")["RestartPolicy"]["Name"] == "always"
    assert host_config(dk, "ks-c-1")["RestartPolicy"]["Name"] == "no"
    corral.cli("compose", "-f", file, "down", "-t", "0", check=True)


def test_restart_policy_delay_warns_and_a_bad_condition_fails(
    corral: Daemon, tmp_path: Path
) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  a:\n    image: busybox\n"
                    "    deploy: {restart_policy: {condition: sometimes}}\n")
    r = corral.cli("compose", "-f", str(path), "config", "-q")
    assert r.returncode == 1
    assert "deploy.restart_policy.condition: invalid condition 'sometimes'" in r.stderr
    path.write_text("services:\n  a:\n    image: busybox\n"
                    "    deploy: {restart_policy: {window: 10s}}\n")
    r = corral.cli("compose", "-f", str(path), "config", "-q")
    assert r.returncode == 0, r.stderr
    assert "deploy.restart_policy.window is ignored" in r.stderr


def test_memswap_limit(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = up(corral, tmp_path, """\
name: ks
services:
  a:
    image: busybox
    command: [sleep, '1000']
    mem_limit: 64m
    memswap_limit: 128m
  b:
    image: busybox
    command: [sleep, '1000']
    mem_limit: 64m
    memswap_limit: -1
""")
    assert host_config(dk, "ks-a-1")["MemorySwap"] == 128 * 1024 * 1024
    assert host_config(dk, "ks-b-1")["MemorySwap"] == -1
    corral.cli("compose", "-f", file, "down", "-t", "0", check=True)


def test_label_file_under_labels(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    (tmp_path / "labels").write_text("# team labels\nteam=core\ntier=from-file\n")
    file = up(corral, tmp_path, """\
name: ks
services:
  a:
    image: busybox
    command: [sleep, '1000']
    label_file: ./labels
    labels: {tier: from-labels}
""")
    labels = dk.containers.get("ks-a-1").labels
    assert labels["team"] == "core"
    assert labels["tier"] == "from-labels"
    corral.cli("compose", "-f", file, "down", "-t", "0", check=True)
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  a:\n    image: busybox\n    label_file: [missing]\n")
    r = corral.cli("compose", "-f", str(path), "config", "-q")
    assert r.returncode == 1 and "label file" in r.stderr and "missing" in r.stderr


def test_external_name_of_a_volume(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    dk.volumes.create("shared-data")
    file = up(corral, tmp_path, """\
name: ks
services:
  a:
    image: busybox
    command: [sleep, '1000']
    volumes: [data:/data]
volumes:
  data:
    external: {name: shared-data}
""")
    mounts = dk.containers.get("ks-a-1").attrs["Mounts"]
    assert [m["Name"] for m in mounts if m["Type"] == "volume"] == ["shared-data"]
    assert sorted(v.name for v in dk.volumes.list()) == ["shared-data"]
    corral.cli("compose", "-f", file, "down", "-t", "0", check=True)


SECRETS = """\
name: ks
services:
  a:
    image: busybox
    command: [sleep, '1000']
    secrets: [token, {source: token, target: other}]
    configs: [app, {source: app, target: /etc/app.conf}]
secrets:
  token: {file: ./token.txt}
configs:
  app: {file: ./app.conf}
"""


def test_file_secrets_and_configs_are_mounted_read_only(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    (tmp_path / "token.txt").write_text("s3cret\n")
    (tmp_path / "app.conf").write_text("key=value\n")
    file = up(corral, tmp_path, SECRETS)
    c = dk.containers.get("ks-a-1")
    for path, want in (("/run/secrets/token", "s3cret"), ("/run/secrets/other", "s3cret"),
                       ("/app", "key=value"), ("/etc/app.conf", "key=value")):
        r = c.exec_run(["cat", path])
        assert r.exit_code == 0 and r.output.decode().strip() == want, path
    r = c.exec_run(["sh", "-c", "echo x > /run/secrets/token"])
    assert r.exit_code != 0  # read-only
    corral.cli("compose", "-f", file, "down", "-t", "0", check=True)


def test_environment_and_content_sources_with_modes_and_owners(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    (tmp_path / "token.txt").write_text("from-file\n")
    path = tmp_path / "compose.yaml"
    path.write_text("""\
name: ks
services:
  a:
    image: busybox
    command: [sleep, '1000']
    stop_grace_period: 1s
    secrets:
      - env_secret
      - {source: file_secret, target: owned, uid: '65534', gid: '65534', mode: 0400}
    configs:
      - {source: inline, target: /etc/app/inline.conf, mode: '0640'}
secrets:
  env_secret: {environment: TOKEN}
  file_secret: {file: ./token.txt}
configs:
  inline: {content: "inline text"}
""")
    r = corral.cli("compose", "-f", str(path), "up", "-d", input=None)
    assert r.returncode == 1 and "secret env_secret: environment variable TOKEN is not set" \
        in r.stderr
    env = corral.env(TOKEN="from-env")
    import subprocess
    import sys

    r2 = subprocess.run([sys.executable, "-m", "supervisor", "compose", "-f", str(path), "up",
                         "-d"], env=env, capture_output=True, text=True, timeout=60)
    assert r2.returncode == 0, r2.stderr
    c = dk.containers.get("ks-a-1")
    out = c.exec_run(["sh", "-c", "for f in /run/secrets/env_secret /run/secrets/owned "
                      "/etc/app/inline.conf; do stat -c '%n %a %u:%g' $f; cat $f; echo; done"])
    assert out.output.decode().split("\n") == [
        "/run/secrets/env_secret 444 0:0", "from-env",
        "/run/secrets/owned 400 65534:65534", "from-file", "",
        "/etc/app/inline.conf 640 0:0", "inline text", "",
    ]
    # readable only by its owner: nobody reads it, another user does not
    assert c.exec_run(["cat", "/run/secrets/owned"], user="65534").exit_code == 0
    assert c.exec_run(["cat", "/run/secrets/owned"], user="1000").exit_code != 0
    corral.cli("compose", "-f", str(path), "down", "-t", "0", check=True)


def test_secret_sources_corral_cannot_serve_are_refused_by_name(
    corral: Daemon, tmp_path: Path
) -> None:
    path = tmp_path / "compose.yaml"
    for text, named in (
        (SECRETS.replace("{file: ./token.txt}", "{external: true}"),
         "secrets.token.external is not supported by corral yet"),
        (SECRETS.replace("[token, {source: token, target: other}]", "[nope]"),
         'service "a" refers to undefined secret nope'),
        (SECRETS.replace("{file: ./token.txt}", "{file: a, environment: B}"),
         "secrets.token: needs one source"),
        (SECRETS.replace("[token, {source: token, target: other}]",
                         "[{source: token, mode: rwx}]"),
         "services.a.secrets[0].mode: invalid mode 'rwx'"),
    ):
        path.write_text(text)
        r = corral.cli("compose", "-f", str(path), "config", "-q")
        assert r.returncode == 1, text
        assert named in r.stderr, r.stderr


ANON = """\
name: ks
services:
  a:
    image: busybox
    command: [sh, -c, 'test -f /data/mark || echo $$V > /data/mark; exec sleep 1000']
    stop_grace_period: 1s
    environment: {V: first}
    volumes: [/data]
"""


def test_anonymous_volumes_are_kept_across_recreate_and_renewed_with_v(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = up(corral, tmp_path, ANON)
    first = dk.containers.get("ks-a-1")
    volume = [m["Name"] for m in first.attrs["Mounts"] if m["Destination"] == "/data"][0]
    up(corral, tmp_path, ANON.replace("V: first", "V: second"))  # recreated
    again = dk.containers.get("ks-a-1")
    assert again.id != first.id
    assert [m["Name"] for m in again.attrs["Mounts"] if m["Destination"] == "/data"] == [volume]
    assert again.exec_run(["cat", "/data/mark"]).output.decode().strip() == "first"
    (tmp_path / "compose.yaml").write_text(ANON.replace("V: first", "V: third"))
    r = corral.cli("compose", "-f", file, "up", "-d", "-V")
    assert r.returncode == 0, r.stderr
    renewed = dk.containers.get("ks-a-1")
    assert [m["Name"] for m in renewed.attrs["Mounts"] if m["Destination"] == "/data"] != [volume]
    assert renewed.exec_run(["cat", "/data/mark"]).output.decode().strip() == "third"
    corral.cli("compose", "-f", file, "down", "-t", "0", check=True)
