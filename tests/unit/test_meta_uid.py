"""``kubelite.api.meta.new_uid``: RFC 4122 version-4 UUIDs from a pooled random source."""

from __future__ import annotations

import os
import uuid
import warnings

import pytest

from kubelite.api.meta import new_uid

pytestmark = pytest.mark.unit


def test_uids_are_random_v4_uuids_and_unique() -> None:
    uids = [new_uid() for _ in range(20000)]
    assert len(set(uids)) == len(uids)
    for u in uids[:300]:
        parsed = uuid.UUID(u)
        assert str(parsed) == u and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_child_does_not_repeat_the_parents_uids() -> None:
    new_uid()                                   # the pool now holds bytes a fork would copy
    r, w = os.pipe()
    with warnings.catch_warnings():             # other tests' threads: the child only writes and exits
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:                                # child: report its next uid and leave at once
        os.write(w, new_uid().encode())
        os._exit(0)
    os.close(w)
    child = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert uuid.UUID(child).version == 4 and child != new_uid()
