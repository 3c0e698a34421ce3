"""Protocol: round trips from the message table, checksums, garbage, the line assembler.

Plain functions and bare asserts: these also run on the MicroPython unix and WebAssembly ports.
"""

from vagal import link
from vagal import protocol as P
import portable


def _sample_value(ftype, i):
    if ftype == P.INT:
        return (-(P.INT_LIMIT - 1), 0, 7, P.INT_LIMIT - 1, 123456)[i % 5]
    if ftype == P.TOKEN:
        return ("ok", "no_contact", "0.1.0", "x")[i % 4]
    if ftype == P.TEXT:
        return ("", "two words", "star * inside*1234", " leading")[i % 4]
    return ((), (0,), (1, 65535, 40000))[i % 3]


def _raises(fn, *args):
    try:
        fn(*args)
    except P.ProtocolError as e:
        return str(e)
    return None


def test_every_message_round_trips():
    for rep in range(5):
        for kind, fields in link.table():
            values = tuple(_sample_value(f[1], rep + j) for j, f in enumerate(fields))
            line = P.encode(kind, 65530 + rep, *values)
            assert line.endswith("\n")
            msg = P.decode(line)
            assert msg.kind == kind
            assert msg.seq == (65530 + rep) % P.SEQ_MOD
            for j in range(len(fields)):
                want = values[j]
                if fields[j][1] == P.INTS:
                    want = tuple(want)
                assert msg.values[j] == want, (kind, fields[j][0], msg.values[j], want)
                assert msg[fields[j][0]] == want


def test_every_command_round_trips_with_and_without_checksum():
    for kind, fields in link.table(True):
        values = tuple("rate_mbpm=5500" if f[1] == P.TOKEN else 1 for f in fields)
        line = P.encode_command(kind, 42, *values)
        msg = P.decode_command(line)
        assert msg.kind == kind and msg.seq == 42 and msg.values == values
        bare = line[:line.rfind("*")]
        msg2 = P.decode_command(bare)
        assert msg2.kind == kind and msg2.values == values
        # device messages never go without a checksum
        assert "checksum" in _raises(P.decode, bare)


def test_any_single_character_change_is_detected():
    line = P.encode("beat", 9, 123456, 850000, 1200, 95).rstrip("\n")
    for i in range(len(line)):
        for repl in ("0", "9", " ", "A", "*", "b"):
            if repl == line[i]:
                continue
            bad = line[:i] + repl + line[i + 1:]
            assert _raises(P.decode, bad) is not None, bad


def test_checksum_is_crc16_ccitt_false():
    # the standard check value of CRC-16/CCITT-FALSE
    assert P.crc16(b"123456789") == 0x29B1
    assert P.crc16("123456789") == 0x29B1


def test_garbage_is_rejected_with_a_reason():
    cases = (
        ("", "empty"),
        ("beat 1 2 3 4 5", "missing checksum"),
        ("beat 1 2 3 4 5*12", "checksum"),
        ("beat 1 2 3 4 5*XYZW", "checksum"),
        (b"\x00\x03\x04\xff", "non-printable"),
        ("beat\t1 2 3 4 5*0000", "non-printable"),
    )
    for line, word in cases:
        reason = _raises(P.decode, line)
        assert reason is not None and word in reason, (line, reason)
    # well-formed checksums around wrong content
    for body, word in (("beat 1 2 3 4", "missing field"), ("1 2", "unknown message"),
                       (" 1 2", "unknown message"), ("beat 1 2 x 4 5", "not an integer"),
                       ("beat 1 2 99999999999 4 5", "integer"), ("beat 1 2 1073741824 4 5", "range"),
                       ("beat 70000 2 3 4 5", "sequence"), ("beat", "sequence"),
                       ("beat 1 2 3  5", "empty field"), ("raw 1 2 250 1 x", "not an integer")):
        line = "%s*%04X" % (body, P.crc16(body))
        reason = _raises(P.decode, line)
        assert reason is not None and word in reason, (body, reason)


def _line(body):
    return "%s*%04X" % (body, P.crc16(body))


def test_a_device_line_from_newer_firmware_is_read_as_far_as_known():
    """Versioning (docs/protocol.md): an unknown kind decodes with its seq and no fields (the host
    skips it but counts it), extra trailing fields are ignored."""
    m = P.decode(_line("heartbeat_v9 17 1 2 3 some text"))
    assert m.kind == "heartbeat_v9" and m.seq == 17 and m.values == () and m.names == ()
    m = P.decode(_line("beat 5 1000 850000 1200 95 42 new_token"))
    assert m.kind == "beat" and m.values == (1000, 850000, 1200, 95)
    m = P.decode(_line("hrv 6 1000 721 42000 51000 14 7"))
    assert m["count"] == 14
    stats = link.LinkStats()
    for seq, body in ((0, "hello 0 0.1.0 1 250 pico"), (1, "future 1 x"), (2, "beat 2 1 2 3 4 5 6")):
        assert stats.accept(_line(body)) is not None, body
    assert (stats.received, stats.lost, stats.corrupt) == (3, 0, 0)


