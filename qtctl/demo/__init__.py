"""`qtctl demo`: the incident replayed on an embedded fleet in the systemd sandbox."""
