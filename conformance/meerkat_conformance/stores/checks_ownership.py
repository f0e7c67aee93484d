"""Ownership checks: leases (claim, renew, release, expiry, tokens) and the fence every write
carries (``meerkat_runtime.store.lease`` states the rules; ``docs/stores.md`` the contract).

Expiry is checked in real time with short leases (a store decides expiry in its own clock,
which the suite cannot move), so these checks sleep for a fraction of a second.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial

from meerkat_runtime.store.lease import Fence, Lease
from meerkat_runtime.store.protocol import RuntimeStore
from meerkat_runtime.vocab.errors import LeaseHeld, OwnershipLost, StoreError, WriteRefused

from meerkat_conformance.stores import lease_claimer
from meerkat_conformance.stores.backend import CAP_PROCESSES, StoreFactory
from meerkat_conformance.stores.childproc import child_env
from meerkat_conformance.stores.failure import NotApplicable, StoreConformanceFailure, expect
from meerkat_conformance.stores.fixtures import RT, RT_OTHER, as_dict, expect_error, fresh, opened, receipt, row

A, B, C = "owner-a", "owner-b", "owner-c"
LONG = 60.0
"""A lease that outlives every check."""
SHORT = 0.2
"""A lease the checks wait out."""
PATIENCE = 5.0
"""How long a check waits for a short lease to expire before it calls the store wrong."""

WriteCall = Callable[[RuntimeStore, Fence | None], None]

WRITES: dict[str, WriteCall] = {
    "persist_input_state": lambda s, f: s.persist_input_state(RT, row("w-input", "new"), fence=f),
    "atomic_apply": lambda s, f: s.atomic_apply(
        RT, session_snapshot=b"w-snap", receipt=receipt("w-run", 1, "w-apply"), rows=[row("w-apply", "new")], fence=f
    ),
    "commit_machine_lifecycle": lambda s, f: s.commit_machine_lifecycle(RT, b"w-life", [row("w-life", "new")], fence=f),
    "append_ops_record": lambda s, f: s.append_ops_record(RT, b"w-record", fence=f),
    "persist_ops_lifecycle": lambda s, f: s.persist_ops_lifecycle(RT, b"w-ops-snap", fence=f),
    "delete_ops_lifecycle": lambda s, f: s.delete_ops_lifecycle(RT, fence=f),
}
"""One call of every write method, each writing something a read can see."""


def _state(store: RuntimeStore) -> tuple[object, ...]:
    return (
        as_dict(store.load_input_states(RT)),
        store.load_session_snapshot(RT),
        store.load_boundary_receipt(RT, "w-run", 1),
        store.load_machine_lifecycle(RT),
        store.load_ops_lifecycle(RT),
    )


def _seed(store: RuntimeStore, fence: Fence | None) -> None:
    """Data in every row family, so that a delete or a compaction would show."""
    store.commit_machine_lifecycle(RT, b"life-0", [row("seed", "0")], fence=fence)
    store.persist_ops_lifecycle(RT, b"ops-0", fence=fence)
    store.append_ops_record(RT, b"record-0", fence=fence)


def _claim(store: RuntimeStore, step: str, owner: str, duration: float, rt: str = RT) -> Lease:
    try:
        lease = store.claim_lease(rt, owner, duration)
    except StoreError as exc:
        raise StoreConformanceFailure(step, f"claim by {owner!r} refused: {exc}") from exc
    expect(isinstance(lease, Lease), step, f"claim_lease returned {type(lease).__name__}, not a Lease")
    expect((lease.runtime_id, lease.owner) == (rt, owner), step, f"claim returned {lease!r} for {owner!r}")
    return lease


def _claim_after_expiry(store: RuntimeStore, step: str, owner: str, duration: float) -> Lease:
    """Claim once the current (short) lease has expired: retried until ``PATIENCE`` runs out."""
    deadline = time.monotonic() + PATIENCE
    time.sleep(SHORT)
    while True:
        try:
            return _claim(store, step, owner, duration)
        except StoreConformanceFailure:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _expect_held(store: RuntimeStore, step: str, owner: str, holder: Lease) -> None:
    err = expect_error(step, LeaseHeld, lambda: store.claim_lease(RT, owner, LONG), mentions=(RT, holder.owner))
    assert isinstance(err, LeaseHeld)
    expect(err.kind == "lease_held", step, f"error kind is {err.kind!r}")
    expect(err.owner == holder.owner, step, f"LeaseHeld names owner {err.owner!r}, the holder is {holder.owner!r}")
    expect(err.expires_at == holder.expires_at, step, "LeaseHeld does not carry the holder's expiry")
    expect(isinstance(err, WriteRefused) and not err.outcome_unknown, step, "LeaseHeld must be a WriteRefused")


def _expect_lost(step: str, call: Callable[[], object], *mentions: str) -> None:
    err = expect_error(step, OwnershipLost, call, mentions=(RT, *mentions))
    expect(err.kind == "ownership_lost", step, f"error kind is {err.kind!r}")
    expect(isinstance(err, WriteRefused) and not err.outcome_unknown, step, "OwnershipLost must be a WriteRefused")


def check_lease_claim_and_renew(factory: StoreFactory) -> None:
    """A claim on a free runtime returns token 1 and is what ``load_lease`` reads; another
    owner's claim on a live lease is ``LeaseHeld`` naming the holder and its expiry; a renewal
    keeps the token and extends the expiry; a renewal with a stale or foreign fence is
    ``OwnershipLost``; a claim by the holder itself takes a new token; runtimes are isolated."""
    with fresh(factory) as backend, opened(backend) as store:
        expect(store.load_lease(RT) is None, "fresh", "a runtime never claimed has a lease")
        first = _claim(store, "claim", A, LONG)
        expect(first.token == 1, "claim", f"the first claim got token {first.token}, expected 1")
        expect(store.load_lease(RT) == first, "load", "load_lease does not return the claimed lease")
        _expect_held(store, "held", B, first)
        expect(store.load_lease(RT) == first, "held", "a refused claim changed the lease")
        renewed = store.renew_lease(first.fence, RT, LONG)
        expect(renewed.token == first.token and renewed.owner == A, "renew", f"renewal returned {renewed!r}")
        expect(renewed.expires_at >= first.expires_at, "renew", "a renewal moved the expiry backwards")
        expect(store.load_lease(RT) == renewed, "renew", "load_lease does not return the renewed lease")
        _expect_lost("renew foreign", lambda: store.renew_lease(Fence(B, renewed.token), RT, LONG))
        _expect_lost("renew stale", lambda: store.renew_lease(Fence(A, renewed.token + 1), RT, LONG))
        expect(store.load_lease(RT) == renewed, "renew refused", "a refused renewal changed the lease")
        again = _claim(store, "reclaim", A, LONG)
        expect(again.token == first.token + 1, "reclaim", f"the holder's new claim got token {again.token}")
        _expect_lost("old fence", lambda: store.renew_lease(first.fence, RT, LONG))
        other = _claim(store, "isolation", B, LONG, rt=RT_OTHER)
        expect(other.token == 1, "isolation", "another runtime's tokens depend on this one's")
        expect(store.load_lease(RT) == again, "isolation", "a claim on another runtime changed this lease")


def check_lease_expiry_and_release(factory: StoreFactory) -> None:
    """Once a lease has expired another owner claims it (token + 1) and the old fence can
    neither renew nor release; a release by the holder makes the lease claimable at once and
    keeps owner and token; an expired lease nobody took can still be renewed by its holder."""
    with fresh(factory) as backend, opened(backend) as store:
        old = _claim(store, "claim", A, SHORT)
        taken = _claim_after_expiry(store, "takeover", B, LONG)
        expect(taken.token == old.token + 1, "takeover", f"the takeover got token {taken.token}")
        _expect_lost("stale renew", lambda: store.renew_lease(old.fence, RT, LONG))
        store.release_lease(old.fence, RT)
        expect(store.load_lease(RT) == taken, "stale release", "a release with a stale fence changed the lease")
        store.release_lease(taken.fence, RT)
        released = store.load_lease(RT)
        expect(
            released is not None and (released.owner, released.token) == (B, taken.token),
            "release",
            f"a release must keep owner and token, the lease is now {released!r}",
        )
        after = _claim(store, "claim after release", C, SHORT)
        expect(after.token == taken.token + 1, "claim after release", f"got token {after.token}")
        time.sleep(SHORT + 0.05)
        try:
            kept = store.renew_lease(after.fence, RT, LONG)
        except StoreError as exc:
            detail = f"an expired lease nobody took was not renewed: {exc}"
            raise StoreConformanceFailure("late renewal", detail) from exc
        expect(kept.token == after.token and kept.owner == C, "late renewal", f"renewal returned {kept!r}")


def check_lease_token_grows(factory: StoreFactory) -> None:
    """The token grows by exactly one with every successful claim, whoever claims, and never on
    a renewal; refused claims do not move it."""
    with fresh(factory) as backend, opened(backend) as store:
        owners = [A, B, B, C, A, A]
        for n, owner in enumerate(owners):
            lease = _claim(store, f"claim {n + 1}", owner, LONG)
            expected = n + 1
            expect(lease.token == expected, f"claim {n + 1}", f"token {lease.token}, expected {expected}")
            for _ in range(3):
                lease = store.renew_lease(lease.fence, RT, LONG)
                expect(lease.token == expected, f"renew after claim {n + 1}", f"a renewal set token {lease.token}")
            rival = B if owner != B else C
            expect_error(f"refused claim {n + 1}", LeaseHeld, partial(store.claim_lease, RT, rival, LONG))
            current = store.load_lease(RT)
            expect(current is not None and current.token == expected, "refused claim", "a refused claim moved it")
            store.release_lease(lease.fence, RT)


def check_stale_fence_refused(factory: StoreFactory) -> None:
    """Every write method refuses a stale fence — another owner's claim, or an earlier claim of
    the same owner — with ``OwnershipLost`` and writes none of its parts; the same write with
    the current fence succeeds."""
    with fresh(factory) as backend, opened(backend) as store:
        first = _claim(store, "claim", A, LONG)
        _seed(store, first.fence)
        second = _claim(store, "reclaim", A, LONG)  # same owner, new token: first is stale
        store.release_lease(second.fence, RT)
        taken = _claim(store, "takeover", B, LONG)
        current = _claim(store, "reclaim after takeover", B, LONG)
        stale_fences = {
            "previous owner, earlier claim": first.fence,
            "previous owner, last claim": second.fence,
            "same owner, earlier claim": taken.fence,
            "current token, other owner": Fence(A, current.token),
        }
        for method, write in WRITES.items():
            for why, fence in stale_fences.items():
                before = _state(store)
                step = f"{method} ({why})"
                _expect_lost(step, partial(write, store, fence))
                expect(_state(store) == before, step, "a write refused for its fence changed stored state")
        for method, write in WRITES.items():
            before = _state(store)
            try:
                write(store, current.fence)
            except StoreError as exc:
                raise StoreConformanceFailure(f"{method} (current fence)", f"refused: {exc}") from exc
            expect(_state(store) != before, f"{method} (current fence)", "the write with the current fence did nothing")


def check_unfenced_write_refused(factory: StoreFactory) -> None:
    """Writes without a fence work while a runtime was never claimed; once it has a lease row
    (even released) every write method refuses them with ``OwnershipLost`` naming the holder,
    writing nothing; other runtimes are unaffected."""
    with fresh(factory) as backend, opened(backend) as store:
        _seed(store, None)
        for method, write in WRITES.items():
            try:
                write(store, None)
            except StoreError as exc:
                raise StoreConformanceFailure(f"{method} (never claimed)", f"an unfenced write failed: {exc}") from exc
        lease = _claim(store, "claim", A, LONG)
        _seed(store, lease.fence)
        for phase in ("leased", "released"):
            for method, write in WRITES.items():
                before = _state(store)
                _expect_lost(f"{method} ({phase})", partial(write, store, None), A)
                expect(_state(store) == before, f"{method} ({phase})", "a refused unfenced write changed state")
            store.release_lease(lease.fence, RT)
        try:
            store.persist_input_state(RT_OTHER, row("other", "1"))
        except StoreError as exc:
            raise StoreConformanceFailure("other runtime", f"a lease blocked another runtime: {exc}") from exc


RACERS = 8
RACE_ROUNDS = 5


def _race(store: RuntimeStore, rt: str) -> tuple[list[Lease], list[str], list[BaseException]]:
    """``RACERS`` threads claim ``rt`` at once: the leases won, the holders named by
    ``LeaseHeld`` and any other error."""
    barrier = threading.Barrier(RACERS)
    lock = threading.Lock()
    won: list[Lease] = []
    held: list[str] = []
    errors: list[BaseException] = []

    def racer(n: int) -> None:
        barrier.wait()
        try:
            lease = store.claim_lease(rt, f"racer-{n}", LONG)
            with lock:
                won.append(lease)
        except LeaseHeld as exc:
            with lock:
                held.append(exc.owner)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won, held, errors


def check_lease_claim_race_threads(factory: StoreFactory) -> None:
    """Of threads racing to claim one free runtime, exactly one gets the lease (token 1) and
    every other gets ``LeaseHeld`` naming the winner."""
    with fresh(factory) as backend, opened(backend) as store:
        for round_ in range(RACE_ROUNDS):
            rt = f"rt:session:race-{round_}"
            won, held, errors = _race(store, rt)
            step = f"round {round_ + 1}"
            expect(not errors, step, f"a racing claim failed unexpectedly: {errors[:1]!r}")
            expect(len(won) == 1, step, f"{len(won)} of {RACERS} racing claims won, expected exactly 1")
            winner = won[0]
            expect(winner.token == 1, step, f"the winner got token {winner.token}")
            expect(held == [winner.owner] * (RACERS - 1), step, "a loser's LeaseHeld does not name the winner")
            expect(store.load_lease(rt) == winner, step, "the stored lease is not the winner's")


CLAIMERS = 3
PROCESS_ROUNDS = 6


def _rest_of_output(child: subprocess.Popen[str], first_line: str) -> str:
    """Everything a child that failed to start printed (``first_line`` and the rest, up to its
    exit): a start-up traceback spans many lines. A child still running after 10 s is killed."""
    assert child.stdin is not None and child.stdout is not None
    with contextlib.suppress(OSError):
        child.stdin.close()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    rest = child.stdout.read()
    return f"exit status {child.returncode}; output:\n{first_line}\n{rest}".rstrip()


def check_lease_claim_race_processes(factory: StoreFactory) -> None:
    """Processes racing to claim the same free runtimes (one race per runtime id) get distinct
    outcomes: exactly one wins each lease (token 1), every other gets ``LeaseHeld`` naming it."""
    with fresh(factory) as backend:
        if CAP_PROCESSES not in backend.capabilities:
            raise NotApplicable("backend storage cannot be shared between processes")
        opener, args = backend.process_opener()
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    lease_claimer.__file__,
                    json.dumps({"opener": opener, "args": args, "owner": f"process-{n}", "duration": LONG}),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=child_env(),
                text=True,
            )
            for n in range(CLAIMERS)
        ]
        try:
            for n, child in enumerate(children):
                assert child.stdout is not None
                line = child.stdout.readline().strip()
                if line != "ready":
                    raise StoreConformanceFailure("start", f"claimer {n} did not start: {_rest_of_output(child, line)}")
            with opened(backend) as store:
                for round_ in range(PROCESS_ROUNDS):
                    rt = f"rt:session:process-race-{round_}"
                    for child in children:
                        assert child.stdin is not None
                        child.stdin.write(rt + "\n")
                        child.stdin.flush()
                    replies = []
                    for child in children:
                        assert child.stdout is not None
                        replies.append(json.loads(child.stdout.readline()))
                    step = f"round {round_ + 1}"
                    expect(all("error" not in r for r in replies), step, f"a claim failed: {replies}")
                    winners = [f"process-{n}" for n, r in enumerate(replies) if r["won"]]
                    expect(len(winners) == 1, step, f"{len(winners)} processes won the same lease: {replies}")
                    expect(
                        all(r["won"] or r["holder"] == winners[0] for r in replies),
                        step,
                        f"a loser's LeaseHeld does not name the winner {winners[0]!r}: {replies}",
                    )
                    stored = store.load_lease(rt)
                    expect(
                        stored is not None and (stored.owner, stored.token) == (winners[0], 1),
                        step,
                        f"the stored lease {stored!r} is not the winner's",
                    )
        finally:
            for child in children:
                if child.stdin is not None:
                    child.stdin.close()
            for child in children:
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                if child.stdout is not None:
                    child.stdout.close()
