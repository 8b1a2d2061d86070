"""Prune and disk usage as a Docker user meets them: `container/image/volume/network/
system prune` with `until` and `label` filters and docker's output, and `system df`
whose figures are checked against what the test made."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon

from supervisor.engine.prune import parse_filters
from supervisor.errors import InvalidArgument

IMAGE = "busybox:latest"


def test_prune_filters_as_docker_reads_them() -> None:
    now = 1_000_000.0
    f = parse_filters("containers", {"until": ["1h"], "label": ["a=1", "b"]}, now)
    assert f.until == now - 3600
    assert not f.keeps(now - 7200, {"a": "1", "b": ""})
    assert f.keeps(now - 60, {"a": "1", "b": ""})  # too new
    assert f.keeps(now - 7200, {"a": "2", "b": ""})  # label value differs
    g = parse_filters("images", {"label!": ["x"], "dangling": ["false"]}, now)
    assert g.dangling is False and g.keeps(0, {"x": "y"}) and not g.keeps(0, {})
    assert parse_filters("containers", {"until": ["2001-09-09T01:46:40Z"]}, now).until == 1e9
    with pytest.raises(InvalidArgument, match="invalid filter 'until'"):
        parse_filters("volumes", {"until": ["1h"]}, now)
    with pytest.raises(InvalidArgument, match="failed to parse value as time or duration"):
        parse_filters("networks", {"until": ["yesterday"]}, now)


def _stopped(dk: Any, name: str, size: int, labels: dict[str, str] | None = None) -> Any:
    c = dk.containers.run(IMAGE, ["sh", "-c", f"head -c {size} /dev/zero > /payload"],
                          detach=True, name=name, labels=labels or {})
    assert c.wait()["StatusCode"] == 0
    return c


def test_container_prune_with_filters_and_dockers_output(daemon: Daemon, dk: Any) -> None:
    gone = _stopped(dk, "prune-gone", 5000, {"tier": "tmp"})
    kept = _stopped(dk, "prune-kept", 10, {"tier": "keep"})
    running = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, labels={"tier": "tmp"})
    res = daemon.docker("container", "prune", "-f", "--filter", "label=tier=tmp", check=True)
    assert res.stdout == f"Deleted Containers:\n{gone.id}\n\nTotal reclaimed space: 5kB\n"
    # until: a container made just now is newer than an hour ago, so it stays
    res = daemon.docker("container", "prune", "-f", "--filter", "until=1h", check=True)
    assert res.stdout == "Total reclaimed space: 0B\n"
    future = str(int(time.time()) + 3600)
    res = daemon.cli("container", "prune", "-f", "--filter", f"until={future}")
    assert res.stdout == f"Deleted Containers:\n{kept.id}\n\nTotal reclaimed space: 10B\n"
    assert [c.id for c in dk.containers.list(all=True)] == [running.id]
    res = daemon.cli("container", "prune", "-f", "--filter", "bogus=1")
    assert (res.returncode, res.stderr) == (
        1, "corral: Error response from daemon: invalid filter 'bogus'\n")
    res = daemon.cli("container", "prune")  # no answer at the prompt: nothing goes
    assert res.stdout.startswith("WARNING! This will remove all stopped containers.\n")
    assert running.id in [c.id for c in dk.containers.list(all=True)]


def test_image_prune_dangling_then_all_with_reclaimed_space(daemon: Daemon, dk: Any) -> None:
    base = dk.images.get(IMAGE).attrs["Size"]
    _stopped(dk, "img-src", 20000).commit("tagged", "v1")
    user = dk.containers.create(IMAGE, ["true"])  # keeps busybox in use
    dangling = dk.containers.run(IMAGE, ["sh", "-c", "head -c 30000 /dev/zero > /d"],
                                 detach=True)
    dangling.wait()
    image = dangling.commit()  # no name: dangling
    size = image.attrs["Size"] - base
    res = daemon.docker("image", "prune", "-f", check=True)
    assert res.stdout.startswith(f"Deleted Images:\ndeleted: {image.id}\n")
    assert res.stdout.endswith(f"\nTotal reclaimed space: {_human(size)}\n")
    assert {t for i in dk.images.list() for t in i.tags} == {IMAGE, "tagged:v1"}
    res = daemon.cli("image", "prune", "-a", "-f")
    assert res.returncode == 0 and "untagged: tagged:v1\n" in res.stdout
    assert {t for i in dk.images.list() for t in i.tags} == {IMAGE}  # in use: kept
    user.remove()


def _human(size: int) -> str:
    from supervisor.cli.prune import human

    return human(size)


def test_volume_and_network_prune_filters(daemon: Daemon, dk: Any) -> None:
    dk.volumes.create("vp-a", labels={"sweep": "yes"})
    dk.volumes.create("vp-b")
    res = daemon.docker("volume", "prune", "-a", "-f", "--filter", "label=sweep=yes",
                        check=True)
    assert res.stdout.startswith("Deleted Volumes:\nvp-a\n")
    assert [v.name for v in dk.volumes.list()] == ["vp-b"]
    res = daemon.docker("volume", "prune", "-f", "--filter", "until=1h")
    assert res.returncode == 1 and "invalid filter 'until'" in res.stderr
    dk.networks.create("np-old")
    res = daemon.docker("network", "prune", "-f", "--filter", "until=1h", check=True)
    assert res.stdout == ""  # newer than an hour ago: kept
    res = daemon.docker("network", "prune", "-f", "--filter",
                        f"until={int(time.time()) + 60}", check=True)
    assert res.stdout == "Deleted Networks:\nnp-old\n\n"


def test_system_prune_sections_and_total(daemon: Daemon, dk: Any) -> None:
    stopped = _stopped(dk, "sys-stopped", 7000)
    dk.networks.create("sys-net")
    dk.containers.run(IMAGE, ["true"], volumes=["/anon"], name="sys-vol")
    vol = [v.name for v in dk.volumes.list()][0]
    ids = sorted([stopped.id, dk.containers.get("sys-vol").id])
    res = daemon.cli("system", "prune", "-f", "--volumes")
    text = res.stdout
    assert text.startswith("Deleted Containers:\n")
    assert sorted(text.split("\n\n")[0].splitlines()[1:]) == ids
    assert "\n\nDeleted Networks:\nsys-net\n\n" in text
    assert f"\n\nDeleted Volumes:\n{vol}\n\n" in text
    assert text.endswith("Total reclaimed space: 7kB\n")
    res = daemon.docker("system", "prune", "-f", check=True)  # nothing left to prune
    assert res.stdout == "Total reclaimed space: 0B\n"


def _cells(table: str) -> list[list[str]]:
    """A table's cells, with the ages (which move between two runs) blanked."""
    import re

    aged = re.sub(r"Less than a second|About a minute|\d+ seconds?", "T", table)
    return [line.split() for line in aged.splitlines()]


