"""Settings: defaults, validation on load, unknown keys kept, atomic save that survives a failed write.

Plain functions and bare asserts: these also run on the MicroPython unix and WebAssembly ports.
"""

import json
import os

from portable import tmp_dir as _dir
from vagal import settings as S


_N = [0]


def _path():
    """A fresh settings path (no file yet), unique within this run."""
    _N[0] += 1
    p = "%s/vagal_test_settings_%d_%d.json" % (_dir(), os.getpid() if hasattr(os, "getpid") else 0, _N[0])
    for suffix in ("", ".tmp", ".bad"):
        _rm(p + suffix)
    return p


def _rm(p):
    try:
        os.remove(p)
    except OSError:
        pass


def _exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False


def _write(p, text):
    with open(p, "w") as f:
        f.write(text)


def _read(p):
    with open(p) as f:
        return f.read()


def _cleanup(p):
    for suffix in ("", ".tmp", ".bad"):
        _rm(p + suffix)


def test_missing_file_gives_defaults_without_errors():
    p = _path()
    s = S.Settings(p)
    assert s.load() == []
    assert s.values == S.defaults()
    assert s.get("rate_mbpm") == 6000 and s.get("inhale_pct") == 40
    assert not _exists(p)  # loading never writes


def test_save_and_load_round_trip():
    p = _path()
    s = S.Settings(p)
    s.load()
    assert s.set("rate_mbpm", "5500") == 5500
    assert s.set("haptics", "off") is False
    assert s.set("resonance_date", "2024-05-01") == "2024-05-01"
    t = S.Settings(p)
    assert t.load() == []
    assert t.get("rate_mbpm") == 5500 and t.get("haptics") is False
    assert t.get("resonance_date") == "2024-05-01"
    assert not _exists(p + ".tmp")
    _cleanup(p)


def test_corrupt_json_gives_defaults_logs_and_keeps_the_bad_file():
    for text in ('{"rate_mbpm": 5000,', "\x00\xff garbage", "[1, 2]", "42", ""):
        p = _path()
        _write(p, text)
        logged = []
        s = S.Settings(p, lambda level, msg: logged.append((level, msg)))
        errors = s.load()
        assert len(errors) == 1, (text, errors)
        assert p in errors[0] and "defaults" in errors[0]
        assert logged[0][0] == "error" and logged[0][1] == errors[0]
        assert s.values == S.defaults()
        assert _read(p + ".bad") == text  # nothing lost
        _cleanup(p)


def test_bad_values_fall_back_per_key():
    p = _path()
    _write(p, json.dumps({"rate_mbpm": 99999, "inhale_pct": "40", "brightness": 30,
                          "haptics": 1, "haptic_pct": 70.0, "mode": "disco",
                          "resonance_date": "2024-13-01", "raw": True}))
    logged = []
    s = S.Settings(p, lambda level, msg: logged.append(level))
    errors = s.load()
    bad = ("rate_mbpm", "inhale_pct", "haptics", "haptic_pct", "mode", "resonance_date")
    assert len(errors) == len(bad), errors
    for key in bad:
        assert [e for e in errors if key + "=" in e], key
        assert s.get(key) == S.defaults()[key]
    assert "3000..12000" in [e for e in errors if "rate_mbpm" in e][0]
    assert s.get("brightness") == 30 and s.get("raw") is True  # the good keys are kept
    assert logged == ["error"] * len(bad)
    _cleanup(p)


def test_unknown_keys_are_kept_on_save():
    p = _path()
    _write(p, json.dumps({"future_key": [1, 2], "rate_mbpm": 4500}))
    logged = []
    s = S.Settings(p, lambda level, msg: logged.append((level, msg)))
    assert s.load() == []
    assert logged and logged[0][0] == "warn" and "future_key" in logged[0][1]
    s.set("brightness", "20")
    data = json.loads(_read(p))
    assert data["future_key"] == [1, 2] and data["rate_mbpm"] == 4500 and data["brightness"] == 20
    _cleanup(p)


def test_parse_rejects_bad_command_values_with_a_reason():
    cases = (("rate_mbpm", "abc", "3000..12000"), ("rate_mbpm", "2999", "3000..12000"),
             ("rate_mbpm", "6e3", "integer"), ("rate_mbpm", "", "integer"),
             ("haptics", "maybe", "true/false"), ("mode", "x", "practice"),
             ("nosuch", "1", "unknown setting"), ("resonance_date", "yesterday", "YYYY-MM-DD"),
             ("brightness", "0x10", "0..100"))
    for key, text, word in cases:
        try:
            S.parse(key, text)
            assert False, (key, text)
        except S.SettingsError as e:
            assert word in str(e), (key, text, str(e))
    assert S.parse("raw", "ON") is True and S.parse("brightness", "0") == 0
    assert S.parse("resonance_date", "-") == ""
    for key, kind, default, allowed in _specs(S):
        assert S.parse(key, S.format_value(default)) == default


