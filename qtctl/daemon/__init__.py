"""The runtime every shipped daemon uses: signals, sd_notify, watchdog, backoff, logging."""
