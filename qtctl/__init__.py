"""qtctl: the operator toolkit for Python trading fleets on systemd and Redis Streams."""

__version__ = "0.1.0"
