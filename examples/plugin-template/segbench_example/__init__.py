"""A template segbench plugin package."""
