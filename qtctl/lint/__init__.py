"""`qtctl lint`: the static checks doctor runs, on a repository checkout (no systemd, no Redis)."""
