"""Nothing accepted and dropped: every create-body field corral does not apply is
refused by name (`engine/unsupported.py`), and what real clients send by default passes.

Pure: the bodies below are what docker CLI 28, docker-py and corral's compose send.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from config.container import create_body
from config.project import load_project
from supervisor.cli.flags import CREATE, container_body
from supervisor.cli.parser import parse
from supervisor.engine import create as plan
from supervisor.engine.unsupported import HOST_APPLIED, check_body, is_zero
from supervisor.errors import InvalidArgument
from supervisor.runtime.securityopt import no_new_privileges

# `docker run busybox true`, as docker CLI 28.2 sends it (captured on the wire).
DOCKER_RUN_BODY = json.loads(
    """{"Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
    "AttachStdout": true, "AttachStderr": true, "Tty": false, "OpenStdin": false,
    "StdinOnce": false, "Env": null, "Cmd": ["true"], "Image": "busybox", "Volumes": {},
    "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": {},
    "HostConfig": {"Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "",
    "Config": {}}, "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name":
    "no", "MaximumRetryCount": 0}, "AutoRemove": false, "VolumeDriver": "", "VolumesFrom":
    null, "ConsoleSize": [0, 0], "CapAdd": null, "CapDrop": null, "CgroupnsMode": "",
    "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": null, "GroupAdd": null,
    "IpcMode": "", "Cgroup": "", "Links": null, "OomScoreAdj": 0, "PidMode": "",
    "Privileged": false, "PublishAllPorts": false, "ReadonlyRootfs": false, "SecurityOpt":
    null, "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Isolation": "", "CpuShares": 0,
    "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice":
    [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
    "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
    "DeviceCgroupRules": null, "DeviceRequests": null, "MemoryReservation": 0, "MemorySwap":
    0, "MemorySwappiness": -1, "OomKillDisable": false, "PidsLimit": 0, "Ulimits": [],
    "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    "MaskedPaths": null, "ReadonlyPaths": null}, "NetworkingConfig": {"EndpointsConfig":
    {"default": {"IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
    "DriverOpts": null, "GwPriority": 0, "NetworkID": "", "EndpointID": "", "Gateway": "",
    "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
    "GlobalIPv6PrefixLen": 0, "DNSNames": null}}}}"""
)

# docker-py 7: `client.containers.run("busybox", "true")`.
DOCKER_PY_BODY = {
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "AttachStdin": False,
    "AttachStdout": True,
    "AttachStderr": True,
    "Cmd": ["true"],
    "Image": "busybox",
    "NetworkDisabled": False,
    "HostConfig": {"NetworkMode": "default"},
}


def refused(body: dict[str, Any]) -> str:
    with pytest.raises(InvalidArgument) as info:
        check_body(body)
    message = info.value.message
    assert "\n" not in message
    return message


def with_host(**fields: Any) -> dict[str, Any]:
    body = copy.deepcopy(DOCKER_RUN_BODY)
    body["HostConfig"].update(fields)
    return body


def test_what_clients_send_by_default_is_accepted() -> None:
    check_body(DOCKER_RUN_BODY)
    check_body(DOCKER_PY_BODY)
    name, body = container_body(parse(CREATE, ["busybox", "true"]), environ={})
    check_body(body)


def test_corral_cli_bodies_for_what_it_applies_are_accepted() -> None:
    argv = ["--privileged", "--init", "--mount", "src=v,dst=/v,volume-nocopy",
            "--mount", "type=bind,src=/a,dst=/b,bind-propagation=rprivate",
            "--mount", "src=w,dst=/w,volume-driver=local", "-v", "/c:/d:rprivate,z",
            "--cap-add", "ALL", "busybox"]
    _, body = container_body(parse(CREATE, argv), environ={})
    host = body["HostConfig"]
    assert host["Privileged"] is True and host["Init"] is True
    assert host["Mounts"][0]["VolumeOptions"] == {"NoCopy": True}
    assert host["Mounts"][1]["BindOptions"] == {"Propagation": "rprivate"}
    check_body(body)


def test_what_corral_applies_is_accepted_with_any_value() -> None:
    # docker run --privileged --init --security-opt no-new-privileges, resources, mounts
    body = with_host(
        Privileged=True,
        Init=True,
        SecurityOpt=["no-new-privileges"],
        Memory=64 << 20,
        MemorySwap=-1,
        NanoCpus=10**9,
        CpuShares=512,
        PidsLimit=50,
        CapAdd=["NET_ADMIN"],
        MaskedPaths=[],
        ReadonlyPaths=[],
        IpcMode="private",
        CgroupnsMode="host",
        UsernsMode="host",
        Runtime="runc",
        VolumeDriver="local",
        Mounts=[
            {"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {"NoCopy": True}},
            {"Type": "bind", "Source": "/s", "Target": "/b", "Consistency": "cached",
             "BindOptions": {"Propagation": "rprivate"}},
            {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1, "Mode": 0o700}},
            {"Type": "volume", "Target": "/d",
             "VolumeOptions": {"DriverConfig": {"Name": "local"}}},
        ],
    )
    body["Domainname"] = "example.org"
    body["NetworkingConfig"]["EndpointsConfig"]["net1"] = {
        "Aliases": ["a"],
        "IPAMConfig": {"IPv4Address": "10.0.0.2"},
    }
    check_body(body)


def _non_zero(value: Any) -> Any:
    """A value of the same JSON type that is not a zero value."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return 1 if value != 1 else 2
    if isinstance(value, str):
        return "x"
    if isinstance(value, list):
        return ["x"]
    return {"x": "y"}


