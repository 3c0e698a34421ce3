"""Settings in a JSON file on flash: validated on load, written atomically.

A bad file never stops the device: each missing or bad key falls back to its default and the problem
is reported through `errors` (and the log callback). A file that is not JSON at all is kept as
<path>.bad so nothing is lost. save() writes <path>.tmp, flushes and syncs it, then renames it over
the old file, so a power cut mid-write leaves either the old or the new settings, never half of one.
Keys this firmware does not know are kept as they are (a newer firmware may have written them).
"""

import json
import os

from vagal import pacer

BOOL = "bool"
INT = "int"
STR = "str"

# The session modes, in the order a long press of the button steps through them.
MODES = ("pace", "practice", "assess", "winddown")
# Values older firmware wrote for "mode", read as their successors (so an upgrade keeps the choice).
LEGACY_MODES = (("pacer", "pace"), ("resonance", "practice"))

# One flat tuple, five items a setting: key, type, default, then for INT the range lo, hi; for STR
# the allowed choices (a tuple, or "date" = YYYY-MM-DD or empty) and None; for BOOL None, None.
# Flat because a tuple per setting costs the device ~4x the heap.
SPECS = (
    "rate_mbpm", INT, pacer.RATE_DEFAULT, pacer.RATE_MIN, pacer.RATE_MAX,
    "inhale_pct", INT, pacer.INHALE_DEFAULT, pacer.INHALE_MIN, pacer.INHALE_MAX,
    "brightness", INT, 60, 0, 100,
    "haptics", BOOL, True, None, None,
    "haptic_pct", INT, 40, 0, 100,
    "raw", BOOL, False, None, None,
    "autostart", BOOL, True, None, None,
    "mode", STR, "practice", MODES, None,  # the mode a session starts in
    "resonance_mbpm", INT, 0, 0, pacer.RATE_MAX,  # 0 = not measured yet
    "resonance_date", STR, "", "date", None,
    # HR phase (deg) the assessment measured at the person's own swing peak: the tuner's reference;
    # -999 = not measured (the tuner then follows the swing alone)
    "resonance_phase_deg", INT, -999, -999, 180,
    "tuning", BOOL, True, None, None,  # closed-loop tuning in practice mode
    "winddown_min", INT, 8, 1, 60,  # presets 8 and 20
    "winddown_start_mbpm", INT, 10500, pacer.RATE_MIN, pacer.RATE_MAX,
    "winddown_haptic_only", BOOL, False, None, None,
    "assess_step_s", INT, 120, 30, 300,
    "session_min", INT, 0, 0, 120,  # pace/practice end by themselves after this (0: when stopped)
)
_STRIDE = 5

KEYS = tuple(SPECS[i] for i in range(0, len(SPECS), _STRIDE))


class SettingsError(ValueError):
    """A rejected setting; str(e) names the key and the problem."""


def _spec(key):
    """Index of key's entry in SPECS, or -1."""
    for i in range(0, len(SPECS), _STRIDE):
        if SPECS[i] == key:
            return i
    return -1


def _describe(i):
    kind = SPECS[i + 1]
    if kind == INT:
        return "an integer %d..%d" % (SPECS[i + 3], SPECS[i + 4])
    if kind == BOOL:
        return "true/false (1/0, on/off)"
    if SPECS[i + 3] == "date":
        return "a date YYYY-MM-DD or empty"
    return "one of " + "/".join(SPECS[i + 3])


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def valid_date(s):
    """True for a real calendar date YYYY-MM-DD (year 2000..2099: the device's lifetime)."""
    if type(s) is not str or len(s) != 10 or s[4] != "-" or s[7] != "-":
        return False
    for i in (0, 1, 2, 3, 5, 6, 8, 9):
        if not "0" <= s[i] <= "9":
            return False
    year = int(s[:4])
    month = int(s[5:7])
    day = int(s[8:10])
    if not 2000 <= year <= 2099 or not 1 <= month <= 12 or day < 1 or day > _MONTH_DAYS[month - 1]:
        return False
    return month != 2 or day < 29 or year % 4 == 0


def check(key, value):
    """value if it is valid for key, else SettingsError naming the problem."""
    spec = _spec(key)
    if spec < 0:
        raise SettingsError("unknown setting %r (known: %s)" % (key, ", ".join(KEYS)))
    kind = SPECS[spec + 1]
    allowed = SPECS[spec + 3]
    ok = False
    if kind == INT:
        ok = type(value) is int and allowed <= value <= SPECS[spec + 4]
    elif kind == BOOL:
        ok = type(value) is bool
    elif type(value) is str:
        if allowed == "date":
            ok = value == "" or valid_date(value)
        else:
            ok = value in allowed
    if not ok:
        raise SettingsError("%s=%s: must be %s" % (key, _short(value), _describe(spec)))
    return value


def _short(value):
    s = repr(value) if type(value) is str else str(value)
    return s if len(s) <= 24 else s[:21] + "..."


