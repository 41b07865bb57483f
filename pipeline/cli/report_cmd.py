"""Commands registered on the mobilize CLI (see pipeline.cli._apps)."""