# Each HostConfig field the docker CLI sends that corral does not apply, set to a real
# value by the flag a user would give: the error names the field and the flag.
NOT_APPLIED = sorted(k for k in DOCKER_RUN_BODY["HostConfig"] if k not in HOST_APPLIED)


@pytest.mark.parametrize("field", NOT_APPLIED)
def test_each_unapplied_host_config_field_is_refused_by_name(field: str) -> None:
    zero = DOCKER_RUN_BODY["HostConfig"][field]
    if zero is None:
        zero = ""  # a null list/object field: any non-null value is a request
    message = refused(with_host(**{field: _non_zero(zero)}))
    assert f"HostConfig.{field}=" in message
    assert message.endswith("is not supported by corral")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"CgroupParent": "x"}, 'HostConfig.CgroupParent="x" (--cgroup-parent) is not supported'),
        ({"BlkioWeight": 300}, "HostConfig.BlkioWeight=300 (--blkio-weight)"),
        ({"StorageOpt": {"size": "1G"}}, "HostConfig.StorageOpt="),
        ({"Annotations": {"a": "b"}}, 'HostConfig.Annotations={"a": "b"} (--annotation)'),
        ({"CgroupnsMode": "private"}, "HostConfig.CgroupnsMode=\"private\" (--cgroupns)"),
        ({"Runtime": "crun"}, 'HostConfig.Runtime="crun" (--runtime)'),
        ({"MemorySwappiness": 10}, "(--memory-swappiness)"),
        ({"KernelMemory": 1 << 20}, "(--kernel-memory)"),
        ({"FutureKnob": 3}, "HostConfig.FutureKnob=3 is not supported by corral"),
    ],
)
def test_refusals_name_the_field_and_the_docker_flag(
    fields: dict[str, Any], expected: str
) -> None:
    assert expected in refused(with_host(**fields))


def test_a_newer_clients_zero_valued_fields_pass() -> None:
    check_body(with_host(FutureKnob=0, FutureList=[], FutureObj={"A": "", "B": None}))


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"NetworkDisabled": True}, "NetworkDisabled=true"),
        ({"FutureConfig": "x"}, 'FutureConfig="x" is not supported by corral'),
    ],
)
def test_config_fields_not_applied_are_refused(config: dict[str, Any], expected: str) -> None:
    body = copy.deepcopy(DOCKER_RUN_BODY)
    body.update(config)
    assert expected in refused(body)


@pytest.mark.parametrize(
    ("mount", "expected"),
    [
        ({"Type": "bind", "Source": "/a", "Target": "/b",
          "BindOptions": {"ReadOnlyForceRecursive": True}},
         "HostConfig.Mounts[0].BindOptions.ReadOnlyForceRecursive=true (--mount bind-recursive)"),
        ({"Type": "volume", "Target": "/b",
          "VolumeOptions": {"DriverConfig": {"Name": "nfs"}}}, "VolumeOptions.DriverConfig="),
        ({"Type": "tmpfs", "Target": "/b", "TmpfsOptions": {"Options": [["exec"]]}},
         "TmpfsOptions.Options="),
    ],
)
def test_mount_options_not_applied_are_refused(mount: dict[str, Any], expected: str) -> None:
    assert expected in refused(with_host(Mounts=[mount]))


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ({"IPAMConfig": {"LinkLocalIPs": ["169.254.0.9"]}},
         'EndpointsConfig[default].IPAMConfig.LinkLocalIPs=["169.254.0.9"] (--link-local-ip)'),
        ({"GwPriority": 5}, "EndpointsConfig[default].GwPriority=5 (--network gw-priority)"),
        ({"DriverOpts": {"a": "b"}}, "DriverOpts="),
    ],
)
def test_endpoint_settings_not_applied_are_refused(
    endpoint: dict[str, Any], expected: str
) -> None:
    body = copy.deepcopy(DOCKER_RUN_BODY)
    body["NetworkingConfig"]["EndpointsConfig"]["default"].update(endpoint)
    assert expected in refused(body)


