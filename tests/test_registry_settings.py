"""daemon.yaml's registry settings (dockerd's): insecure-registries, registry-mirrors,
and certs.d (`certs-dir`, /etc/docker/certs.d by default, as dockerd hard-codes)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio
from registry import Layer, Registry, make_image, start_registry

from config.daemonconf import parse_daemon_config
from config.errors import ConfigError
from supervisor.api.handlers.system import registry_config
from supervisor.distribution.hosts import RegistryHosts
from supervisor.distribution.transport import HttpClient, TransportError


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(d: Path, name: str = "corral test CA") -> tuple[Path, Path]:
    d.mkdir(parents=True, exist_ok=True)
    key, cert = d / f"{name.replace(' ', '-')}.key", d / f"{name.replace(' ', '-')}.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             f"/CN={name}", "-keyout", str(key), "-out", str(cert))
    return key, cert


def make_client_cert(d: Path, ca_key: Path, ca_cert: Path) -> tuple[Path, Path]:
    key, csr, cert = d / "client.key", d / "client.csr", d / "client.cert"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=corral client",
             "-keyout", str(key), "-out", str(csr))
    ext = d / "client.ext"
    ext.write_text("extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    csr.unlink()
    return key, cert


# -- parsing and the insecure rule (pure) ---------------------------------------------


def test_insecure_names_cidrs_and_loopback() -> None:
    hosts = RegistryHosts.from_settings(["reg.lan:5000", "10.1.0.0/16", "127.0.0.0/8"], [])
    assert hosts.is_insecure("reg.lan:5000")
    assert hosts.is_insecure("10.1.2.3:5000") and hosts.endpoint("10.1.2.3").insecure
    assert hosts.is_insecure("127.0.0.1:5000") and hosts.is_insecure("localhost:5000")
    assert not hosts.is_insecure("10.2.0.1:5000")
    assert not hosts.is_insecure("other.lan:5000")
    assert not hosts.endpoint("docker.io").insecure
    # without the setting, only loopback (as dockerd)
    assert not RegistryHosts().is_insecure("10.1.2.3:5000")


@pytest.mark.parametrize(("insecure", "mirrors", "message"), [
    (["http://reg.lan"], [], "insecure registry 'http://reg.lan' should not contain '://'"),
    (["10.0.0.0/33"], [], "insecure registry '10.0.0.0/33': not a valid CIDR"),
    ([], ["ftp://m.example"], "invalid mirror: unsupported scheme in 'ftp://m.example'"),
    ([], ["https://m.example/v2"], "invalid mirror: path, query or user not allowed in "
     "'https://m.example/v2'"),
])
def test_bad_entries_are_refused_naming_them(insecure: list[str], mirrors: list[str],
                                             message: str) -> None:
    with pytest.raises(ValueError) as e:
        RegistryHosts.from_settings(insecure, mirrors)
    assert str(e.value).startswith(message)


def test_registry_config_as_dockerd_reports_it() -> None:
    hosts = RegistryHosts.from_settings(["reg.lan:5000", "10.1.0.0/16"],
                                        ["https://m.example", "http://127.0.0.1:5000/"])
    assert registry_config(hosts) == {
        "AllowNondistributableArtifactsCIDRs": [],
        "AllowNondistributableArtifactsHostnames": [],
        "InsecureRegistryCIDRs": ["::1/128", "127.0.0.0/8", "10.1.0.0/16"],
        "IndexConfigs": {
            "docker.io": {"Name": "docker.io", "Official": True, "Secure": True,
                          "Mirrors": ["https://m.example/", "http://127.0.0.1:5000/"]},
            "reg.lan:5000": {"Name": "reg.lan:5000", "Official": False, "Secure": False,
                             "Mirrors": []},
        },
        "Mirrors": ["https://m.example/", "http://127.0.0.1:5000/"],
    }


def test_daemon_file_lists_are_checked_at_their_line(tmp_path: Path) -> None:
    f = tmp_path / "daemon.yaml"
    f.write_text("insecure-registries: reg.lan\n")
    with pytest.raises(ConfigError) as e:
        parse_daemon_config(f.read_text(), str(f))
    assert str(e.value.problems[0]) == (
        f"{f}:1:22: insecure-registries must be a list of strings")
    ok = parse_daemon_config("registry-mirrors: [https://m.example]\ncerts-dir: certs\n",
                             str(f))
    assert ok.values == {"registry-mirrors": ["https://m.example"],
                         "certs-dir": str(tmp_path / "certs")}


def test_daemon_refuses_a_bad_entry_in_file_and_flag(tmp_path: Path) -> None:
    f = tmp_path / "daemon.yaml"
    f.write_text("registry-mirrors:\n  - ftp://m.example\n")

    def daemon(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "supervisor.daemon", "--root", str(tmp_path / "r"),
             "--host", f"unix://{tmp_path}/s.sock", *args],
            capture_output=True, text=True, timeout=60)

    r = daemon("--config", str(f))
    assert r.returncode != 0
    assert f"{f}:2:5: invalid mirror: unsupported scheme in 'ftp://m.example'" in r.stderr
    r = daemon("--config", "", "--insecure-registry", "10.0.0.0/40")
    assert r.returncode != 0
    assert "corral daemon: insecure registry '10.0.0.0/40': not a valid CIDR" in r.stderr
    assert not (tmp_path / "r").exists()


# -- certs.d -------------------------------------------------------------------------


def test_certs_dir_ca_and_client_certificate_are_loaded(tmp_path: Path) -> None:
    """`ca.crt` joins the system CAs; `client.cert` + `client.key` is what the client
    presents (checked by a TLS server in memory that asks for it)."""
    ca_key, ca_cert = make_ca(tmp_path / "ca")
    host = tmp_path / "certs" / "reg.lan:5000"
    host.mkdir(parents=True)
    shutil.copy(ca_cert, host / "ca.crt")
    make_client_cert(host, ca_key, ca_cert)
    hosts = RegistryHosts(certs_dir=str(tmp_path / "certs"))
    ctx = hosts.tls_context("reg.lan:5000", True)
    assert any(dict(x[0] for x in c["subject"]).get("commonName") == "corral test CA"
               for c in ctx.get_ca_certs())
    assert not any(dict(x[0] for x in c["subject"]).get("commonName") == "corral test CA"
                   for c in hosts.tls_context("other.lan:5000", True).get_ca_certs())

    # the client certificate, as a server asking for one sees it
    srv_key, srv_cert = tmp_path / "srv.key", tmp_path / "srv.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=reg.lan", "-addext", "subjectAltName=DNS:reg.lan", "-keyout",
             str(srv_key), "-out", str(srv_cert))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(srv_cert), str(srv_key))
    server_ctx.load_verify_locations(cafile=str(ca_cert))
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = hosts.tls_context("reg.lan:5000", False).wrap_bio(
        c_in, c_out, server_hostname="reg.lan")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(10):  # shuttle the handshake's bytes until both sides finish
        for name, side, out, into in (("c", client, c_out, s_in), ("s", server, s_out, c_in)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            if data := out.read():
                into.write(data)
        if all(done.values()):
            break
    peer = server.getpeercert()
    assert peer is not None
    assert dict(x[0] for x in peer["subject"])["commonName"] == "corral client"


def test_certs_dir_client_cert_without_key_is_refused(tmp_path: Path) -> None:
    host = tmp_path / "reg.lan"
    host.mkdir()
    (host / "client.cert").write_text("x")
    with pytest.raises(ValueError) as e:
        RegistryHosts(certs_dir=str(tmp_path)).tls_context("reg.lan", True)
    assert str(e.value) == (
        "missing key client.key for client certificate client.cert. CA certificates "
        "must use the extension .crt")


def test_tls_is_verified_with_the_certs_dir_ca(tls_registry: Registry, tmp_path: Path
                                               ) -> None:
    """A verified connection (a host not insecure) fails with Go's x509 wording naming
    the URL until certs.d holds the registry's CA, then succeeds."""
    reg = tls_registry
    hosts = RegistryHosts(certs_dir=str(tmp_path / "certs"))
    url = f"https://{reg.host}/v2/"

    async def get() -> int:
        http = HttpClient(tls_for=hosts.tls_context)
        try:
            async with http.request("GET", url, verify=True) as resp:
                await resp.read(1 << 16)
                return resp.status
        finally:
            await http.aclose()

    with pytest.raises(TransportError) as e:
        trio.run(get)
    assert e.value.message == (
        f'Get "{url}": tls: failed to verify certificate: x509: certificate signed by '
        "unknown authority")
    (tmp_path / "certs" / reg.host).mkdir(parents=True)
    shutil.copy(reg.storage.parent / "tls.crt", tmp_path / "certs" / reg.host / "ca.crt")
    assert trio.run(get) == 200


