"""Kubernetes YAML, both ways: `kube generate` (containers -> manifests) and `kube play`
(manifests -> containers).  Pure cores here; the CLI (`supervisor/cli/kube.py`) is the
shell that reads and writes through the Engine API.
"""
