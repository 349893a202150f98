"""`qtctl fix`: plan repairs for findings, apply them safely, journal them, verify, undo."""
