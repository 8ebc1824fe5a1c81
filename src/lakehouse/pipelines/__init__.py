"""Pipelines: thin tasks per layer that take resolved handles, apply transforms and write through the store."""
