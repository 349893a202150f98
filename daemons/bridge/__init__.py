"""The stream bridge: copies source streams into destinations, effectively once, in order."""
