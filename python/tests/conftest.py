"""Shared fixtures for the tensorbridge tests."""

import gc

import pytest


@pytest.fixture
def collect():
    """Runs the garbage collector, so deleter counts are settled when read."""
    def run():
        gc.collect()
    return run
