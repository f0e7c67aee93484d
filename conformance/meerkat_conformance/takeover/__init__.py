"""Takeover harness: real worker processes on one SQLite file, the owner SIGKILLed at random
points and a waiting worker taking the session over once its lease expires; afterwards the
store and the workers' run logs are checked (``driver`` runs it, ``worker`` is the process,
``verify`` the checks)."""
