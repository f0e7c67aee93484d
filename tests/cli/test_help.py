"""Every command's ``--help`` states its defaults and its exit statuses."""

from __future__ import annotations

import pytest

from tests.cli.commands import command, run


@pytest.mark.parametrize(
    ("prog", "needles"),
    [
        ("meerkat-verify", ["(default: ci)", "default: all", "exit status", "130", "Ctrl-C", "'verify' extra"]),
        ("meerkat-render", ["(default: diagrams)", "(default: tiny)", "exit status", "130", "'verify'"]),
        (
            "meerkat-conformance",
            [
                "(default: deep",
                "check-trace [--json] FILE... checks recorded event logs",
                "about 17 minutes",
                "about a minute",
                "exit status",
                "130",
                "--seed",
                "--example-db",
            ],
        ),
        ("-m meerkat_conformance.stores.suite", ["(default: all)", "exit status", "130"]),
        (
            "-m meerkat_model.proofs",
            ["(default 8)", "(default 10)", "(default 10000)", "default: all", "130 interrupted", "Ctrl-C"],
        ),
        (
            "scripts/planted_model_bugs.py",
            ["--only NAME", "--show NAME", "(default: 120)", "exit status", "130"],
        ),
        ("scripts/store_soak.py", ["(default: 1000)", "(default: FULL)", "exit status", "130"]),
        ("scripts/damage_sweep.py", ["(default: 400)", "(default: 4)", "exit status", "130"]),
        (
            "scripts/ownership_soak.py",
            ["(default: 500)", "(default: 250)", "(default: 80)", "(default: NORMAL)", "(default: 100)", "130"],
        ),
        (
            "scripts/postgres_soak.py",
            ["(default: 300)", "(default: 3)", "(default: 6)", "(default: 500)", "(default: 0.5)", "MEERKAT_PG_DSN"],
        ),
        (
            "meerkat-runtime",
            ["sessions", "inputs", "ops", "show", "check", "migrate", "quarantine", "exit status", "130"],
        ),
    ],
)
def test_help_states_defaults_and_exit_statuses(prog: str, needles: list[str]) -> None:
    done = run([*command(prog), "--help"], timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    text = " ".join(done.stdout.split())  # argparse wraps lines
    for needle in needles:
        assert needle in text, needle
    assert "exit status: 0" in text and "2 usage error" in text
