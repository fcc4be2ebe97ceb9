"""Benchmarks against a running webui through its HTTP API; standard library only (no torch, no Pillow)."""
