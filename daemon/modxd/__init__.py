"""modxd: the modx daemon. Owns the devices, the SQLite state and every job."""

__version__ = "0.1.0"
API_VERSION = "modx.v1"
