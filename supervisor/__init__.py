"""corral: a container engine and supervisor."""
__version__ = "0.1.0"
