"""Fault scenarios run on the worker's harness: the real web app over HTTP, the real worker, the
fake Discord and the fake HUMA, all on loopback."""

from tests.worker.conftest import harness

__all__ = ["harness"]
