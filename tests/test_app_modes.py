"""The app's modes (pace, practice, assess, winddown), driven step by step on a fake clock.

A simulated person (host/virtual_board/person.py) breathes with the pacer and gives a realistic PPG,
so breaths, assessment steps and results come from the real core code, not from stubs.
"""

import json
import os
import sys

from test_app import FakeBoard, replies, run_for
from vagal import app as app_mod
from vagal import pacer as pacer_mod
from vagal import protocol as P
from vagal import settings as S

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "host", "virtual_board"))
from person import Person  # noqa: E402


class PersonBoard(FakeBoard):
    """FakeBoard whose PPG is a simulated person who sees the pacer's phase while a session runs."""

    def __init__(self, settings_path, person, **kw):
        super().__init__(settings_path, **kw)
        self.person = person
        self.app = None

    def ppg(self, t_s):
        if not self.contact:
            self.person.sample(t_s, None)  # time goes on for the person
            return 0
        a = self.app
        phase = a.pacer.phase / pacer_mod.PHASE_ONE if a is not None and a.running else None
        return int(self.person.sample(t_s, phase) * 65535)


def write_settings(tmp_path, **values):
    (tmp_path / "settings.json").write_text(json.dumps(values))


def boot(tmp_path, board=None, **kw):
    board = board or FakeBoard(str(tmp_path / "settings.json"), **kw)
    app = app_mod.App(board)
    board.app = app
    app.begin()
    return app, board


def person_board(tmp_path, resonance_hz=0.09, seed=3):
    person = Person(seed=seed, hr_bpm=66.0, resonance_hz=resonance_hz, rsa_bpm=16.0, adherence=1.0,
                    noise=0.005, artefact_rate=0.0, ectopic_rate=0.0)
    return PersonBoard(str(tmp_path / "settings.json"), person)


def of(board, kind):
    return [m for m in board.messages() if m.kind == kind]


def max_step(levels):
    return max(abs(b - a) for a, b in zip(levels, levels[1:]))


def test_mode_switch_mid_breath_never_jumps_the_led(tmp_path):
    # the steepest the light moves on its own: a steady breath at the fastest rate used below
    write_settings(tmp_path, mode="pace", rate_mbpm=10500)
    ref_app, ref_board = boot(tmp_path)
    run_for(ref_app, ref_board, 12)
    steady = max_step(ref_board.led)
    os.remove(tmp_path / "settings.json")

    app, board = boot(tmp_path)
    run_for(app, board, 10)  # pulse found, its blink over
    assert app.mode == "practice" and app._ind_n == 0
    while not app.pacer.inhaling or app.pacer.phase < pacer_mod.PHASE_ONE // 5:
        run_for(app, board, 0.02)  # mid-inhale: the light is rising
    mark = len(board.led)
    for rid, name in ((1, "winddown"), (2, "pace"), (3, "assess"), (4, "practice")):
        board.send(P.encode_command("mode", rid, name))
        run_for(app, board, 3.1)
        assert replies(board, rid)[0]["text"] == "mode " + name
        assert app.mode == name
    levels = board.led[mark:]
    assert max(levels) > 5000  # the light was on throughout, not a trivially flat line
    assert max_step(levels) <= steady * 1.05, (max_step(levels), steady)
    modes = [(m["mode"], m["source"]) for m in of(board, "mode")]
    assert modes[1:] == [("winddown", "host"), ("pace", "host"), ("assess", "host"),
                         ("practice", "host")]
    aborted = [m for m in of(board, "assess_result")]
    assert len(aborted) == 1 and aborted[0]["state"] == "aborted"
    assert app.settings.get("resonance_mbpm") == 0  # an aborted assessment stores nothing
    assert app.settings.get("mode") == "practice"  # switching saves the start-up mode (not assess)


