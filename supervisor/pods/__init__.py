"""Pods on one host: an infra process holding the shared namespaces, members joined to
it (network, ipc, uts, as Kubernetes shares them), all told apart by labels."""
