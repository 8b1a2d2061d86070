"""Docker Engine API routes, one module per resource; each exposes `register`."""