def test_brightness_glides_across_the_ticks_wrap(tmp_path):
    from vagal.ticks import TICKS_MAX

    app, board = boot(tmp_path, start_us=(TICKS_MAX - 6000) * 1000)  # ticks_ms wraps in 6 s
    run_for(app, board, 3)
    board.send("set 1 brightness=20\n")
    seen = []
    for _ in range(60):
        run_for(app, board, 0.1)
        seen.append(app.pacer.brightness)
    assert board.ticks_ms() < 10000  # wrapped on the way
    assert seen[-1] == 20 and seen == sorted(seen, reverse=True)
    assert 38 <= seen.index(20) <= 42  # 40 steps of 1 %, one every 100 ms


def test_assessment_done_stores_the_rate_and_date_then_practice(tmp_path):
    write_settings(tmp_path, assess_step_s=30, autostart=False)
    board = person_board(tmp_path, resonance_hz=0.09)  # 5.4 breaths/min
    app, board = boot(tmp_path, board)
    board.send(P.encode_command("date", 1, "2026-11-26"))
    board.send(P.encode_command("mode", 2, "assess"))  # idle: starts a session in that mode
    run_for(app, board, 0.1)
    assert replies(board, 1)[0]["text"] == "date 2026-11-26"
    assert replies(board, 2)[0]["text"] == "mode assess" and app.running
    t = 0
    while not of(board, "assess_result") and t < 600:
        run_for(app, board, 10, step_us=20000)
        t += 10
    result = of(board, "assess_result")
    assert len(result) == 1 and result[0]["state"] == "done", result
    steps = of(board, "assess_step")
    rates = [s["rate_mbpm"] for s in steps]
    assert rates[:5] == [6500, 6000, 5500, 5000, 4500] and len(rates) <= 7, rates  # up to 2 extra
    assert sum(s["breaths"] >= 3 for s in steps) >= 3  # 30 s steps: 2-6 valid breaths each
    rate = result[0]["rate_mbpm"]
    assert min(rates) <= rate <= max(rates) and result[0]["date"] == "2026-11-26"
    # the tallest bar, by the level the rule uses
    tallest = max((s for s in steps if s["breaths"] >= 3), key=lambda s: s["level_x10"])
    assert result[0]["chosen_mbpm"] == tallest["rate_mbpm"]
    assert result[0]["rule"] in ("curve", "slowest", "fastest", "flat") and result[0]["spread_mbpm"] >= 0
    stored = json.loads((tmp_path / "settings.json").read_text())
    assert stored["resonance_mbpm"] == rate and stored["resonance_date"] == "2026-11-26"
    assert stored["resonance_phase_deg"] == result[0]["phase_deg"]
    assert app.mode == "practice" and of(board, "mode")[-1]["source"] == "auto"
    assert type(app.ctrl).__name__ == "Tuner" and app.ctrl.start_mbpm == rate
    assert app.ctrl.phase_ref == result[0]["phase_deg"]  # the tuner steers to the person's own phase
    buzz_from = len(board.motor)
    run_for(app, board, 2)
    assert max(board.motor[buzz_from:]) > 0  # the "done" buzz
    breaths = of(board, "breath")
    assert len(breaths) > 15 and sum(b["valid"] for b in breaths) > 10
    ends = [b["t_ms"] for b in breaths]
    assert ends == sorted(ends)
    assert app.settings.get("mode") == "practice"  # assess ran once, the start-up mode is unchanged
    tuner = app.ctrl
    board.send(P.encode_command("mode", 3, "practice"))  # the mode it is in: nothing restarts
    run_for(app, board, 0.1)
    assert replies(board, 3)[0]["text"] == "mode practice" and app.ctrl is tuner


