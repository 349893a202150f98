"""The risk kernel: regime-weighted stop-loss / take-profit / trailing proposals, never unsafe."""
