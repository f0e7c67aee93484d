"""The async-operation registry: lifecycle of background operations, watchers, the completion
feed, ``wait_all`` barriers, durable terminal transitions and recovery.

Modules: ``config`` (limits), ``registry`` (``OpsLifecycleRegistry``, the thread-safe shell and
its commit seam), ``core`` (``OpsCore``: the state and the rules, named as the model names
them), ``plan`` (what a durable rule computes), ``retention`` (the FIFO eviction rule),
``transitions`` (rule → core method → shell method), ``feed`` (completion feed), ``watch``
(one-shot awaitables), ``wait_all`` (barrier handle and result), ``views`` (read-only
snapshots), ``cursors`` (epoch consumer cursors), ``snapshot`` (full JSON wire format),
``journal`` (append-only record format), ``persistence`` (sinks), ``recovery`` (load from a
store); internal: ``record``, ``wire``. See docs/ops-registry.md.
"""
