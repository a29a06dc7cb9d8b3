"""Client JSON bodies (server/kernel/jsonbody.py)."""
from __future__ import annotations

import pytest

from server.kernel.errors import BadRequest
from server.kernel.jsonbody import decode_json_object


@pytest.mark.parametrize("raw", ['{"candidate":{"sdpMLineIndex":NaN}}', '{"duration_s":Infinity}',
                                 '{"x":-Infinity}'])
def test_nan_and_infinity_are_refused(raw):
    """NaN/Infinity are not JSON: refused, so they are never relayed to a browser that cannot parse them."""
    with pytest.raises(BadRequest):
        decode_json_object(raw)


def test_plain_numbers_pass():
    """Ordinary numbers, including large and fractional ones, decode as before."""
    assert decode_json_object('{"a":1.5,"b":1e300,"c":-7}') == {"a": 1.5, "b": 1e300, "c": -7}
