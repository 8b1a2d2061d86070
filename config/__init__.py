"""Service files: parse, validate, interpolate (lands with the service-file issue)."""