def test_a_missing_optional_field_takes_its_default():
    saved_m, saved_o = P.MESSAGES, P.OPTIONAL
    try:
        P.MESSAGES = saved_m + ("probe iisi t_ms n word extra",)
        P.OPTIONAL = saved_o + ("probe word -", "probe extra -1")
        assert P.decode(_line("probe 1 5 6")).values == (5, 6, "-", -1)
        assert P.decode(_line("probe 1 5 6 w")).values == (5, 6, "w", -1)
        assert P.decode(_line("probe 1 5 6 w 9")).values == (5, 6, "w", 9)
        reason = _raises(P.decode, _line("probe 1 5"))
        assert reason is not None and "missing field n" in reason
    finally:
        P.MESSAGES, P.OPTIONAL = saved_m, saved_o
    for s in P.OPTIONAL:  # every optional field is a field of its kind, with a default of its type
        kind, field, default = s.split(" ")
        names = dict(link.fields(kind))
        assert field in names, s
        if names[field] == "i":
            int(default)


def test_commands_reject_bad_lines_and_find_the_request_id():
    for line, word, rid in (("ping", "sequence", P.NO_ID), ("frobnicate 7", "unknown command", 7),
                            ("set 8", "missing field", 8), ("ping 9 extra", "extra", 9),
                            ("ping x", "not an integer", P.NO_ID), ("ping 3*0000", "checksum", 3),
                            ("raw 12 on off", "extra", 12)):
        reason = _raises(P.decode_command, line)
        assert reason is not None and word in reason, (line, reason)
        assert P.request_id(line) == rid, (line, P.request_id(line))
    assert P.request_id(b"\xff\xfe 5") == 5
    assert P.request_id("ping 123456") == P.NO_ID


def test_text_is_sanitised_and_never_carries_ctrl_c_or_ctrl_d():
    line = P.encode("log", 1, "warn", "bad\x03\x04\x00\n\r\t byte \u00e9")
    assert line.count("\n") == 1 and line.endswith("\n")
    for c in line[:-1]:
        assert 32 <= ord(c) <= 126
    assert P.decode(line)["text"].startswith("bad?????")
    tok = P.encode("setting", 2, "a b*c", "")
    msg = P.decode(tok)
    assert msg["key"] == "a_b_c" and msg["value"] == "-"


def test_long_text_is_cut_to_fit_and_ints_are_checked():
    line = P.encode("err", 3, 17, "x" * 500)
    assert len(line) - 1 <= P.MAX_LINE
    assert P.decode(line)["reason"].endswith("...")
    assert "range" in _raises(P.encode, "beat", 0, 1 << 30, 0, 0, 0)
    assert "expected int" in _raises(P.encode, "beat", 0, "12", 0, 0, 0)
    assert "takes 4" in _raises(P.encode, "beat", 0, 1, 2, 3)
    assert "unknown" in _raises(P.encode, "nosuch", 0)
    assert "too long" in _raises(P.encode, "raw", 0, 0, 250, tuple(range(60000, 60040)))


def test_link_stats_count_lost_and_corrupt_lines():
    lines = [P.encode("log", s, "info", "n%d" % s) for s in range(65530, 65546)]
    stats = link.LinkStats()
    dropped = (3, 4, 9)
    for i in range(len(lines)):
        if i in dropped:
            continue
        line = lines[i]
        if i == 12:
            line = line.replace("n", "m", 1)  # corrupt in transit
        msg = stats.accept(line)
        assert (msg is None) == (i == 12)
    assert stats.lost == len(dropped) + 1  # the corrupt line is also a gap in the sequence
    assert stats.corrupt == 1
    assert "checksum" in stats.last_error
    assert stats.received == len(lines) - len(dropped) - 1
    # a restarted device says hello with seq 0: no false gap
    stats.accept(P.encode("hello", 0, "0.1.0", 1, 250, "pico", "-"))
    stats.accept(P.encode("log", 1, "info", "x"))
    assert stats.lost == len(dropped) + 1