# -- through the daemon ------------------------------------------------------------


def _stamp() -> bytes:
    return Layer({"etc/": b"", "etc/stamp": uuid.uuid4().hex.encode()}).tar()


def test_daemon_yaml_mirror_and_client_certificates(
    private_daemon: Any, registry: Registry, tmp_path: Path, rootfs_tar: Path,
    monkeypatch: pytest.MonkeyPatch, workdir: Path,
) -> None:
    """One daemon configured by daemon.yaml: a Docker Hub name (`x`) is pulled from the
    second mirror when the first is down (the plain loopback registry serves
    `library/x`; Docker Hub is never asked),
    /info reports the settings, and a registry asking for a client certificate is
    pulled from once certs.d holds one (as dockerd reads /etc/docker/certs.d)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    name = f"mirrored-{uuid.uuid4().hex[:8]}"
    registry.push(make_image(tmp_path / "m", [rootfs_tar.read_bytes(), _stamp()]),
                  f"library/{name}", fmt="v2s2")
    ca_key, ca_cert = make_ca(tmp_path / "ca")
    mtls = start_registry(tmp_path / "mtls", tls=True, client_ca=ca_cert)
    try:
        certs = tmp_path / "certs"
        skopeo_certs = tmp_path / "skopeo-certs"
        skopeo_certs.mkdir()
        make_client_cert(skopeo_certs, ca_key, ca_cert)
        layout = make_image(tmp_path / "t", [rootfs_tar.read_bytes(), _stamp()])
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "--format",
                        "v2s2", "--dest-cert-dir", str(skopeo_certs), f"oci:{layout}",
                        f"docker://{mtls.host}/certified:v1"], check=True, timeout=60)
        conf = tmp_path / "daemon.yaml"
        conf.write_text(
            # the first mirror is down: the pull falls back to the next
            f"registry-mirrors: [http://127.0.0.1:1, http://{registry.host}]\n"
            "insecure-registries: [reg.lan:5000, 10.9.0.0/16]\n"
            f"certs-dir: {certs}\n")
        monkeypatch.setenv("CORRAL_CONFIG", str(conf))
        d = private_daemon()
        dk = d.client()
        info = dk.info()["RegistryConfig"]
        mirrors = ["http://127.0.0.1:1/", f"http://{registry.host}/"]
        assert info["Mirrors"] == mirrors
        assert info["InsecureRegistryCIDRs"] == ["::1/128", "127.0.0.0/8", "10.9.0.0/16"]
        assert info["IndexConfigs"]["reg.lan:5000"]["Secure"] is False
        assert info["IndexConfigs"]["docker.io"]["Mirrors"] == mirrors
        if shutil.which("docker"):  # and the docker CLI shows them
            out = d.docker("info").stdout
            assert (" Insecure Registries:\n  reg.lan:5000\n  ::1/128\n  127.0.0.0/8\n"
                    "  10.9.0.0/16\n Registry Mirrors:\n  http://127.0.0.1:1/\n"
                    f"  http://{registry.host}/\n") in out

        r = d.cli("pull", name)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[-1] == f"docker.io/library/{name}:latest"
        assert f"{name}:latest" in dk.images.get(name).tags
        # `pull -a` and `GET /distribution/{name}/json` use the mirrors too
        r = d.cli("pull", "-a", name)
        assert r.returncode == 0, r.stderr
        assert dk.api.inspect_distribution(name)["Descriptor"]["digest"] == (
            registry.manifest_digest(f"library/{name}:latest"))

        r = d.cli("pull", f"{mtls.host}/certified:v1")
        # no client certificate: TLS is refused, and then plain HTTP (as dockerd, the
        # last attempt's error is the one shown)
        assert r.returncode != 0, r.stdout
        assert f'Get "http://{mtls.host}/v2/"' in r.stderr
        (certs / mtls.host).mkdir(parents=True)
        make_client_cert(certs / mtls.host, ca_key, ca_cert)
        r = d.cli("pull", f"{mtls.host}/certified:v1")
        assert r.returncode == 0, r.stderr
        dk.images.remove(f"{mtls.host}/certified:v1")
        dk.images.remove(name)
        dk.close()
    finally:
        mtls.stop()
