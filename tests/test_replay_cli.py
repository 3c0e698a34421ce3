"""vagal replay / evaluate on bad input: one line naming the problem, exit 2, nothing written;
and on good input a beats file at the synthetic heart rate."""

import sys
from pathlib import Path

import pytest

from vagal_host.cli import main

sys.path.insert(0, str(Path(__file__).parent / "portable"))
import synth_ppg  # noqa: E402


def _good(path, fs=100, seconds=30):
    x, truth = synth_ppg.ppg(fs, seconds, hr_bpm=66, seed=4)
    path.write_text("time,ppg\n" + "".join("%d,%d\n" % (i, v) for i, v in enumerate(x)))
    return truth


@pytest.mark.parametrize("engine", ["cpython", "micropython"])
def test_replay_writes_beats(tmp_path, capsys, engine):
    rec = tmp_path / "rec.csv"
    truth = _good(rec)
    out = tmp_path / "beats.csv"
    assert main(["replay", str(rec), "--column", "ppg", "--fs", "100", "--beats", str(out), "--engine", engine]) == 0
    rows = out.read_text().splitlines()
    assert rows[0].startswith("time_s,ibi_ms")
    assert abs(len(rows) - 1 - len(truth)) <= 1
    line = capsys.readouterr().out
    assert "beats=" in line and "mean_hr=" in line
    assert line.rstrip().endswith("-> %s" % out)  # where the beats went


def test_replay_reads_a_csv_saved_with_a_byte_order_mark(tmp_path):
    rec = tmp_path / "rec.csv"
    truth = _good(rec)
    rec.write_bytes(b"\xef\xbb\xbf" + rec.read_bytes())      # as spreadsheets save "CSV UTF-8"
    out = tmp_path / "beats.csv"
    assert main(["replay", str(rec), "--column", "time", "--fs", "100", "--beats", str(out)]) == 0
    assert main(["replay", str(rec), "--column", "ppg", "--fs", "100", "--beats", str(out)]) == 0
    assert abs(len(out.read_text().splitlines()) - 1 - len(truth)) <= 1