def parse(key, text):
    """A setting from command text ("6000", "on", "2024-05-01"), validated; SettingsError if bad."""
    spec = _spec(key)
    if spec < 0:
        raise SettingsError("unknown setting %r (known: %s)" % (key, ", ".join(KEYS)))
    kind = SPECS[spec + 1]
    if kind == INT:
        digits = text[1:] if text[:1] == "-" else text
        if not digits or len(digits) > 9 or not all("0" <= c <= "9" for c in digits):
            raise SettingsError("%s=%s: must be %s" % (key, _short(text), _describe(spec)))
        value = int(text)
    elif kind == BOOL:
        t = text.lower()
        if t in ("1", "true", "on", "yes"):
            value = True
        elif t in ("0", "false", "off", "no"):
            value = False
        else:
            raise SettingsError("%s=%s: must be %s" % (key, _short(text), _describe(spec)))
    else:
        value = "" if text == "-" else text
    return check(key, value)


def format_value(value):
    """The wire text of a value (the inverse of parse)."""
    if value is True:
        return "1"
    if value is False:
        return "0"
    return str(value) if value != "" else "-"


def defaults():
    d = {}
    for i in range(0, len(SPECS), _STRIDE):
        d[SPECS[i]] = SPECS[i + 2]
    return d


class Settings:
    """The device settings; values is a dict key -> value, always valid after load()."""

    def __init__(self, path, log=None):
        self.path = path
        self.log = log  # callable(level, text) or None
        self.values = defaults()
        self.extra = {}  # unknown keys found in the file, kept and written back
        self.errors = []

    def _error(self, text):
        self.errors.append(text)
        if self.log is not None:
            self.log("error", text)

    def load(self):
        """Read the file; returns the list of problems found (each also logged). Never raises."""
        self.values = defaults()
        self.extra = {}
        self.errors = []
        try:
            f = open(self.path)
        except OSError:
            return self.errors  # no file yet: defaults
        try:
            try:
                text = f.read()
            finally:
                f.close()
            data = json.loads(text)
        except Exception as e:  # ValueError from JSON, OSError/UnicodeError from reading
            self._error("settings: %s is not valid JSON (%s); using defaults, bad file kept as %s.bad"
                        % (self.path, e, self.path))
            self._keep_bad()
            return self.errors
        if type(data) is not dict:
            self._error("settings: %s holds %s, not an object; using defaults, bad file kept as %s.bad"
                        % (self.path, type(data).__name__, self.path))
            self._keep_bad()
            return self.errors
        for key in data:
            value = data[key]
            if _spec(key) < 0:
                self.extra[key] = value
                if self.log is not None:
                    self.log("warn", "settings: unknown key %r kept as is" % (key,))
                continue
            if key == "mode":
                for old, new in LEGACY_MODES:
                    if value == old:
                        if self.log is not None:
                            self.log("warn", "settings: mode %r is now called %r" % (old, new))
                        value = new
            try:
                self.values[key] = check(key, value)
            except SettingsError as e:
                self._error("settings: %s; using default %s" % (e, format_value(SPECS[_spec(key) + 2])))
        return self.errors

    def _keep_bad(self):
        try:
            os.rename(self.path, self.path + ".bad")
        except OSError as e:
            if self.log is not None:
                self.log("error", "settings: could not keep bad file: %s" % (e,))

    def get(self, key):
        return self.values[key]

    def set(self, key, text, save=True):
        """Set key from command text and save (unless save is False: the caller writes later, see
        app.App.save_settings); SettingsError (nothing changed) if bad, OSError if the write fails
        (in-memory value restored, the file keeps the old settings)."""
        value = parse(key, text)
        old = dict(self.values)
        self.values[key] = value
        self._commit(old, save)
        return value

    def update(self, pairs, save=True):
        """Set several (key, value) pairs, each checked, and save once (unless save is False);
        SettingsError (nothing changed) if any is bad, OSError if the write fails (old values
        restored)."""
        for key, value in pairs:
            check(key, value)
        old = dict(self.values)
        for key, value in pairs:
            self.values[key] = value
        self._commit(old, save)

    def reset(self, save=True):
        """Back to defaults (unknown keys kept) and save (unless save is False)."""
        old = self.values
        self.values = defaults()
        self._commit(old, save)

    def _commit(self, old, save):
        """Save if asked; if the write fails, the values `old` are back in force and it raises."""
        if save:
            try:
                self.save()
            except Exception:
                self.values = old
                raise

    def to_json(self):
        d = {}
        for key in self.extra:
            d[key] = self.extra[key]
        for key in self.values:
            d[key] = self.values[key]
        return json.dumps(d)

    def save(self, opener=open):
        """Write atomically: temp file, flush, sync, rename over the old file. opener is for tests."""
        text = self.to_json()
        tmp = self.path + ".tmp"
        try:
            f = opener(tmp, "w")
            try:
                f.write(text)
                f.write("\n")
                if hasattr(f, "flush"):
                    f.flush()
                synced = False
                if hasattr(os, "fsync") and hasattr(f, "fileno"):
                    os.fsync(f.fileno())  # CPython: this file only
                    synced = True
            finally:
                f.close()
            if not synced and hasattr(os, "sync"):
                os.sync()  # MicroPython on flash
            os.rename(tmp, self.path)
        except Exception:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise
