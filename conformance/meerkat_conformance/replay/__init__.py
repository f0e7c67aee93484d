"""Exhaustive replay of the model's reachable graph against the runtime."""
