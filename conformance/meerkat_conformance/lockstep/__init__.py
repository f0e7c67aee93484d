"""The lockstep engine: a model machine and a runtime adapter driven step by step and compared.

Hypothesis state machines, crash and fault steps, traces, tallies and profiles live here.
"""
