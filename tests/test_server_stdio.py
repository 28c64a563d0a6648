"""The built-in server's stdio writer: a message in pieces is the same JSON line."""

import json

import mcp_types as types
import pytest

from mcp_magic.server.stdio import BIG_LIST, BIG_STRING, message_chunks


def whole_line(message: types.JSONRPCMessage) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"


@pytest.mark.parametrize("result", [
    {},
    {"content": [{"type": "text", "text": "small"}]},
    {"content": [{"type": "resource",
                  "resource": {"uri": "table://x", "blob": "QUJD" * BIG_STRING}}],
     "structuredContent": {"rows": [[i, f"é\"\n{i}", i / 3, None] for i in range(3 * BIG_LIST + 7)],
                           "note": "x" * (BIG_STRING + 1) + "\u2028\ud7ff\\"}},
    {"a": ["q" * (BIG_STRING + 5), "q" * (BIG_STRING + 5)], "b": list(range(BIG_LIST + 1))},
])
def test_pieces_make_the_same_line(result: dict) -> None:
    message = types.JSONRPCResponse(jsonrpc="2.0", id=7, result=result)
    chunks = list(message_chunks(message))
    line = b"".join(chunks)
    assert line == whole_line(message)
    assert json.loads(line)["result"] == result
    if result.get("structuredContent"):
        # the big parts came in pieces: none of them holds the whole answer
        assert max(map(len, chunks)) < len(line) / 2


def test_the_result_is_not_changed() -> None:
    rows = [[1, "a"]] * (BIG_LIST + 1)
    result = {"structuredContent": {"rows": rows}}
    message = types.JSONRPCResponse(jsonrpc="2.0", id=1, result=result)
    b"".join(message_chunks(message))
    assert message.result == {"structuredContent": {"rows": rows}}
    assert message.result["structuredContent"]["rows"] is rows


def test_requests_and_notifications_pass_whole() -> None:
    note = types.JSONRPCNotification(jsonrpc="2.0", method="notifications/progress",
                                     params={"progress": 1, "progressToken": "t"})
    assert list(message_chunks(note)) == [whole_line(note)]