def test_signal_lost_mid_assessment_extends_the_step_and_still_ends_cleanly(tmp_path):
    write_settings(tmp_path, assess_step_s=80, autostart=False)
    board = person_board(tmp_path, resonance_hz=0.1, seed=7)
    app, board = boot(tmp_path, board)
    board.send(P.encode_command("mode", 1, "assess"))
    run_for(app, board, 0.1)
    while app.ctrl.step == 0:
        run_for(app, board, 1, step_us=20000)
    run_for(app, board, 10, step_us=20000)  # into the second step (6.0/min)
    gap_from = app.t_ms
    board.contact = False
    run_for(app, board, 25, step_us=20000)  # the finger is off for 25 s
    board.contact = True
    gap_to = app.t_ms
    assert app.ctrl.step == 1
    lost = [m for m in of(board, "quality") if m["state"] != "ok"]
    assert lost  # the detector noticed
    t = 0
    while not of(board, "assess_result") and t < 900:
        run_for(app, board, 10, step_us=20000)
        t += 10
    result = of(board, "assess_result")
    assert len(result) == 1 and result[0]["state"] in ("done", "failed")
    steps = of(board, "assess_step")
    assert [s["rate_mbpm"] for s in steps][:5] == [6500, 6000, 5500, 5000, 4500]
    ends = [0] + [s["t_ms"] for s in steps]
    lengths = [b - a for a, b in zip(ends, ends[1:])]
    assert lengths[0] < 85000, lengths  # a clean step ends on time
    assert lengths[1] > 90000, lengths  # the step with the drop-out ran on to gather valid breaths
    assert all(n <= 2 * 80000 + 1000 for n in lengths), lengths  # but never past twice its length
    breaths_in_gap = [b for b in of(board, "breath") if gap_from + 8000 <= b["t_ms"] <= gap_to]
    assert breaths_in_gap and not any(b["valid"] for b in breaths_in_gap)
    if result[0]["state"] == "failed":
        assert app.settings.get("resonance_mbpm") == 0
    else:
        assert app.settings.get("resonance_mbpm") == result[0]["rate_mbpm"]
    assert app.running and app.mode == "practice" and app.failure is None
    board.send("ping 9\n")
    run_for(app, board, 0.1)
    assert replies(board, 9)[0]["text"] == "pong"


def test_assessment_without_a_pulse_fails_stores_nothing_and_says_so(tmp_path):
    write_settings(tmp_path, assess_step_s=30, resonance_mbpm=5200, resonance_date="2026-11-01")
    app, board = boot(tmp_path)
    board.contact = False
    board.send(P.encode_command("mode", 1, "assess"))
    t = 0
    while not of(board, "assess_result") and t < 400:
        buzz_from = len(board.motor)
        run_for(app, board, 1, step_us=20000)
        t += 1
    result = of(board, "assess_result")
    assert len(result) == 1 and result[0]["state"] == "failed"
    assert result[0]["rate_mbpm"] == 0 and result[0]["date"] == "-"
    assert [s["breaths"] for s in of(board, "assess_step")] == [0] * 5
    assert all(b["valid"] == 0 for b in of(board, "breath"))
    assert app.settings.get("resonance_mbpm") == 5200  # the old result stays
    assert app.settings.get("resonance_date") == "2026-11-01"
    assert app.mode == "practice" and app.pacer.target_mbpm == 5200 and app.running
    run_for(app, board, 2, step_us=20000)
    runs = []  # lengths of the motor's on-runs, in 20 ms updates
    n = 0
    for level in board.motor[buzz_from:]:
        if level:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    assert len([r for r in runs if r >= 6]) == 3, runs  # three 150 ms buzzes; breath cues <= 90 ms