def test_no_new_privileges_default_privileged_and_asked() -> None:
    assert no_new_privileges({}) is True  # corral's default
    assert no_new_privileges({"Privileged": True}) is False  # as Docker: setuid works
    assert no_new_privileges({"Privileged": True, "SecurityOpt": ["no-new-privileges"]})
    assert not no_new_privileges({"SecurityOpt": ["no-new-privileges=false"]})


def test_masked_and_readonly_paths_are_stored_as_docker_does() -> None:
    hc: dict[str, Any] = {}
    plan.fill_path_defaults(hc, ("/proc/kcore",), ("/proc/sys",))
    assert hc == {"MaskedPaths": ["/proc/kcore"], "ReadonlyPaths": ["/proc/sys"]}
    privileged: dict[str, Any] = {"Privileged": True}
    plan.fill_path_defaults(privileged, ("/proc/kcore",), ("/proc/sys",))
    assert "MaskedPaths" not in privileged
    own: dict[str, Any] = {"MaskedPaths": [], "ReadonlyPaths": ["/proc/bus"]}
    plan.fill_path_defaults(own, ("/proc/kcore",), ("/proc/sys",))
    assert own == {"MaskedPaths": [], "ReadonlyPaths": ["/proc/bus"]}
    with pytest.raises(InvalidArgument, match="HostConfig.MaskedPaths must be"):
        plan.fill_path_defaults({"MaskedPaths": ["proc"]}, (), ())


def test_bind_modes_applied_meaningless_or_refused() -> None:
    assert plan.parse_bind("data:/d:nocopy").nocopy
    assert plan.parse_bind("/a:/b:z,ro").read_only  # z: no SELinux here, as Docker
    assert plan.parse_bind("/a:/b:rprivate").type == "bind"
    assert plan.parse_bind("/a:/b:cached").type == "bind"  # macOS only, as Docker
    assert plan.parse_bind("/a:/b:rshared,ro").propagation == "rshared"
    with pytest.raises(InvalidArgument, match="invalid mode: rshared"):
        plan.parse_bind("data:/b:rshared")  # propagation is a bind's
    with pytest.raises(InvalidArgument, match="invalid mode: rshared,slave"):
        plan.parse_bind("/a:/b:rshared,slave")
    assert plan.parse_mount(
        {"Type": "volume", "Target": "/v", "VolumeOptions": {"NoCopy": True}}
    ).nocopy


def test_platform_must_be_the_images() -> None:
    image = {"os": "linux", "architecture": "amd64"}
    plan.check_platform("", image)
    plan.check_platform("linux", image)
    plan.check_platform("linux/amd64", image)
    with pytest.raises(InvalidArgument, match=r"platform \(linux/amd64\) does not match .*arm64"):
        plan.check_platform("linux/arm64", image)


def test_is_zero_is_gos_zero_value() -> None:
    assert all(is_zero(v) for v in (None, False, 0, 0.0, "", [], {}, [0, 0], {"a": None}))
    assert not any(is_zero(v) for v in (True, 1, -1, "x", ["x"], {"a": 1}))


def _project(service_yaml: str) -> Any:
    text = "name: p\nservices:\n  s:\n    image: busybox\n" + service_yaml

    def read(path: str) -> str:
        if path != "/p/compose.yaml":
            raise FileNotFoundError(2, "missing", path)
        return text

    return load_project(["/p/compose.yaml"], environ={}, cwd="/p", read_file=read)


def test_compose_init_privileged_and_volume_options_reach_the_body() -> None:
    _, body = create_body(_project("    init: true\n    privileged: true\n"), "s", 1)
    assert body["HostConfig"]["Init"] is True and body["HostConfig"]["Privileged"] is True
    check_body(body)
    _, off = create_body(_project("    init: false\n"), "s", 1)
    assert off["HostConfig"]["Init"] is False  # overrides the daemon's `init: true`
    _, unset = create_body(_project(""), "s", 1)
    assert "Init" not in unset["HostConfig"]  # the daemon's default decides
    _, vols = create_body(
        _project(
            "    volumes:\n"
            "      - {type: volume, source: d, target: /d, volume: {nocopy: true}}\n"
            "      - {type: bind, source: /a, target: /a, bind: {propagation: rshared}}\n"
            "volumes:\n  d: {}\n"
        ),
        "s",
        1,
    )
    mounts = vols["HostConfig"]["Mounts"]
    assert mounts[0]["VolumeOptions"] == {"NoCopy": True}
    assert mounts[1]["BindOptions"] == {"Propagation": "rshared"}
    check_body(vols)  # applied now (it was once silently dropped)
