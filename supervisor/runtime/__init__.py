"""Turning a container description into a running process under runc.

spec.py      pure: ContainerSpec → OCI config.json with Docker's defaults
rootfs.py    overlayfs mount/unmount via mount(2)
runc.py      Runtime: the only code that invokes the OCI runtime CLI
process.py   child-subreaper + pidfd waiting: no runc process per container
cgroups.py   v1/v2 counters (OOM kills, memory, pids) and cleanup
mountinfo.py /proc/self/mountinfo parser shared by rootfs and cgroups
"""