def test_reboot_mid_session_keeps_settings_and_starts_in_the_stored_mode(tmp_path):
    write_settings(tmp_path, resonance_mbpm=5200, resonance_date="2026-11-20", brightness=40)
    app, board = boot(tmp_path)
    board.send(P.encode_command("mode", 1, "winddown"))
    board.send(P.encode_command("set", 2, "winddown_min=20"))
    run_for(app, board, 5)
    before = json.loads((tmp_path / "settings.json").read_text())
    assert before["mode"] == "winddown" and before["winddown_min"] == 20
    # power cut: a new App on the same settings file
    app2, board2 = boot(tmp_path)
    assert app2.settings.values == app.settings.values
    assert app2.settings.get("resonance_mbpm") == 5200
    assert app2.running and app2.mode == "winddown"
    assert [(m["mode"], m["source"]) for m in of(board2, "mode")] == [("winddown", "boot")]
    assert app2.ctrl.end_mbpm == 5200 and app2.ctrl.duration_ms == 20 * 60000
    assert not [m for m in board2.messages() if m.kind == "log" and m["level"] == "error"]
    assert not (tmp_path / "settings.json.tmp").exists()


def test_reboot_mid_assessment_stores_nothing_and_starts_in_the_saved_mode(tmp_path):
    write_settings(tmp_path, mode="pace", rate_mbpm=5000, assess_step_s=30)
    app, board = boot(tmp_path)
    board.send(P.encode_command("date", 1, "2026-11-26"))
    board.send(P.encode_command("mode", 2, "assess"))
    run_for(app, board, 40, step_us=20000)
    assert app.mode == "assess" and app.ctrl.state == app_mod.ASSESS_RUNNING
    text = (tmp_path / "settings.json").read_text()
    app2, board2 = boot(tmp_path)  # power cut mid-assessment
    assert (tmp_path / "settings.json").read_text() == text
    assert app2.mode == "pace" and app2.running and app2.pacer.rate_mbpm == 5000
    assert app2.settings.get("resonance_mbpm") == 0 and app2.settings.get("resonance_date") == ""
    assert app2.date == ""  # the date is not kept over a reset: the host tells it again


def test_winddown_20_minutes_fades_to_darkness_and_stops_by_itself(tmp_path):
    write_settings(tmp_path, mode="winddown", winddown_min=20, resonance_mbpm=5500)
    app, board = boot(tmp_path)
    board.contact = False  # no finger: a plain timed ramp
    w = app.ctrl
    pacer_lines = []
    minutes = 0
    while app.running and minutes < 25:
        run_for(app, board, 60, step_us=20000)
        pacer_lines += of(board, "pacer")[len(pacer_lines):]
        minutes += 1
    assert not app.running and minutes == 20
    stop = of(board, "session")[-1]
    assert stop["state"] == "stop" and stop["source"] == "auto"
    assert 1200000 <= stop["t_ms"] <= 1201000
    summary = of(board, "summary")[-1]
    assert summary["mode"] == "winddown" and summary["rate_mbpm"] == 5500
    assert w.done and w.brightness_pct == 0 and board.motor[-1] == 0
    assert max(board.led[-500:]) == 0  # dark for the last 10 s
    # the rate followed the programmed curve within 0.1 breaths/min (after the first glide)
    worst = max(abs(m["rate_mbpm"] - w.curve_mbpm(m["t_ms"])) for m in pacer_lines if m["t_ms"] > 2000)
    assert worst <= 100, worst
    # the light only fades: the top of each breath never rises by more than a brightness step
    tops = [max(board.led[i:i + 3000]) for i in range(0, len(board.led) - 3000, 3000)]
    assert tops[0] > 5000 and tops[-1] < 600  # the last minute: a glimmer, then dark
    assert all(b <= a + 300 for a, b in zip(tops, tops[1:])), tops
    assert not [m for m in board.messages() if m.kind == "log" and m["level"] == "error"]
    n = len(board.led)
    run_for(app, board, 5)
    assert len(board.led) == n  # quiet: nothing drives the LED any more


