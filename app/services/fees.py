"""Issue 13: filled in by its own change."""
