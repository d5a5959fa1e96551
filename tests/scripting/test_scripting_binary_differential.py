"""cmsgpack, struct and cjson's options compared byte for byte with redis-server 7.0."""
from __future__ import annotations

import pytest

from test_scripting_differential import _run_both, pair  # noqa: F401  (the fixture)

pytest.importorskip("lupa")

#: cmsgpack: every type both ways, the array/map rule, nesting, the unpack variants, errors.
CMSGPACK = [
    "return cmsgpack.pack(1.5, 0.1, -1, -33, 2^40, -2^40, 'abc', 127, 128, 255, 256, 65535, "
    "65536, 2^32 - 1, 2^32, -32, -128, -129, -32768, -32769, -2^31, -2^31 - 1, 2^63, -2^63, "
    "1/0, -1/0, 3.25, 1e300)",
    "return cmsgpack.pack(true, false, nil, {}, function() end, string.rep)",
    "return cmsgpack.pack(string.rep('x', 31), string.rep('y', 32), string.rep('z', 256))",
    "return cmsgpack.pack(string.rep('w', 65536)) == nil",
    "return cmsgpack.pack({1, 2, 3}, {1, 2, nil, 4}, {a=1}, {[1]=1, [3]=3}, {1, x=2})",
    "local t = {} for i = 1, 20 do t[i] = i end return cmsgpack.pack(t)",
    "local t = {} for i = 1, 70000 do t[i] = 1 end return #cmsgpack.pack(t)",
    "local t = {} local c = t for i = 1, 20 do c[1] = {} c = c[1] end return cmsgpack.pack(t)",
    "return cmsgpack.pack()", "return cmsgpack.unpack()", "return cmsgpack.unpack('')",
    "return cmsgpack.unpack({})", "return {cmsgpack.unpack('\\145')}",
    "return {cmsgpack.unpack('\\193')}", "return {cmsgpack.unpack('\\220\\255\\255')}",
    "return {cmsgpack.unpack('\\221\\255\\255\\255\\255')}",
    "return {cmsgpack.unpack('\\146\\192\\1')}",
    "return {cmsgpack.unpack_one('\\1\\2\\3')}", "return {cmsgpack.unpack_one('\\1\\2\\3', 2)}",
    "return {cmsgpack.unpack_one('\\1\\2\\3', 3)}", "return {cmsgpack.unpack_one('\\1\\2\\3', 4)}",
    "return {cmsgpack.unpack_one('\\1\\2\\3', -1)}",
    "return {cmsgpack.unpack_limit('\\1\\2\\3', 2)}",
    "return {cmsgpack.unpack_limit('\\1\\2\\3', 2, 1)}",
    "return {cmsgpack.unpack_limit('\\1\\2\\3')}", "return {cmsgpack.unpack_limit('\\1\\2\\3', -1)}",
    "return {cmsgpack.unpack_limit('\\1\\2\\3', 0)}",
    "return {cmsgpack.unpack(cmsgpack.pack(1, 2, 'three', {4, 5}, {six=6}))}",
    "local t = cmsgpack.unpack(cmsgpack.pack({a={b={c='d'}}})) return t.a.b.c",
    "return {cmsgpack.unpack(cmsgpack.pack(0.1, 1.5, -2^40, 2^40, 2^63, true, false))}",
    "return tostring(cmsgpack.unpack(cmsgpack.pack(0.1)))",
    "return tostring(cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255'))",
    "return {cmsgpack.unpack('\\196\\2ab\\217\\1c\\202\\63\\192\\0\\0')}",
    "return cmsgpack.unpack('\\129\\1\\2')[1]", "cmsgpack.x = 1",
]

#: struct: every format option, alignment, C's conversions, errors.
STRUCT = [
    "return struct.size('>iH')", "return struct.size('i3')", "return struct.size('i40')",
    "return struct.size('s')", "return struct.size('c0')", "return struct.size('!4bi')",
    "return struct.size('q')", "return struct.size()", "return struct.size('c')",
    "return struct.size('c99999999999999999999')", "return struct.size('x T')",
    "return struct.size('!') .. struct.size('!8')", "return struct.size('!0')",
    "return struct.size('!2bd!8bd')", "return struct.size(4)",
    "return {struct.pack('>i2', 300)}", "return struct.pack('i3', 1)",
    "return {struct.unpack('>I2', 'ab')}", "return {struct.unpack('>I2', 'a')}",
    "return {struct.unpack('bc0', '\\3abc')}", "return {struct.unpack('s', 'abc')}",
    "return {struct.unpack('ss', 'ab\\0cd\\0', 1)}", "return {struct.unpack('b', 'ab', 2)}",
    "return struct.pack('c2', 'a')", "return struct.pack('!3i', 1)", "return struct.pack('i', 'x')",
    "return struct.pack('Q')", "return {struct.unpack('i33', string.rep('a', 40))}",
    "return struct.pack('>i16', -2)", "return {struct.unpack('<i16', struct.pack('<i16', -2))}",
    "return {struct.unpack('>l', struct.pack('>l', 2^53))}", "return {struct.unpack('c0', 'ab')}",
    "return struct.pack('c0s', 'ab', 'cd')", "return {struct.unpack('x', '')}",
    "return {struct.unpack('b', 'a', 5)}", "return {struct.unpack('b', 'a', -1)}",
    "return {struct.unpack('b', 'a', 0)}", "return struct.pack('!d', 1.5)",
    "return struct.pack('bd', 1, 1.5)", "return struct.pack('!bd', 1, 1.5)",
    "return struct.pack('>B', -1)", "return struct.pack('>B', 1e20)", "return struct.pack('f', 0.1)",
    "return struct.pack('<f', 1e300)",
    "return {struct.unpack('>f', struct.pack('>f', 0.1))}", "return struct.pack()",
    "return struct.unpack('b')", "return struct.pack('i0', 1)",
    "return {struct.unpack('<i8', struct.pack('<i8', -2^63))}",
    "return {struct.unpack('<I8', struct.pack('<I8', 2^63))}", "return struct.pack('<I8', 2^64)",
    "return {struct.unpack('<I4', struct.pack('<I4', -1))}",
    "return {struct.unpack('<i4', struct.pack('<i4', 0/0))}", "return {struct.unpack('=i2', 'ab')}",
    "return {struct.unpack('>hHbBlLT', struct.pack('>hHbBlLT', -2, 65535, -3, 200, -5, 6, 7))}",
    "return {struct.unpack('<d>d', struct.pack('<d>d', 0.1, -2.5))}",
    "return struct.pack('b', '12')", "return struct.pack('s', 12)",
    "return {struct.unpack('i2c0', struct.pack('i2', 3) .. 'abcd')}",
    "return {struct.unpack('sc0', '2\\0ab')}", "return struct.pack('b', nil)",
    "return struct.pack('b', 1, 2)", "return struct.pack(' <b>b', 1, 2)", "struct.x = 1",
]