def test_timed_practice_ends_by_itself_at_the_end_of_a_breath(tmp_path):
    write_settings(tmp_path, mode="practice", session_min=2, resonance_mbpm=6000, tuning=False)
    app, board = boot(tmp_path, person_board(tmp_path))
    run_for(app, board, 119, step_us=20000)
    assert app.running  # not before its time
    run_for(app, board, 12, step_us=20000)  # a 10 s breath at most to finish
    assert not app.running
    stop = of(board, "session")[-1]
    assert stop["state"] == "stop" and stop["source"] == "auto"
    assert 120000 <= stop["t_ms"] <= 130000
    # the breath was whole: the stop came where the pacer turned from exhale to inhale
    assert stop["t_ms"] % 10000 < 200 or stop["t_ms"] % 10000 > 9800, stop["t_ms"]
    summary = of(board, "summary")[-1]
    assert summary["mode"] == "practice" and summary["rate_mbpm"] == 6000 and summary["breaths"] >= 8
    assert board.led[-1] == 0 and board.motor[-1] == 0
    n = len(board.led)
    run_for(app, board, 30)
    assert not app.running and len(board.led) == n  # it stays stopped


def test_untimed_and_assessment_sessions_ignore_session_min(tmp_path):
    write_settings(tmp_path, mode="pace", rate_mbpm=6000)
    app, board = boot(tmp_path)
    run_for(app, board, 200, step_us=20000)
    assert app.running  # session_min 0: runs until stopped
    write_settings(tmp_path, mode="assess", session_min=1, assess_step_s=30)
    app, board = boot(tmp_path, person_board(tmp_path))
    run_for(app, board, 90, step_us=20000)
    assert app.running and app.mode == "assess"  # the assessment has its own length


def test_winddown_haptic_only_keeps_the_light_off(tmp_path):
    write_settings(tmp_path, mode="winddown", winddown_min=1, winddown_haptic_only=True,
                   haptics=False)
    app, board = boot(tmp_path)
    run_for(app, board, 59, step_us=20000)
    assert app.running and app.ctrl.holding  # a pulse that does not follow the pacer holds the ramp
    run_for(app, board, 40, step_us=20000)  # at most 50 % longer
    assert max(board.led) == 0  # not even a blink at the bedside
    assert max(board.motor) > 0  # haptic-only turns the cues on
    assert not app.running and of(board, "session")[-1]["source"] == "auto"


def test_bad_mode_and_date_arguments_are_named_and_the_app_runs_on(tmp_path):
    app, board = boot(tmp_path)
    board.send("mode 1 disco\n")
    board.send("mode 2\n")
    board.send("date 3 2026-02-30\n")
    board.send("date 4 yesterday\n")
    board.send("date 5 2026-13-01\n")
    board.send("set 6 mode=resonance\n")
    board.send("set 7 winddown_min=61\n")
    board.send("set 8 assess_step_s=29\n")
    board.send("status 9\n")
    run_for(app, board, 0.5)
    assert "'disco'" in replies(board, 1)[0]["reason"]
    assert "pace, practice, assess, winddown" in replies(board, 1)[0]["reason"]
    assert "missing field name" in replies(board, 2)[0]["reason"]
    for rid, bad in ((3, "2026-02-30"), (4, "yesterday"), (5, "2026-13-01")):
        r = replies(board, rid)[0]
        assert r.kind == "err" and bad in r["reason"] and "YYYY-MM-DD" in r["reason"]
    assert "pace/practice/assess/winddown" in replies(board, 6)[0]["reason"]
    assert "1..60" in replies(board, 7)[0]["reason"]
    assert "30..300" in replies(board, 8)[0]["reason"]
    assert app.mode == "practice" and app.date == "" and app.running and app.failure is None
    assert app.settings.values == S.defaults()
    status = of(board, "status")
    assert len(status) == 1 and status[0]["mode"] == "practice" and status[0]["running"] == 1


