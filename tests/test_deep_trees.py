"""Trees too deep for paths (issue 12): a container may make its /tmp and its volumes
thousands of levels deep and still be removed with them."""

from __future__ import annotations

from typing import Any

from conftest import IMAGE, Daemon

from supervisor.rmtree import remove_tree


def test_a_container_that_made_deep_trees_is_removed_with_its_volume(
    daemon: Daemon, dk: Any
) -> None:
    # 2,500 levels, 500 per `mkdir -p` (each argument stays short of PATH_MAX).
    step = "d/" * 500
    deepen = f"for i in 1 2 3 4 5; do mkdir -p {step} && cd -P {step} || exit 1; done"
    c = dk.containers.run(
        IMAGE,
        ["sh", "-c", f"(cd /tmp && {deepen}) && (cd /data && {deepen})"],
        volumes={"deepvol": {"bind": "/data"}},
        detach=True,
    )
    cdir, vdir = daemon.root / "containers" / c.id, daemon.root / "volumes" / "deepvol"
    try:
        assert c.wait()["StatusCode"] == 0, c.logs()
        assert (cdir / "upper" / "tmp" / "d").is_dir()
        c.remove(v=True)
        assert not cdir.exists()
        dk.volumes.get("deepvol").remove()
        assert not vdir.exists()
    finally:  # a failure must not break the teardown
        remove_tree(cdir / "upper" / "tmp")
        remove_tree(vdir / "_data" / "d")
