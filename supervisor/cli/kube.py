"""`corral kube generate|play`: the shell around `supervisor/kube/`'s pure cores.

generate reads `GET /containers/{id}/json` (and the images' configs, so what the
image already says is not repeated) and prints YAML; play reads YAML files and
makes containers, volumes and published ports through the same API.
"""

from __future__ import annotations

import json

from supervisor.api.client import ApiError, quote
from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, UsageError, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from supervisor.cli.context import Cli

GENERATE = Command(
    "kube generate", "corral kube generate [OPTIONS] CONTAINER|POD... | --project NAME",
    "Generate Kubernetes YAML from containers or a compose project", (
        Opt("project", "p", "str", help="The containers of this compose project"),
        Opt("type", "t", "str", default="pod", help="Workload kind: pod or deployment"),
        Opt("service-type", kind="str", default="ClusterIP",
            help="Service type for published ports: ClusterIP, NodePort, LoadBalancer"),
        Opt("registry", kind="str", help="Name local images under HOST/PREFIX"),
        Opt("filename", "f", "str", help="Write the YAML to this file"),
    ))
PLAY = Command(
    "kube play", "corral kube play [OPTIONS] FILE...",
    "Run Pods, Deployments and Services of Kubernetes YAML on corral", (
        Opt("down", help="Remove what an earlier play of these files made"),
    ), min_args=1)

HELP = ("\nUsage:  corral kube COMMAND\n\nRun Kubernetes YAML on corral, or make it\n\n"
        "Commands:\n  generate    Generate Kubernetes YAML from containers or a compose "
        "project\n  play        Run Pods, Deployments and Services of Kubernetes YAML\n")


def cmd_kube(cli: Cli, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        cli.stdout.write(HELP)
        return 0
    sub, rest = argv[0], argv[1:]
    if sub == "generate":
        return _generate(cli, rest)
    if sub == "play":
        from supervisor.cli.kube_play import play

        p = parse(PLAY, rest)
        return play(cli, p.args, down=bool(p["down"]))
    raise CliError(f"'kube {sub}' is not a corral command.\nSee 'corral kube --help'")


def _inspect(cli: Cli, ref: str) -> dict[str, Any]:
    found = _maybe_inspect(cli, ref)
    if found is None:
        raise CliError(f"no such container: {ref}")
    return found


def _maybe_inspect(cli: Cli, ref: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = cli.client.get(f"/containers/{quote(ref)}/json")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return found


def _pod_records(cli: Cli, name: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A pod's infra and members (inspect records), by the pod labels; ([], None) if
    there is no such pod."""
    from supervisor.pods.labels import INFRA_LABEL, POD_LABEL

    filters = json.dumps({"label": [f"{POD_LABEL}={name}"]})
    listed = cli.client.get("/containers/json", {"all": True, "filters": filters}) or []
    infra, members = None, []
    for c in sorted(listed, key=lambda c: str((c.get("Names") or [""])[0])):
        record = _inspect(cli, c["Id"])
        if (c.get("Labels") or {}).get(INFRA_LABEL) == "true":
            infra = record
        else:
            members.append(record)
    return infra, members


def _generate(cli: Cli, argv: list[str]) -> int:
    from supervisor.kube import generate as gen

    p = parse(GENERATE, argv)
    project = p["project"] or ""
    if bool(project) == bool(p.args):
        raise UsageError("kube generate needs CONTAINER|POD... or --project NAME (not both)")
    opts = gen.Options(type=(p["type"] or "pod").lower(),
                       service_type=p["service_type"] or "ClusterIP",
                       registry=p["registry"] or "")
    if opts.type not in gen.WORKLOAD_TYPES:
        raise UsageError(f'invalid argument "{p["type"]}" for "-t, --type" flag: '
                         "must be pod or deployment")
    if opts.service_type not in gen.SERVICE_TYPES:
        raise UsageError(f'invalid argument "{opts.service_type}" for "--service-type" '
                         "flag: must be ClusterIP, NodePort or LoadBalancer")
    if project:
        filters = json.dumps({"label": [f"{gen.PROJECT_LABEL}={project}"]})
        listed = cli.client.get("/containers/json", {"all": True, "filters": filters}) or []
        if not listed:
            raise CliError(f"no containers of compose project {project!r}")
        containers = [_inspect(cli, c["Id"]) for c in listed]
    else:
        containers = []
        pods: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]] = {}
        for ref in p.args:
            found = _maybe_inspect(cli, ref)
            if found is not None:
                containers.append(found)
                continue
            infra, members = _pod_records(cli, ref)
            if not members:
                raise CliError(f"no such container or pod: {ref}")
            pods[ref] = (infra, members)
            containers += members
    images: dict[str, dict[str, Any]] = {}
    for c in containers:
        if c["Image"] not in images:
            try:
                images[c["Image"]] = (cli.client.get(f"/images/{quote(c['Image'])}/json")
                                      or {}).get("Config") or {}
            except ApiError:
                images[c["Image"]] = {}  # the image was removed: repeat all it said
    if project:
        workloads = gen.group_project(containers, images)
    else:
        from supervisor.kube.play import LABEL_PREFIX

        in_pods = {c["Id"] for _, members in pods.values() for c in members}
        workloads = [gen.single(c, images[c["Image"]]) for c in containers
                     if c["Id"] not in in_pods]
        for name, (infra, members) in pods.items():
            workloads.append(gen.pod(name, infra, [
                (str(((m.get("Config") or {}).get("Labels") or {}).get(
                    LABEL_PREFIX + "container") or m["Name"].lstrip("/")), m,
                 images[m["Image"]]) for m in members]))
    names = [w.name for w in workloads]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CliError(f"containers map onto the same Kubernetes name {dupes[0]!r}: "
                       "generate them separately")
    result = gen.generate(workloads, opts)
    text = gen.render(result)
    for note in result.notes:
        cli.err(f"WARNING: {note.warning()}")
    if opts.registry:
        _push_renamed(cli, {str((c.get("Config") or {}).get("Image") or c.get("Image", ""))
                            for c in containers}, opts.registry)
    if p["filename"]:
        with open(p["filename"], "w", encoding="utf-8") as f:
            f.write(text)
    else:
        cli.stdout.write(text)
    return 0


def _push_renamed(cli: Cli, images: set[str], registry: str) -> None:
    """`--registry`: each local image the YAML names under HOST/PREFIX is tagged so and
    pushed there, so a cluster can pull what it was given (progress stays off stdout,
    which holds the YAML)."""
    from supervisor.cli.push import push_image
    from supervisor.errors import InvalidArgument
    from supervisor.images.reference import parse as parse_ref
    from supervisor.kube.generate import image_name

    for image in sorted(images):
        target = image_name(image, registry)
        if target == image or image.startswith("sha256:"):
            continue
        try:
            ref = parse_ref(target)
        except InvalidArgument as exc:
            raise CliError(f"--registry {registry}: {exc.message}") from None
        cli.client.post(f"/images/{quote(image, '/:@')}/tag",
                        {"repo": ref.repository, "tag": ref.tag or "latest"})
        pushed = push_image(cli, target, quiet=True)
        cli.err(f"Pushed {image} as {pushed}")