#: cjson's configuration functions and their effects (settings last until SCRIPT FLUSH,
#: which every case starts with).
CJSON_OPTIONS = [
    "return {cjson.encode_sparse_array()}",
    "return {cjson.encode_max_depth(), cjson.decode_max_depth(), cjson.encode_number_precision(), "
    "cjson.encode_keep_buffer(), cjson.encode_invalid_numbers(), cjson.decode_invalid_numbers()}",
    "return cjson.encode_invalid_numbers() == false", "return cjson.decode_invalid_numbers() == true",
    "cjson.encode_invalid_numbers(true) return cjson.encode({0/0, 1/0, -1/0})",
    "cjson.encode_invalid_numbers('null') return cjson.encode({0/0, 1/0})",
    "cjson.encode_invalid_numbers('on') return cjson.encode({[1/0]=1})",
    "return cjson.encode_invalid_numbers('bogus')", "return cjson.encode_invalid_numbers('null')",
    "return cjson.encode_invalid_numbers({})",
    "return cjson.encode_max_depth(0)", "return cjson.encode_max_depth('x')",
    "return cjson.encode_max_depth('5')", "return cjson.encode_max_depth(1, 2)",
    "cjson.encode_max_depth(2) return cjson.encode({{{1}}})",
    "cjson.encode_max_depth(2) return cjson.encode({{1}})",
    "cjson.decode_max_depth(2) return cjson.decode('[[[1]]]')",
    "cjson.decode_max_depth(1) return cjson.decode('{\"a\":[1]}')",
    "cjson.decode_max_depth(2) return cjson.decode('[\"[[[\", [1]]')[1]",
    "return cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001))",
    "cjson.encode_number_precision(3) return cjson.encode({0.123456, 1234567})",
    "return cjson.encode_number_precision(15)", "return cjson.encode_number_precision(nil)",
    "cjson.encode_sparse_array(true) return cjson.encode({[1]=1,[30]=3})",
    "cjson.encode_sparse_array(false, 0) return cjson.encode({[1]=1,[30]=3})",
    "cjson.encode_sparse_array(false, 1, 1) return cjson.encode({[1]=1,[3]=3})",
    "return {cjson.encode_sparse_array('on', 3, 4)}", "return cjson.encode_sparse_array(1)",
    "return cjson.encode_sparse_array(nil, -1)", "return cjson.encode_sparse_array(nil, 1, 2, 3)",
    "cjson.decode_invalid_numbers(false) return cjson.decode('[NaN]')",
    "return cjson.decode('[1, NaN]')", "return cjson.decode('[Infinity]')",
    "return cjson.encode_keep_buffer(false)", "return cjson.encode_keep_buffer('on')",
    "return cjson.encode_keep_buffer('yes')",
    "return {cjson._NAME, cjson._VERSION, type(cjson.new())}",
    "local c = cjson.new() c.encode_max_depth(1) return {cjson.encode({{1}}), "
    "c.encode_max_depth()}",
]


@pytest.mark.parametrize("script", CMSGPACK + STRUCT + CJSON_OPTIONS)
def test_binary_libraries_match_redis(pair, script):  # noqa: F811
    ours, theirs = _run_both(pair, False, "EVAL", script, 0)
    assert ours == theirs


@pytest.mark.parametrize("script", [
    "return cmsgpack.unpack(string.rep('\\145', 100000) .. '\\1')",
    "return cmsgpack.unpack(string.rep('\\129', 100000) .. '\\1')",
    "return {cmsgpack.unpack('\\221\\127\\255\\255\\255')}",
    "return #{cmsgpack.unpack(string.rep('\\1', 100000))}",
    "return #{struct.unpack(string.rep('b', 100000), string.rep('a', 100000))}",
    "return struct.pack('c2000000000', 'x')",
])
def test_hostile_input_is_bounded(r, script):
    """Deep nesting, huge counts and huge result lists end in an error, not a crash."""
    with pytest.raises(Exception) as info:
        r.eval(script, 0)
    assert "user_script:1:" in str(info.value)
    assert r.ping()
