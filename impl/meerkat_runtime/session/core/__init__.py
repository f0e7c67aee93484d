"""The synchronous core of a session: state, the plan a rule computes, and the rules.

Modules holding rules are named as the model's modules holding the same rules
(``admission``, ``run_loop``, ``control``, ``registration``, ``recovery``); nothing here
awaits, locks or writes. See :mod:`meerkat_runtime.session.core.session_core`.
"""
