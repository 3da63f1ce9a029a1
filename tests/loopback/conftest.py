"""Fixtures for the loopback tests: the private X server of the device tests, for the video window."""

from tests.devices.conftest import xvfb  # noqa: F401
