"""``OwnershipConfig``: defaults, validation, and ownership on by default for persistent machines."""

from __future__ import annotations

import dataclasses
import math
import os
import socket
from typing import Any

import pytest
from meerkat_runtime.session.machine import MeerkatMachine
from meerkat_runtime.session.ownership import OwnershipConfig, default_owner_id
from meerkat_runtime.store.memory import InMemoryRuntimeStore
from meerkat_runtime.vocab.errors import InvalidSetting

from tests.runtime_session.helpers import run


def test_defaults() -> None:
    config = OwnershipConfig()
    assert (config.owner_id, config.lease_s, config.renew_every_s, config.wait_for_lease) == (None, 15.0, 5.0, False)
    assert config.wait_limit_s == 0.0 and OwnershipConfig(wait_for_lease=True).wait_limit_s == math.inf
    assert OwnershipConfig(wait_for_lease=2.5).wait_limit_s == 2.5
    assert OwnershipConfig(lease_s=1.0, renew_every_s=0.5).poll_s == 0.05
    assert OwnershipConfig(wait_poll_s=0.01).poll_s == 0.01


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"owner_id": ""}, "owner_id"),
        ({"lease_s": 0}, "lease_s"),
        ({"lease_s": math.inf}, "lease_s"),
        ({"lease_s": True}, "lease_s"),
        ({"renew_every_s": 0}, "renew_every_s"),
        ({"lease_s": 5.0, "renew_every_s": 5.0}, "shorter than lease_s"),
        ({"wait_for_lease": -1}, "wait_for_lease"),
        ({"wait_for_lease": math.nan}, "wait_for_lease"),
        ({"wait_poll_s": 0}, "wait_poll_s"),
        ({"clock": 3}, "clock"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSetting, match=message) as info:
        OwnershipConfig(**settings)
    assert isinstance(info.value, ValueError) and info.value.kind == "invalid_setting"


@pytest.mark.parametrize(("lease_s", "renew_every_s"), [(1.0, 1 / 3), (0.3, 0.1), (15.0, 5.0), (60, 20.0)])
def test_the_renewal_period_not_given_is_a_third_of_the_lease(lease_s: float, renew_every_s: float) -> None:
    config = OwnershipConfig(lease_s=lease_s)
    assert config.renew_every_s == pytest.approx(renew_every_s)
    assert config.renew_every_s is not None and config.renew_every_s < config.lease_s
    shorter = dataclasses.replace(config, lease_s=0.6)  # derived again, not kept
    assert shorter.renew_every_s == pytest.approx(0.2)


def test_an_explicit_renewal_period_is_kept_and_a_bad_one_refused() -> None:
    assert OwnershipConfig(lease_s=30.0, renew_every_s=5.0).renew_every_s == 5.0
    assert dataclasses.replace(OwnershipConfig(lease_s=30.0, renew_every_s=5.0), lease_s=6.0).renew_every_s == 5.0
    assert OwnershipConfig(lease_s=1.0, renew_every_s=None).renew_every_s is None
    with pytest.raises(InvalidSetting, match=r"renew_every_s \(5.0\) must be shorter than lease_s \(1.0\)"):
        OwnershipConfig(lease_s=1.0, renew_every_s=5.0)
    with pytest.raises(InvalidSetting, match="must be shorter than lease_s"):
        dataclasses.replace(OwnershipConfig(lease_s=30.0, renew_every_s=5.0), lease_s=2.0)


def test_default_owner_ids_name_host_and_process_and_are_unique() -> None:
    first, second = default_owner_id(), default_owner_id()
    host, pid, _ = first.split(":", 2)
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert first != second


def test_persistent_machines_own_their_sessions_by_default() -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        m = MeerkatMachine.persistent(store)
        assert m.ownership == OwnershipConfig() and m.owner_id is not None
        assert MeerkatMachine.persistent(store).owner_id != m.owner_id  # one owner per machine
        await m.register_session("s")
        lease = store.load_lease("rt:session:s")
        assert lease is not None and lease.owner == m.owner_id and lease.token == 1
        await m.close()

    run(body())


def test_ownership_can_be_switched_off_and_ephemeral_machines_have_none() -> None:
    async def body() -> None:
        store = InMemoryRuntimeStore()
        m = MeerkatMachine.persistent(store, ownership=None)
        assert m.ownership is None and m.owner_id is None
        await m.register_session("s")
        assert store.load_lease("rt:session:s") is None
        claim = m.session_claim_handle().get("rt:session:s")
        assert claim is not None and claim.fence is None and not claim.owned
        await m.close()
        eph = MeerkatMachine.ephemeral()
        assert eph.ownership is None and eph.owner_id is None

    run(body())
