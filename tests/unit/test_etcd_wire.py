"""The etcd store's hand-laid-out write requests are byte for byte what protobuf serializes."""

from __future__ import annotations

import pytest
from aetcd import rpc

from apiserver.storage import etcd

pytestmark = pytest.mark.unit

KEYS = [b"/registry/pods/default/web-0", b"/r/" + b"k" * 300]          # one- and two-byte lengths
VALUES = [b"", b"{}", b"x" * 1300, b"y" * 200_000]                       # empty, short, 2- and 3-byte lengths
REVISIONS = [0, 1, 127, 128, 300_000, 2**40]


def _compare(key: bytes, result: int, target: int, **value: int) -> rpc.Compare:
    return rpc.Compare(key=key, result=result, target=target, **value)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value", VALUES)
def test_create_request(key: bytes, value: bytes) -> None:
    want = rpc.TxnRequest(compare=[_compare(key, rpc.Compare.EQUAL, rpc.Compare.VERSION, version=0)],
                          success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value))])
    assert etcd.txn_request(etcd.cmp_version_is_0(key), etcd.op_put(key, value)) == want.SerializeToString()


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("rev", REVISIONS)
def test_update_and_delete_requests(key: bytes, rev: int) -> None:
    value = b"v" * 500
    update = rpc.TxnRequest(compare=[_compare(key, rpc.Compare.EQUAL, rpc.Compare.MOD, mod_revision=rev)],
                            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value))],
                            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))])
    assert etcd.txn_request(etcd.cmp_mod_revision_is(key, rev), etcd.op_put(key, value),
                            etcd.op_range(key)) == update.SerializeToString()
    delete = rpc.TxnRequest(compare=[_compare(key, rpc.Compare.EQUAL, rpc.Compare.MOD, mod_revision=rev)],
                            success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))],
                            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))])
    assert etcd.txn_request(etcd.cmp_mod_revision_is(key, rev), etcd.op_delete(key),
                            etcd.op_range(key)) == delete.SerializeToString()


def test_unconditional_delete_request() -> None:
    key = KEYS[0]
    want = rpc.TxnRequest(compare=[_compare(key, rpc.Compare.GREATER, rpc.Compare.VERSION, version=0)],
                          success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))],
                          failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))])
    assert etcd.txn_request(etcd.cmp_version_above_0(key), etcd.op_delete(key),
                            etcd.op_range(key)) == want.SerializeToString()


@pytest.mark.parametrize("key", KEYS)
def test_get_request(key: bytes) -> None:
    assert etcd.range_one(key) == rpc.RangeRequest(key=key).SerializeToString()