@pytest.mark.parametrize("content,args,needle", [
    (None, ["--column", "ppg", "--fs", "100"], "no such file"),
    ("time,ppg\n1,2\n", ["--column", "nope", "--fs", "100"], "no column 'nope'"),
    ("time,ppg\n1,2\n2,abc\n", ["--column", "ppg", "--fs", "100"], "line 3"),
    ("# from the bench\n\ntime,ppg\n1,2\n2,abc\n", ["--column", "ppg", "--fs", "100"], "line 5"),  # the file's own
    ("1,2\n\n2,\n", ["--column", "1", "--fs", "100"], "line 3: no value in column '1'"),   # no header row
    ("time,ppg\n1,2\n2,nan\n", ["--column", "ppg", "--fs", "100"], "not a finite number"),
    ("", ["--column", "ppg", "--fs", "100"], "is empty"),
    ("time,ppg\n", ["--column", "ppg", "--fs", "100"], "no samples"),
    ("time,ppg\n1,2\n2,3\n", ["--column", "ppg", "--fs", "20"], "out of range"),
    ("time,ppg\n1,2\n2,3\n", ["--column", "ppg", "--fs", "fast"], "not a number"),
    ("time,ppg\n1,2\n2,3\n", ["--column", "ppg"], "--fs is required"),
    ("time,ppg\n1,2000\n2,3\n", ["--column", "ppg", "--fs", "100", "--adc-bits", "10"],
     "2000 is not a 10-bit count"),
    ("time,ppg\n1,20.5\n2,3\n", ["--column", "ppg", "--fs", "100", "--adc-bits", "12"],
     "not a 12-bit count"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content, args, needle):
    rec = tmp_path / "rec.csv"
    if content is not None:
        rec.write_text(content)
    out = tmp_path / "beats.csv"
    previous = "time_s,ibi_ms,amplitude,confidence,accepted\n0.500,,1200,90,1\n"  # an earlier replay's
    out.write_text(previous)
    assert main(["replay", str(rec), "--beats", str(out)] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert out.read_text() == previous          # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["beats.csv"] + (["rec.csv"] if content is not None else []))


def test_adc_bits_says_what_the_counts_are(tmp_path, capsys):
    # a weak 12-bit recording that never reaches 1024: guessed as 10-bit, its tops sit at the
    # 10-bit rail and read as saturated; told it is 12-bit, every beat is found
    x, truth = synth_ppg.ppg(100, 30, hr_bpm=66, seed=4)
    lo, hi = min(x), max(x)
    counts = [700 + (v - lo) * 323 // (hi - lo) for v in x]         # 700..1023
    rec = tmp_path / "weak.csv"
    rec.write_text("ppg\n" + "".join("%d\n" % v for v in counts))
    beats, lines = {}, {}
    for bits in (None, 12):
        out = tmp_path / ("beats%s.csv" % bits)
        extra = ["--adc-bits", str(bits)] if bits else []
        assert main(["replay", str(rec), "--column", "ppg", "--fs", "100", "--beats", str(out)] + extra) == 0
        beats[bits] = len(out.read_text().splitlines()) - 1
        lines[bits] = capsys.readouterr().out
    assert "10-bit ADC counts x 64" in lines[None] and "saturated=" in lines[None], lines
    assert "12-bit ADC counts x 16" in lines[12] and "saturated=" not in lines[12], lines
    assert beats[12] == len(truth) and beats[None] < len(truth), (beats, len(truth))


def test_evaluate_without_references_is_an_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no recordings" in capsys.readouterr().err


def test_replay_reports_progress_over_every_sample(tmp_path):
    from vagal_host.replay_engines import CHUNK, replay_cpython

    class Seen:
        def __init__(self):
            self.done = 0
            self.calls = 0

        def advance(self, n):
            self.done += n
            self.calls += 1

    samples = [30000 + (i * 37) % 900 for i in range(2 * CHUNK + 123)]
    seen = Seen()
    replay_cpython(samples, 250, tmp_path / "b.csv", progress=seen)
    assert seen.done == len(samples) and seen.calls == 3


def test_usage_errors_name_the_command_in_one_line(capsys):
    """argparse's own errors (a missing --beats) say which command, like every other error."""
    with pytest.raises(SystemExit) as e:
        main(["replay", "rec.csv"])
    assert e.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("vagal replay: error:") and "--beats" in err[0], err


def test_replay_of_a_session_file_says_what_it_is(tmp_path, capsys):
    session = tmp_path / "s.vagal"
    session.write_text("# vagal session 1\n# started 2026-01-01T00:00:00+00:00\n0.001\t#connected /dev/x\n")
    out = tmp_path / "beats.csv"
    assert main(["replay", str(session), "--fs", "100", "--beats", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "is a vagal session file, not a recording" in err[0], err
    assert not out.exists()


def test_evaluate_given_a_file_or_a_missing_folder(tmp_path, capsys):
    f = tmp_path / "rec.csv"
    f.write_text("time,ppg\n1,2\n")
    assert main(["evaluate", str(f)]) == 2
    assert "is a file; give the folder" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_every_option_of_every_command_has_help_and_a_meaningful_placeholder():
    """`vagal X --help` is the manual: no option without a text, none shown as e.g. `--fs FS`."""
    import argparse

    from vagal_host.cli import build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) >= {"demo", "stream", "virtual-board", "replay", "evaluate", "flash", "deploy",
                                "export", "report", "resonance", "settings"}
    for name, p in sub.choices.items():
        assert p.description, name
        for a in p._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            assert a.help, (name, a.option_strings or a.dest)
            takes_value = a.nargs != 0
            if a.option_strings and takes_value and not a.choices:
                assert a.metavar is not None, (name, a.option_strings)  # not the bare upper-case dest


@pytest.mark.parametrize("engine", ["cpython", "micropython"])
def test_an_idle_10_bit_sensor_gives_no_beats(tmp_path, capsys, engine):
    # 10-bit counts carry four times the 12-bit noise step: the replay tells the core, whose noise
    # floor is then four of those counts, so an idle sensor's +-3 counts are not learned as a pulse
    rng = synth_ppg.Rng(5)
    fs = 117
    idle = [512 + int(7 * rng.uniform()) - 3 for _ in range(12 * fs)]
    x, truth = synth_ppg.ppg(fs, 20, hr_bpm=70, seed=3, amp=6000, noise=0)
    counts = idle + [v >> 6 for v in x]
    rec = tmp_path / "idle.csv"
    rec.write_text("hr\n" + "".join("%d\n" % v for v in counts))
    out = tmp_path / "b.csv"
    assert main(["replay", str(rec), "--column", "hr", "--fs", str(fs), "--beats", str(out), "--quiet",
                 "--engine", engine]) == 0
    assert "10-bit ADC counts x 64" in capsys.readouterr().out
    times = [float(r.split(",")[0]) for r in out.read_text().splitlines()[1:]]
    assert not [t for t in times if t < 12], times
    assert abs(len(times) - len([t for t in truth if t > 1.0])) <= 1, (len(times), len(truth))
