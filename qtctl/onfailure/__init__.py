"""On failure, at once: `qtctl-notify@.service` (pulled in by `OnFailure=`) runs
`qtctl doctor --unit NAME --publish-incident`; `qtctl install --on-failure` adds the drop-ins."""
