"""The engines the bench compares, driven the same way: `corral` and `podman`."""
