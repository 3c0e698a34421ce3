"""Hypothesis fuzzing of the protocol: decode and the line assembler never fail except by
ProtocolError, and every message and command survives an encode/decode round trip."""

import re

from hypothesis import example, given, settings, strategies as st

from vagal import link
from vagal import protocol as P

ints = st.integers(min_value=-(P.INT_LIMIT - 1), max_value=P.INT_LIMIT - 1)
tokens = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="*"),
                 min_size=1, max_size=12)
texts = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
seqs = st.integers(min_value=0, max_value=P.SEQ_MOD - 1)


def values_for(fields):
    parts = []
    for _name, ftype in fields:
        if ftype == P.INT:
            parts.append(ints)
        elif ftype == P.TOKEN:
            parts.append(tokens)
        elif ftype == P.TEXT:
            parts.append(texts)
        else:
            parts.append(st.lists(st.integers(min_value=0, max_value=65535), max_size=12).map(tuple))
    return st.tuples(*parts)


messages = st.sampled_from(link.table()).flatmap(lambda m: st.tuples(st.just(m[0]), seqs, values_for(m[1])))
commands = st.sampled_from(link.table(True)).flatmap(lambda m: st.tuples(st.just(m[0]), seqs, values_for(m[1])))


@settings(max_examples=400, deadline=None)
@given(messages)
def test_messages_round_trip(case):
    kind, seq, values = case
    line = P.encode(kind, seq, *values)
    assert len(line) - 1 <= P.MAX_LINE and line.count("\n") == 1
    assert all(32 <= ord(c) <= 126 for c in line[:-1])
    msg = P.decode(line)
    assert (msg.kind, msg.seq) == (kind, seq)
    assert msg.values == values


@settings(max_examples=200, deadline=None)
@given(commands)
def test_commands_round_trip(case):
    kind, seq, values = case
    line = P.encode_command(kind, seq, *values)
    msg = P.decode_command(line)
    assert (msg.kind, msg.seq, msg.values) == (kind, seq, values)


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.binary(max_size=260), st.text(max_size=260)), st.booleans())
def test_decode_raises_only_protocol_error(line, commands):
    try:
        P.decode(line, commands)
    except P.ProtocolError as e:
        assert str(e)
    P.request_id(line)  # never raises either


@settings(max_examples=400, deadline=None)
@given(messages, st.integers(min_value=0, max_value=300), st.integers(min_value=0, max_value=255))
@example(("log", 65535, ("7G)", "<(N")), 86, 100)  # found in CI: 'D' -> 'd' in the checksum
def test_any_corrupted_byte_is_caught(case, pos, byte):
    kind, seq, values = case
    line = P.encode(kind, seq, *values).encode()[:-1]
    pos %= len(line)
    if line[pos] == byte:
        return
    bad = line[:pos] + bytes([byte]) + line[pos + 1:]
    try:
        P.decode(bad)
    except P.ProtocolError:
        return
    raise AssertionError("corruption not detected: %r" % bad)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=90), max_size=20), st.integers(min_value=4, max_value=64))
def test_assembler_matches_a_reference_split(chunks, maxlen):
    asm = P.LineAssembler(maxlen)
    got = []
    for c in chunks:
        got += link.lines_from(asm, c)
    data = b"".join(chunks)
    # the reference: CRLF, CR and LF each end a line
    pieces = re.split(b"\r\n|\r|\n", data)
    tail = pieces.pop()  # the last piece has no line end yet
    if data.endswith(b"\r"):
        tail = b""  # (an LF may still follow, ending nothing more)
    want = []
    overlong = 0
    for p in pieces:
        if len(p) > maxlen:
            overlong += 1
        elif p:
            want.append(p)
    # a line still being received may already have been counted as overlong
    assert got == want
    assert asm.overlong - (1 if len(tail) > maxlen else 0) == overlong
    for line in got:
        try:
            P.decode_command(line)
        except P.ProtocolError:
            pass


def test_command_checksum_accepts_either_case():
    line = P.encode_command("ping", 8).rstrip("\n")
    head, crc = line.rsplit("*", 1)
    assert crc != crc.lower()  # the case test needs hex letters
    assert P.decode_command(head + "*" + crc.lower()).seq == 8
    message = P.encode("log", 8, "info", "x").rstrip("\n")
    head, crc = message.rsplit("*", 1)
    lowered = head + "*" + crc.lower()
    if lowered != message:
        try:
            P.decode(lowered)
        except P.ProtocolError as e:
            assert "checksum" in str(e)
        else:
            raise AssertionError("a device line with a lower-case checksum was accepted")


def test_assembler_reference_edge_cases():
    for data in (b"a" * 8 + b"\r", b"a" * 9, b"a" * 8 + b"\r\n", b"a" * 8 + b"\rb\n", b"a\r\r\nb\n\r"):
        test_assembler_matches_a_reference_split.hypothesis.inner_test([data], 8)


def test_docs_describe_every_message_command_field_and_setting():
    import pathlib
    import re

    from vagal import settings as S

    doc = (pathlib.Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    for table in (link.table(), link.table(True)):
        for kind, fields in table:
            assert "`%s`" % kind in doc, kind
            for name, _ in fields:
                assert "`%s`" % name in doc, (kind, name)
    for key, _kind, _default, _allowed in _specs(S):
        assert "`%s`" % key in doc, key
    # every example line in the doc is a valid line
    examples = re.findall(r"^([a-z]+ \d+ .*\*[0-9A-F]{4})$", doc, re.M)
    assert len(examples) >= 8
    for line in examples:
        P.decode_command(line) if line.split()[0] == "set" else P.decode(line)
    assert "version %d" % P.PROTOCOL_VERSION in doc


def _specs(S):
    """((key, type, default, allowed), ...) from settings.SPECS (five items a setting)."""
    out = []
    for i in range(0, len(S.SPECS), 5):
        key, kind, default, a, b = S.SPECS[i:i + 5]
        out.append((key, kind, default, (a, b) if kind == S.INT else a))
    return out