def test_status_reports_the_session(tmp_path):
    app, board = boot(tmp_path, hr_bpm=72.0)
    run_for(app, board, 20)
    board.send("status 1\n")
    board.send("stop 2\n")
    board.send("status 3\n")
    run_for(app, board, 0.1)
    first, second = of(board, "status")
    assert first["running"] == 1 and first["mode"] == "practice" and first["quality"] == "ok"
    assert abs(first["hr_x10"] - 720) <= 10 and first["rate_mbpm"] == 6000
    assert 19900 <= first["t_ms"] <= 20200 and first["lost"] == 0
    assert second["running"] == 0
    assert replies(board, 3)[0]["text"] == "status"
    summary = of(board, "summary")
    assert len(summary) == 1 and abs(summary[0]["hr_x10"] - 720) <= 10
    assert summary[0]["mode"] == "practice" and summary[0]["t_ms"] >= 20000


def test_long_press_steps_through_the_modes_with_a_light_pattern(tmp_path):
    write_settings(tmp_path, autostart=False)
    app, board = boot(tmp_path)
    seen = []
    for expect in ("assess", "winddown", "pace", "practice"):
        board.events.append(2)
        mark = len(board.led)
        mmark = len(board.motor)
        run_for(app, board, 4)
        seen.append(app.mode)
        led = board.led[mark:]
        blinks = sum(1 for a, b in zip(led, led[1:]) if a == 0 and b > 0)
        buzzes = sum(1 for a, b in zip(board.motor[mmark:], board.motor[mmark + 1:]) if a == 0 and b > 0)
        n = app_mod.settings_mod.MODES.index(expect) + 1
        assert buzzes == n, (expect, buzzes)
        if expect == "winddown":
            assert max(led) == 0  # the bedside mode is announced by the motor only
        else:
            assert blinks == n and max(led) <= pacer_mod.gamma(65535 * app_mod.IND_PCT // 100)
        assert led[-1] == 0 and not app.running
    assert seen == ["assess", "winddown", "pace", "practice"]
    assert app.settings.get("mode") == "practice"


def test_the_app_s_copies_of_the_assessment_states_match():
    from vagal.assessment import Assessment

    assert (app_mod.ASSESS_RUNNING, app_mod.ASSESS_DONE) == (Assessment.RUNNING, Assessment.DONE)


def test_pulse_signs_only_for_a_real_loss_and_its_return(tmp_path):
    app, board = boot(tmp_path)
    shown = []
    real = app.indicate

    def spy(pattern, pulses=0):
        shown.append(pattern)
        real(pattern, pulses)

    app.indicate = spy
    run_for(app, board, 10)
    assert shown == [app_mod.IND_PULSE_OK]  # the first pulse of the session
    board.contact = False
    run_for(app, board, 1)
    board.contact = True
    run_for(app, board, 10)
    assert [m["state"] for m in of(board, "quality")].count("ok") >= 2  # it did drop out
    assert shown == [app_mod.IND_PULSE_OK]  # a short drop-out says nothing
    board.contact = False
    run_for(app, board, 8)
    assert shown == [app_mod.IND_PULSE_OK, app_mod.IND_PULSE_LOST]  # said once
    led = board.led[-300:]
    assert max(led) > 0 and app.running  # the pacer carries on without a pulse
    board.contact = True
    run_for(app, board, 10)
    assert shown == [app_mod.IND_PULSE_OK, app_mod.IND_PULSE_LOST, app_mod.IND_PULSE_OK]


def test_tuning_can_be_switched_off_and_on_mid_practice(tmp_path):
    app, board = boot(tmp_path)
    run_for(app, board, 1)
    tuner = app.ctrl
    assert type(tuner).__name__ == "Tuner" and tuner.enabled
    board.send("set 1 tuning=off\n")
    run_for(app, board, 0.1)
    assert app.ctrl is tuner and not tuner.enabled and app.pacer.target_mbpm == tuner.center_mbpm
    board.send("set 2 tuning=on\n")
    run_for(app, board, 0.1)
    assert tuner.enabled
    board.send("set 3 resonance_mbpm=5200\n")  # a new practice rate: tuning starts again there
    run_for(app, board, 0.1)
    assert app.ctrl is not tuner and app.ctrl.start_mbpm == 5200 and app.pacer.target_mbpm == 5200
    assert [r["text"] for r in (replies(board, 1) + replies(board, 2) + replies(board, 3))] == [
        "set tuning=0", "set tuning=1", "set resonance_mbpm=5200"]


def test_defaults_mid_practice_move_the_running_pacer_to_the_default_rate(tmp_path):
    write_settings(tmp_path, mode="practice", rate_mbpm=5000, tuning=False)
    app, board = boot(tmp_path)
    run_for(app, board, 3)
    assert app.pacer.target_mbpm == 5000
    board.send("defaults 1\n")
    run_for(app, board, 0.1)
    assert replies(board, 1)[0]["text"] == "defaults restored"
    # the defaults: tuning on, practice at rate_mbpm 6000 (no resonance stored): a new tuner there
    assert app.running and app.pacer.target_mbpm == 6000
    assert type(app.ctrl).__name__ == "Tuner" and app.ctrl.start_mbpm == 6000
    run_for(app, board, 5)
    assert app.pacer.rate_mbpm == 6000  # glided there, not jumped (the glide is tested above)


def test_any_mode_date_status_or_set_line_gets_exactly_one_answer(tmp_path):
    from hypothesis import given, settings as hsettings, strategies as st

    app, board = boot(tmp_path)
    run_for(app, board, 1)
    words = st.sampled_from(["mode", "date", "status", "set", "start", "stop"])
    args = st.one_of(st.sampled_from(list(S.MODES) + ["", "2026-02-28", "2024-02-29", "mode=pace",
                                                        "mode=assess", "winddown_min=20",
                                                        "tuning=0", "assess_step_s=30"]),
                     st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=12))
    state = {"rid": 100}

    @hsettings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(words, args), min_size=1, max_size=4))
    def check(cmds):
        ids = []
        for word, arg in cmds:
            state["rid"] += 1
            ids.append(state["rid"])
            board.send(("%s %d %s" % (word, state["rid"], arg)).rstrip() + "\n")
        run_for(app, board, 0.3)
        for rid in ids:
            assert len(replies(board, rid)) == 1, rid
        assert app.failure is None and app.mode in S.MODES
        assert not [m for m in board.messages()[-60:] if m.kind == "err" and "internal" in m["reason"]]

    check()
    again = S.Settings(str(tmp_path / "settings.json"))
    assert again.load() == []  # whatever was set, the file on flash is valid


def test_a_controller_that_does_not_fit_in_memory_leaves_a_fixed_rate_pacer(tmp_path):
    app, board = boot(tmp_path)
    run_for(app, board, 2)

    def no_memory(mode, rate, now):
        raise MemoryError("memory allocation failed, allocating 368 bytes")

    app._make_controller = no_memory
    board.send(P.encode_command("mode", 1, "assess"))
    run_for(app, board, 1)
    assert replies(board, 1)[0]["text"] == "mode assess"
    assert app.mode == "assess" and app.ctrl is None and app.running
    assert app.pacer.target_mbpm == 6500  # the mode's start rate, held
    logs = [m["text"] for m in of(board, "log") if m["level"] == "error"]
    assert len(logs) == 1 and "assess: no memory" in logs[0]
    n = len(board.led)
    run_for(app, board, 2)
    assert len(board.led) > n and max(board.led[n:]) > 0  # the light goes on


LOCKED_RUN = r'''
import micropython
from vagal import app as app_mod

TICKS_MAX = (1 << 30) - 1


class Board:
    """Integer-only fake board: a 66 bpm pulse whose rate swings with the pacer's breath."""
    fs = 250
    board_id = "lock"
    lost_samples = 0
    settings_path = SETTINGS_PATH

    def __init__(self):
        self.now = 0
        self.next_s = 0
        self.beat_ph = 0  # x 2**20 per beat
        self.app = None

    def ticks_us(self):
        return self.now & TICKS_MAX

    def ticks_ms(self):
        return (self.now // 1000) & TICKS_MAX

    def start(self):
        pass

    def read(self, xb, tb):
        n = 0
        p = self.app.pacer
        while n < len(xb) and self.next_s <= self.now:
            # HR 66 +- 6 bpm with the pacer's phase (triangle), beat phase advanced per 4 ms sample
            ph = p.phase >> 14  # 0..1023
            tri = ph if ph < 512 else 1023 - ph
            hr_x10 = 600 + tri * 120 // 512
            self.beat_ph += hr_x10 * 4 * 1048576 // 600000
            u = self.beat_ph & 1048575
            bump = 9000 - (u >> 5) if u < 288000 else 0
            xb[n] = 30000 + (bump if bump > 0 else 0) + ((self.next_s // 4000) * 7919) % 150
            tb[n] = self.next_s & TICKS_MAX
            self.next_s += 4000
            n += 1
        return n

    def set_led(self, v):
        pass

    def set_motor(self, v):
        pass

    def button(self):
        return 0

    def feed(self):
        pass

    def serial_read(self, buf):
        return 0

    def serial_write(self, data, n=-1):
        pass


class Sink:
    def __init__(self):
        self.n = 0

    def send(self, kind, a=0, b=0, c=0, d=0, e=0, f=0, g=0):
        self.n += 1


try:
    import os
    os.remove(Board.settings_path)
except OSError:
    pass
board = Board()
app = app_mod.App(board)
board.app = app
app.begin()
poll = app.poll_samples
upd = app.update_pacer
per = app.periodic


def run(seconds, summaries=True):
    for _ in range(seconds * 50):
        board.now += 20000
        poll()
        upd()
        if summaries:  # the 1 s / 5 s summary task formats messages: not on the per-sample path
            per()


run(80)  # beats, breaths, coherence under way
sink = Sink()
real_send = app.send
out = []
for mode in ("practice", "assess", "winddown", "pace"):
    app.send = real_send
    if mode != app.mode:
        app.set_mode(mode, "host")
    run(5)
    app.indicate(app_mod.IND_PULSE_LOST)  # a blink pattern plays while locked
    app.send = sink.send
    breaths = app.meter.seq
    coh = app.meter.coherence.seq
    n = sink.n
    micropython.heap_lock()
    try:
        run(40, False)
    finally:
        micropython.heap_unlock()
    out.append("%s: lines %d breaths %d coherence %d ctrl %s" % (
        mode, sink.n - n, app.meter.seq - breaths, app.meter.coherence.seq - coh, type(app.ctrl).__name__))
print("; ".join(out))
'''


