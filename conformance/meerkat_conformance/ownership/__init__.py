"""Lockstep of the ownership model with two runtime workers (two ``MeerkatMachine`` instances)
sharing one SQLite file, time under the harness's control."""
