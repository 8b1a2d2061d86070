"""corral: a container engine and supervisor."""