def test_per_sample_and_per_update_path_allocates_nothing_in_every_mode(tmp_path):
    """Samples -> detector/HRV/meter, pacer, controller, LED (with a blink pattern) under
    micropython.heap_lock(), with message output replaced by a counter (formatting a line allocates)."""
    import pathlib
    import subprocess

    root = pathlib.Path(__file__).resolve().parent.parent
    micropython = root / ".venv" / "bin" / "micropython"
    if not micropython.exists():
        import pytest

        pytest.skip("no MicroPython unix port at %s" % micropython)
    script = tmp_path / "locked.py"
    script.write_text("SETTINGS_PATH = %r\n" % str(tmp_path / "s.json") + LOCKED_RUN)
    env = dict(os.environ, MICROPYPATH="%s:.frozen" % (root / "firmware"))
    r = subprocess.run([str(micropython), "-X", "heapsize=2M", str(script)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    parts = dict(p.split(": ", 1) for p in r.stdout.strip().split("; "))
    assert sorted(parts) == ["assess", "pace", "practice", "winddown"]
    for mode, text in parts.items():
        words = text.split()
        counts = dict(zip(words[0::2], words[1::2]))
        assert int(counts["breaths"]) >= 3 and int(counts["coherence"]) >= 6, (mode, text)
    assert parts["practice"].endswith("Tuner") and parts["assess"].endswith("Assessment")
    assert parts["winddown"].endswith("WindDown")