class _FailingFile:
    """Writes part of the text, then fails like a full or vanishing flash."""

    def __init__(self, path):
        self.f = open(path, "w")

    def write(self, text):
        self.f.write(text[: len(text) // 2])
        raise OSError(28, "no space left")

    def flush(self):
        pass

    def close(self):
        self.f.close()


def test_failed_write_leaves_the_old_file_intact():
    p = _path()
    s = S.Settings(p)
    s.load()
    s.set("rate_mbpm", "5000")
    before = _read(p)
    s.values["rate_mbpm"] = 7000
    try:
        s.save(opener=lambda path, mode: _FailingFile(path))
        assert False, "save should fail"
    except OSError:
        pass
    assert _read(p) == before
    assert not _exists(p + ".tmp")
    t = S.Settings(p)
    assert t.load() == [] and t.get("rate_mbpm") == 5000
    _cleanup(p)


def test_set_that_cannot_be_saved_changes_nothing():
    p = _path()
    s = S.Settings(p)
    s.load()
    s.set("brightness", "25")
    orig = s.save
    s.save = lambda: orig(opener=lambda path, mode: _FailingFile(path))
    try:
        s.set("brightness", "90")
        assert False
    except OSError:
        pass
    assert s.get("brightness") == 25
    try:
        s.reset()
        assert False
    except OSError:
        pass
    assert s.get("brightness") == 25
    _cleanup(p)


def test_reset_restores_defaults_on_flash():
    p = _path()
    s = S.Settings(p)
    s.load()
    s.set("inhale_pct", "50")
    s.reset()
    t = S.Settings(p)
    t.load()
    assert t.values == S.defaults()
    _cleanup(p)


def test_mode_and_resonance_keys():
    d = S.defaults()
    assert d["mode"] == "practice" and d["tuning"] is True and d["winddown_min"] == 8
    assert d["winddown_start_mbpm"] == 10500 and d["winddown_haptic_only"] is False
    assert d["assess_step_s"] == 120
    for name in ("pace", "practice", "assess", "winddown"):
        assert S.parse("mode", name) == name
    for key, text, word in (("winddown_min", "0", "1..60"), ("winddown_min", "61", "1..60"),
                            ("assess_step_s", "29", "30..300"), ("assess_step_s", "301", "30..300"),
                            ("winddown_start_mbpm", "2999", "3000..12000"), ("tuning", "2", "true/false"),
                            ("mode", "pacer", "pace/practice/assess/winddown")):
        try:
            S.parse(key, text)
            assert False, (key, text)
        except S.SettingsError as e:
            assert word in str(e) and key in str(e), (key, text, str(e))
    assert S.parse("winddown_min", "20") == 20 and S.parse("assess_step_s", "300") == 300


def test_calendar_dates():
    for day in ("2024-02-29", "2000-02-29", "2026-12-31", "2026-04-30", "2099-01-01"):
        assert S.valid_date(day), day
    for day in ("2026-02-29", "2026-04-31", "2026-00-10", "2026-13-01", "2026-01-00", "1999-12-31",
                "2026-1-01", "2026/01/01", "26-01-01", "", "2026-01-01x", 20260101, None):
        assert not S.valid_date(day), day


def test_older_mode_names_are_read_as_their_successors():
    for old, new in (("pacer", "pace"), ("resonance", "practice")):
        p = _path()
        _write(p, json.dumps({"mode": old, "rate_mbpm": 5000}))
        logged = []
        s = S.Settings(p, lambda level, msg: logged.append((level, msg)))
        assert s.load() == []
        assert s.get("mode") == new and s.get("rate_mbpm") == 5000
        assert logged and logged[0][0] == "warn" and old in logged[0][1]
        _cleanup(p)


def test_update_saves_several_keys_at_once_or_none():
    p = _path()
    s = S.Settings(p)
    s.load()
    s.update((("resonance_mbpm", 5350), ("resonance_date", "2026-11-26")))
    t = S.Settings(p)
    assert t.load() == [] and t.get("resonance_mbpm") == 5350
    assert t.get("resonance_date") == "2026-11-26"
    before = _read(p)
    try:
        s.update((("resonance_mbpm", 5000), ("resonance_date", "2026-02-30")))
        assert False, "a bad date must be refused"
    except S.SettingsError as e:
        assert "resonance_date" in str(e)
    assert s.get("resonance_mbpm") == 5350 and _read(p) == before
    orig = s.save
    s.save = lambda: orig(opener=lambda path, mode: _FailingFile(path))
    try:
        s.update((("resonance_mbpm", 6000), ("resonance_date", "2026-11-27")))
        assert False
    except OSError:
        pass
    assert s.get("resonance_mbpm") == 5350 and s.get("resonance_date") == "2026-11-26"
    assert _read(p) == before and not _exists(p + ".tmp")
    _cleanup(p)


def _specs(S):
    """((key, type, default, allowed), ...) from settings.SPECS (five items a setting)."""
    assert len(S.SPECS) % 5 == 0 and len(S.SPECS) // 5 == len(S.KEYS)
    out = []
    for i in range(0, len(S.SPECS), 5):
        key, kind, default, a, b = S.SPECS[i:i + 5]
        out.append((key, kind, default, (a, b) if kind == S.INT else a))
    return out