def test_system_df_figures_match_what_was_made(daemon: Daemon, dk: Any) -> None:
    dk.containers.run(IMAGE, ["sh", "-c", "head -c 100000 /dev/zero > /f"], name="df-a")
    dk.containers.run(IMAGE, ["sh", "-c", "echo hi > /data/x && sleep 1d"], detach=True,
                      volumes={"dfvol": {"bind": "/data"}}, name="df-b")
    assert dk.containers.get("df-b").exec_run(["test", "-s", "/data/x"]).exit_code == 0
    base = dk.images.get(IMAGE).attrs["Size"]
    res = daemon.docker("system", "df", check=True)
    rows = [line.split() for line in res.stdout.splitlines()]
    assert rows[1][:3] == ["Images", "1", "1"] and rows[1][3] == _human(base)
    assert rows[2] == ["Containers", "2", "1", "100kB", "100kB", "(100%)"]
    assert rows[3] == ["Local", "Volumes", "1", "1", "3B", "0B", "(0%)"]
    assert rows[4] == ["Build", "Cache", "0", "0", "0B", "0B"]
    assert daemon.cli("system", "df").stdout == res.stdout
    verbose = daemon.docker("system", "df", "-v", check=True).stdout
    assert _cells(daemon.cli("system", "df", "-v").stdout) == _cells(verbose)
    assert "dfvol         1         3B" in verbose
    df = dk.df()
    sizes = {c["Names"][0]: c["SizeRw"] for c in df["Containers"]}
    assert sizes == {"/df-a": 100000, "/df-b": 0}  # df-b wrote only to its volume
    assert [v["UsageData"] for v in df["Volumes"]] == [{"Size": 3, "RefCount": 1}]


def test_builder_prune_forgets_the_build_cache(daemon: Daemon, dk: Any, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN echo cached > /c\n")
    first = daemon.cli("build", "-t", "cached:v1", str(tmp_path))
    assert first.returncode == 0, first.stderr
    again = daemon.cli("build", "-t", "cached:v1", str(tmp_path))
    assert "Using cache" in again.stdout + again.stderr
    res = daemon.docker("builder", "prune", "-f", check=True)
    assert res.stdout.startswith("Deleted build cache objects:\n")
    assert res.stdout.endswith("\n\nTotal reclaimed space: 0B\n")
    after = daemon.cli("build", "-t", "cached:v1", str(tmp_path))
    assert after.returncode == 0 and "Using cache" not in after.stdout + after.stderr
    assert daemon.cli("builder", "prune", "-f").stdout.startswith("Deleted build cache")
    assert daemon.cli("builder", "prune", "-f").stdout == "Total reclaimed space: 0B\n"


@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_system_prune_all_removes_unused_images_and_system_events(
    private_daemon: Any, rootfs_tar: Path, cli: bool
) -> None:
    """`system prune -a`: images no container uses go too (not only dangling ones), the
    one a container uses stays; `system events` shows what happened, as docker's.  A
    daemon of its own: prune -a must not take the session's images."""
    daemon = private_daemon()
    dk = daemon.client()
    dk.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    since = str(int(time.time()) - 1)
    keep = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="sp-keep")
    maker = dk.containers.run(IMAGE, ["sh", "-c", "echo x > /made"], detach=True, name="sp-mk")
    maker.wait()
    img = maker.commit("sp-unused", "1")
    maker.remove()
    run = daemon.cli if cli else daemon.docker
    r = run("system", "prune", "-a", "-f")
    assert r.returncode == 0, r.stderr
    assert "untagged: sp-unused:1" in r.stdout and f"deleted: {img.id}" in r.stdout
    assert [t for i in dk.images.list() for t in i.tags] == [IMAGE]  # in use: kept
    r = run("system", "events", "--since", since, "--until", str(int(time.time()) + 1),
            "--filter", "container=sp-mk", "--format", "{{.Type}} {{.Action}}")  # fmt: skip
    assert r.returncode == 0, r.stderr
    actions = r.stdout.splitlines()
    assert actions[0] == "container create" and "container commit" in actions
    assert actions[-1] == "container destroy"
    keep.remove(force=True)
    dk.close()
