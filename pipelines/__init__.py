"""Pipelines that chain the stacks end to end (each step is the same `run.py` command a user would type)."""