def test_assembler_split_writes_give_the_same_lines():
    data = b"ping 1\r\nset 2 rate_mbpm=5000\n\n\nstart 3\n"
    whole = link.lines_from(P.LineAssembler(), data)
    assert whole == [b"ping 1", b"set 2 rate_mbpm=5000", b"start 3"]
    asm = P.LineAssembler()
    got = []
    for i in range(len(data)):
        got += link.lines_from(asm, data[i:i + 1])
    assert got == whole
    asm = P.LineAssembler()
    buf = bytearray(8)
    got = []
    for i in range(0, len(data), 5):
        chunk = data[i:i + 5]
        buf[:len(chunk)] = chunk
        asm.feed(buf, len(chunk))
        while True:
            line = asm.next_line()
            if line is None:
                break
            got.append(line)
    assert got == whole
    assert asm.lines == 3


def test_assembler_drops_overlong_lines_and_recovers():
    asm = P.LineAssembler(20)
    exact = b"a" * 20
    got = link.lines_from(asm, b"x" * 21 + b"\nok 1\n" + exact + b"\r\n" + b"y" * 500)
    assert got == [b"ok 1", exact]
    assert asm.overlong == 2
    got = link.lines_from(asm, b"yy\nping 2\n")
    assert got == [b"ping 2"]
    assert asm.overlong == 2


def test_assembler_passes_binary_noise_to_decode_which_rejects_it():
    asm = P.LineAssembler()
    noise = bytes((i * 37 + 11) & 0xFF for i in range(600))
    lines = link.lines_from(asm, noise + b"\nping 5\n")
    assert lines[-1] == b"ping 5"
    for line in lines[:-1]:
        assert len(line) <= P.MAX_LINE
        assert _raises(P.decode_command, line) is not None
    assert P.decode_command(lines[-1]).kind == "ping"


def test_table_strings_are_well_formed():
    """Each table string: kind, one type letter per field, then exactly that many unique names;
    TEXT and INTS only last, no kind twice, and a prefix of a kind never matches it."""
    for commands in (False, True):
        kinds = []
        for kind, fields in link.table(commands):
            assert kind and kind not in kinds, kind
            kinds.append(kind)
            names = [f[0] for f in fields]
            for j in range(len(fields)):
                assert fields[j][1] in (P.INT, P.TOKEN, P.TEXT, P.INTS), (kind, fields[j])
                assert fields[j][0] and names.count(fields[j][0]) == 1, (kind, fields[j])
                if fields[j][1] in (P.TEXT, P.INTS):
                    assert j == len(fields) - 1, (kind, fields[j])
            assert link.fields(kind, commands) == fields
            assert _raises(P.encode, kind[:-1], 1) is not None or kind[:-1] in kinds
    assert len(link.table()) == len(P.MESSAGES) and len(link.table(True)) == len(P.COMMANDS)
    for bad in ("hel", "hello siis", "", "beat2"):
        assert _raises(P.encode, bad, 1) is not None
        assert _raises(P.decode_command, bad + " 1") is not None


def test_line_writer_gives_the_bytes_encode_gives():
    from vagal.protocol import LineWriter
    w = LineWriter()
    cases = [
        ("pacer", 0, [0, 5500, 0, "in", 0]),
        ("pacer", 65535, [123456, 4500, 65535, "out", 65535]),
        ("beat", 70000, [-5, 1073741823, -1073741823, 100]),
        ("hrv", 7, [999999999, 0, 1, 10, 100]),
        ("stats", 1, [1, 2, 3, 4, 5, 6, 7]),
        ("quality", 2, [3, "no_contact"]),
        ("mode", 3, [4, "practice", "button"]),
        ("session", 4, [0, "a b*c", "x\x03y"]),          # a token is sanitised as encode() does
        ("breath", 5, [1, 1, 250, 900, -45, 650, 5500]),
        ("coherence", 6, [7, -1, 0]),
    ]
    for kind, seq, vals in cases:
        n = w.line(kind, seq, vals + [99], len(vals))
        want = P.encode(kind, seq, *vals).encode()
        assert bytes(w.buf[:n]) == want, (kind, bytes(w.buf[:n]), want)


def test_line_writer_refuses_what_encode_refuses():
    from vagal.protocol import LineWriter
    w = LineWriter()
    for kind, vals in (("beat", [1, 2, 3]), ("nonsense", [1]), ("beat", [1, 2, 3, 1 << 30]),
                       ("beat", [1, 2, 3, "4"]), ("log", ["info", "text"]), ("session", [0, "x" * 250, "y"])):
        portable.assert_raises(P.ProtocolError, w.line, kind, 1, vals, len(vals))


def test_line_writer_allocates_nothing():
    from vagal.protocol import LineWriter
    w = LineWriter()
    vals = [0, 5500, 0, "in", 0]
    w.line("pacer", 1, vals, 5)            # the kind and token bytes are made once
    vals[3] = "out"
    w.line("pacer", 1, vals, 5)

    def many():
        for i in range(50):
            vals[0] = i * 1000
            vals[3] = "in" if i & 1 else "out"
            w.line("pacer", i, vals, 5)

    portable.no_alloc(many)
