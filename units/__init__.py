"""Hardened systemd unit templates for qtctl's daemons (package data, installed as qtctl.units)."""
