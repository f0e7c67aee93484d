"""``meerkat-runtime``: look after the stored state of the runtime from the command line.

One module per subcommand (``sessions``, ``inputs``, ``ops``, ``show``, ``check``, ``migrate``,
``quarantine``), each with ``NAME``, ``HELP``,
``configure(parser)`` and ``run(args) -> int``; :mod:`meerkat_runtime.cli.main` lists them in
``SUBCOMMANDS`` and dispatches. Conventions (:mod:`meerkat_runtime.cli.usage`): a usage error is
one line on stderr and exit status 2; 1 means the command ran and found damage or could not do
its work (one line saying why); 3 (``check`` only) means no damage was found but the sessions of
an older release's file were not diagnosed; 130 is Ctrl-C. ``--json`` prints one JSON document on stdout.
``store_arg`` opens the ``STORE`` argument (an SQLite file read-only, or a PostgreSQL URL with
read-only transactions), ``session_arg`` checks ``SESSION``, ``table`` prints tables. The
reading commands print what :mod:`meerkat_runtime.inspection` reads. Standard library only,
like the rest of the runtime.
"""
