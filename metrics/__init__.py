"""Prometheus exporter (lands with the metrics issue)."""
