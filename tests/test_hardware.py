"""The pin map, the hardware docs and the wiring diagram agree with each other and with the RP2040.

firmware/vagal/pins.py is the one pin map: board.py takes its pins from it, hardware/draw.py generates
the README table and the diagram from it. These tests fail when the README disagrees with pins.py, when
a pin is given a job the RP2040 (or the Pico board around it) cannot do there, when the BOM is malformed
or lacks a part the design calls for, or when draw.py no longer builds a real image.
"""

import csv
import importlib.util
import math
import os
import re
import struct
import subprocess
import sys

import pytest

from vagal import pins

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARDWARE = os.path.join(ROOT, "hardware")
README = os.path.join(HARDWARE, "README.md")
BOM = os.path.join(HARDWARE, "bom.csv")
DRAW = os.path.join(HARDWARE, "draw.py")

# ---------------------------------------------------------------------------------------------
# RP2040 / Pico facts, written out here from the datasheets (not imported from pins.py, so a
# mistake in pins.py cannot also hide in the check).
# ---------------------------------------------------------------------------------------------
# RP2040 datasheet, section 4.9 (ADC) and 2.19.2 (GPIO function select): the four ADC inputs
# AIN0..AIN3 are GPIO26..GPIO29; AIN4 is the internal temperature sensor. No other GPIO has ADC.
RP2040_ADC_GPIO = {26: 0, 27: 1, 28: 2, 29: 3}

# RP2040 datasheet, section 4.5.2 (PWM, "Programmer's Model", table of PWM channel to GPIO) and the
# function table in 2.19.2: GPIO0/1 -> PWM0 A/B, GPIO2/3 -> PWM1 A/B, ... GPIO14/15 -> PWM7 A/B,
# then the pattern repeats: GPIO16/17 -> PWM0 A/B ... GPIO28/29 -> PWM6 A/B.
RP2040_PWM = {}
for _gpio in range(30):
    RP2040_PWM[_gpio] = ("0A 0B 1A 1B 2A 2B 3A 3B 4A 4B 5A 5B 6A 6B 7A 7B".split()[_gpio % 16])

# Raspberry Pi Pico datasheet, chapter 2 (pinout) and 4 (power/ADC): GPIOs the board itself uses.
PICO_GPIO23_SMPS_PS = 23  # regulator power-save select
PICO_GPIO24_VBUS_SENSE = 24
PICO_GPIO25_LED = 25  # the onboard LED: allowed only as the status LED
PICO_GPIO29_VSYS_DIV3 = 29  # ADC3 measures VSYS/3 through an on-board divider
PICO_RESERVED = {PICO_GPIO23_SMPS_PS, PICO_GPIO24_VBUS_SENSE, PICO_GPIO29_VSYS_DIV3}
# Ground pins of the Pico's 40-pin header (AGND, pin 33, is the analog ground).
PICO_GND_PINS = {3, 8, 13, 18, 23, 28, 38}
PICO_AGND_PIN = 33
# The header pin of some GPIOs, from the Pico pinout figure.
PICO_HEADER_SPOT_CHECK = {0: 1, 2: 4, 13: 17, 14: 19, 15: 20, 16: 21, 22: 29, 26: 31, 27: 32, 28: 34}

FUNCTIONS = {pins.ADC, pins.PWM, pins.INPUT_PULLUP, pins.OUTPUT}
REQUIRED_NAMES = ("PPG_ADC", "LED_PWM", "MOTOR_PWM", "BUTTON", "STATUS_LED")


def pin_map_problems(table):
    """Every reason the (name, gpio, function, description) table cannot work on a Pico."""
    problems = []
    seen_gpio = {}
    seen_name = set()
    pwm_slices = {}
    for name, gpio, function, description in table:
        if name in seen_name:
            problems.append("%s listed twice" % name)
        seen_name.add(name)
        if not isinstance(gpio, int) or not 0 <= gpio <= 29:
            problems.append("%s: GP%r is not an RP2040 GPIO (0..29)" % (name, gpio))
            continue
        if gpio in seen_gpio:
            problems.append("GP%d used twice: %s and %s" % (gpio, seen_gpio[gpio], name))
        seen_gpio[gpio] = name
        if function not in FUNCTIONS:
            problems.append("%s: unknown function %r" % (name, function))
        if not description:
            problems.append("%s: no description" % name)
        if gpio in PICO_RESERVED:
            problems.append("%s: GP%d is used by the Pico board itself" % (name, gpio))
        if gpio == PICO_GPIO25_LED and (name != "STATUS_LED" or function != pins.OUTPUT):
            problems.append("%s: GP25 is the onboard LED, usable only as the status LED output" % name)
        if function == pins.ADC and (gpio not in RP2040_ADC_GPIO or gpio == PICO_GPIO29_VSYS_DIV3):
            problems.append("%s: GP%d has no ADC input on a Pico (only GP26-28)" % (name, gpio))
        if function == pins.PWM:
            slice_channel = RP2040_PWM[gpio]
            slice_number = slice_channel[0]
            for other, other_gpio in pwm_slices.items():
                if RP2040_PWM[other_gpio] == slice_channel:
                    problems.append("%s and %s both on PWM %s" % (other, name, slice_channel))
                elif RP2040_PWM[other_gpio][0] == slice_number:
                    problems.append("%s and %s share PWM slice %s (and so its frequency)"
                                    % (other, name, slice_number))
            pwm_slices[name] = gpio
    return problems


# --- the checker itself catches what it should ----------------------------------------------------
def test_pin_checker_accepts_the_real_pin_map():
    assert pin_map_problems(pins.PINS) == []


@pytest.mark.parametrize("bad_table, expected", [
    ([("PPG_ADC", 15, pins.ADC, "x")], "no ADC input"),
    ([("PPG_ADC", 29, pins.ADC, "x")], "used by the Pico board"),
    ([("LED_PWM", 14, pins.PWM, "x"), ("MOTOR_PWM", 15, pins.PWM, "x")], "share PWM slice 7"),
    ([("LED_PWM", 0, pins.PWM, "x"), ("MOTOR_PWM", 16, pins.PWM, "x")], "both on PWM 0A"),
    ([("LED_PWM", 13, pins.PWM, "x"), ("BUTTON", 13, pins.INPUT_PULLUP, "x")], "GP13 used twice"),
    ([("BUTTON", 23, pins.INPUT_PULLUP, "x")], "used by the Pico board"),
    ([("BUTTON", 24, pins.INPUT_PULLUP, "x")], "used by the Pico board"),
    ([("LED_PWM", 25, pins.PWM, "x")], "GP25 is the onboard LED"),
    ([("BUTTON", 30, pins.INPUT_PULLUP, "x")], "not an RP2040 GPIO"),
    ([("BUTTON", 3, "open_drain", "x")], "unknown function"),
])
def test_pin_checker_rejects_impossible_maps(bad_table, expected):
    problems = pin_map_problems(bad_table)
    assert any(expected in p for p in problems), problems


# --- pins.py -----------------------------------------------------------------------------------
def test_required_constants_exist_and_match_the_table():
    table = {name: gpio for name, gpio, _, _ in pins.PINS}
    for name in REQUIRED_NAMES:
        assert name in table, name
        assert getattr(pins, name) == table[name], name
    for name, gpio, _, _ in pins.PINS:
        assert getattr(pins, name) == gpio, "pins.%s disagrees with PINS" % name


def test_pins_helpers_match_the_datasheet_tables():
    for gpio in range(30):
        assert "%d%s" % (pins.pwm_slice(gpio), "AB"[pins.pwm_channel(gpio)]) == RP2040_PWM[gpio], gpio
        assert pins.adc_channel(gpio) == RP2040_ADC_GPIO.get(gpio, -1), gpio


def test_led_and_motor_are_on_different_pwm_slices():
    assert RP2040_PWM[pins.LED_PWM][0] != RP2040_PWM[pins.MOTOR_PWM][0]


def test_header_pin_numbers_follow_the_pico_pinout():
    header = pins.PICO_HEADER_PIN
    for gpio, pin in PICO_HEADER_SPOT_CHECK.items():
        assert header[gpio] == pin, gpio
    assert len(set(header.values())) == len(header), "two GPIOs on one header pin"
    assert all(1 <= pin <= 40 for pin in header.values())
    assert not set(header.values()) & (PICO_GND_PINS | {PICO_AGND_PIN})
    # On the board, not on the header:
    assert not set(header) & {23, 24, 25, 29}
    assert pins.PICO_POWER_PIN["AGND"] == PICO_AGND_PIN
    assert pins.PICO_POWER_PIN["GND"] in PICO_GND_PINS
    for name, gpio, _, _ in pins.PINS:
        if gpio != PICO_GPIO25_LED:
            assert gpio in header, "%s (GP%d) is not on the header" % (name, gpio)


# --- README -----------------------------------------------------------------------------------
def load_draw():
    spec = importlib.util.spec_from_file_location("hardware_draw", DRAW)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_text():
    with open(README, encoding="utf-8") as f:
        return f.read()


def readme_pin_rows(text):
    """{signal: (gpio, header text, function)} parsed from the README's generated pin table."""
    block = text.split("<!-- pins:begin", 1)[1].split("<!-- pins:end -->", 1)[0]
    rows = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not re.fullmatch(r"GP\d+", cells[1]):
            continue
        assert cells[0] not in rows, "README lists %s twice" % cells[0]
        rows[cells[0]] = (int(cells[1][2:]), cells[2], cells[3])
    return rows


def test_readme_pin_table_matches_pins_py():
    rows = readme_pin_rows(readme_text())
    expected = {}
    for name, gpio, function, _ in pins.PINS:
        header = pins.PICO_HEADER_PIN.get(gpio)
        expected[name] = (gpio, str(header) if header is not None else "on board", function)
    assert rows == expected


def test_readme_generated_blocks_are_current():
    draw = load_draw()
    text = readme_text()
    assert draw.render_readme(text) == text, "hardware/README.md is stale: run `make hardware`"


def test_stale_readme_is_detected():
    draw = load_draw()
    text = readme_text()
    stale = text.replace("| GP%d |" % pins.PPG_ADC, "| GP27 |", 1)
    assert stale != text
    assert draw.render_readme(stale) != stale
    assert readme_pin_rows(stale)["PPG_ADC"][0] == 27  # the parser would see the wrong pin
    with pytest.raises(ValueError, match="marker"):
        draw.render_readme("no markers here")


def test_design_numbers_follow_from_the_formulas():
    draw = load_draw()
    # The LED resistor is the next E12 value up from (3.3 - Vf) / I, so the current stays <= target.
    exact = (draw.V_3V3 - draw.LED_VF) / draw.LED_TARGET_A
    assert draw.R_LED >= exact
    assert round(draw.R_LED / 10 ** math.floor(math.log10(draw.R_LED)), 6) in draw.E12
    assert (draw.V_3V3 - draw.LED_VF_LOW) / draw.R_LED <= draw.GPIO_DRIVE_DEFAULT_A
    assert draw.e12_at_least(650) == 680 and draw.e12_at_least(1000) == 1000 and draw.e12_at_least(101) == 120
    # The motor must not be on a GPIO, and the 3V3 rail must carry everything at motor stall.
    assert draw.MOTOR_STALL_A > draw.GPIO_DRIVE_MAX_A
    total = draw.PICO_OWN_A + draw.SENSOR_A + (draw.V_3V3 - draw.LED_VF_LOW) / draw.R_LED + draw.MOTOR_STALL_A
    assert total < draw.RAIL_3V3_MAX_A
    # The sensor filter passes the pulse (< 10 Hz) and sits below 50 Hz mains.
    fc = 1 / (2 * math.pi * draw.R_FILTER * draw.C_FILTER)
    assert 10 < fc < 50


# --- BOM ---------------------------------------------------------------------------------------
BOM_COLUMNS = ["part", "quantity", "description", "example_part_number", "approx_cost_usd"]


def read_bom():
    with open(BOM, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == BOM_COLUMNS
        return list(reader)


def test_bom_parses_with_positive_numbers():
    rows = read_bom()
    assert len(rows) >= 10
    for row in rows:
        assert None not in row, "extra cells in %r" % row
        for column in BOM_COLUMNS:
            assert row[column] and row[column].strip(), "%s: empty %s" % (row["part"], column)
        assert int(row["quantity"]) > 0, row["part"]
        assert float(row["approx_cost_usd"]) > 0, row["part"]
    parts = [row["part"] for row in rows]
    assert len(parts) == len(set(parts)), "a part is listed twice"


def test_bom_has_the_parts_the_design_uses():
    draw = load_draw()
    parts = " / ".join(row["part"] + " " + row["description"] for row in read_bom())
    for ohms in (draw.R_LED, draw.R_FILTER, draw.R_GATE, draw.R_GATE_PULLDOWN):
        assert "Resistor " + draw.fmt_ohms(ohms) in parts, draw.fmt_ohms(ohms)
    for farads in (draw.C_FILTER, draw.C_BULK):
        assert "Capacitor " + draw.fmt_farads(farads) in parts, draw.fmt_farads(farads)
    for needed in ("Pico", "Pulse sensor", "LED", "motor", "MOSFET", "1N5819", "button", "enclosure"):
        assert needed.lower() in parts.lower(), needed


# --- the diagram builds ---------------------------------------------------------------------------
def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


def test_draw_builds_into_a_temp_dir(tmp_path):
    before = readme_text()
    result = subprocess.run([sys.executable, DRAW, "--out", str(tmp_path)], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, MPLBACKEND="Agg"))
    assert result.returncode == 0, result.stderr
    assert readme_text() == before, "--out must not touch the README"
    svg = tmp_path / "wiring.svg"
    png = tmp_path / "wiring.png"
    assert svg.stat().st_size > 10000
    assert "<svg" in svg.read_text(encoding="utf-8")
    width, height = png_size(png)
    assert width >= 800 and height >= 300, (width, height)
    import matplotlib.image
    import numpy as np
    pixels = matplotlib.image.imread(str(png))
    ink = (pixels[..., :3].mean(axis=2) < 0.5).mean()  # dark pixels: lines and text
    assert 0.01 < ink < 0.3, ink
    # The committed drawing is what draw.py makes now (draw.py output is reproducible).
    committed = matplotlib.image.imread(os.path.join(HARDWARE, "wiring.png"))
    assert np.array_equal(committed, pixels), "hardware/wiring.png is stale: run `make hardware`"
    for name in ("wiring.png", "breadboard.png"):
        img = matplotlib.image.imread(str(tmp_path / name))
        # opaque and white behind the lines: readable on a dark page (issue 17, item 9)
        assert img.shape[2] == 3 or (img[..., 3] == 1.0).all(), name + " has transparent pixels"
        assert (img[0, 0, :3] > 0.99).all() and (img[-1, -1, :3] > 0.99).all(), name + " is not on white"
    assert "<svg" in (tmp_path / "breadboard.svg").read_text(encoding="utf-8")
    board = matplotlib.image.imread(str(tmp_path / "breadboard.png"))
    assert board.shape[1] >= 1000
    committed = matplotlib.image.imread(os.path.join(HARDWARE, "breadboard.png"))
    assert np.array_equal(committed, board), "hardware/breadboard.png is stale: run `make hardware`"


def test_breadboard_wires_start_at_the_pins_pins_py_names():
    """Every wire from the Pico starts in the column of the header pin pins.py gives its signal, on
    the free side of that pin's row; nothing else is placed over the Pico's own columns."""
    draw = load_draw()
    layout = draw.breadboard_layout()
    ends = {label: a for kind, label, a, b in layout}
    col, row = draw.pico_hole(pins.PICO_HEADER_PIN[pins.PPG_ADC])
    assert (col, row) == (41 - 31, "c") and ends[draw.pin_label("PPG_ADC")] == (col, "a")
    for name in ("BUTTON", "MOTOR_PWM"):
        col, row = draw.pico_hole(pins.PICO_HEADER_PIN[getattr(pins, name)])
        assert row == "h" and ends[draw.pin_label(name)] == (col, "j"), name
    led_col, _ = draw.pico_hole(pins.PICO_HEADER_PIN[pins.LED_PWM])
    assert any(kind == "resistor" and a == (led_col, "i") for kind, _, a, _ in layout)
    for net in ("3V3", "AGND", "GND"):
        col, _ = draw.pico_hole(pins.PICO_POWER_PIN[net])
        assert any(label.startswith(net) and a[0] == col for _, label, a, _ in layout), net
    pico_cols = range(1, 21)
    for kind, label, a, b in layout:
        for hole in (a, b):
            if hole and hole[1] in ("d", "e", "f", "g") and hole[0] in pico_cols:
                raise AssertionError("%s %r under the Pico at %r" % (kind, label, hole))
    with pytest.raises(ValueError):
        draw.pico_hole(41)


def test_cost_in_the_readme_is_summed_from_the_bom(tmp_path):
    draw = load_draw()
    rows = read_bom()
    required = sum(int(r["quantity"]) * float(r["approx_cost_usd"]) for r in rows if "(optional)" not in r["part"])
    assert draw.bom_costs() == (round(required, 2), round(sum(
        int(r["quantity"]) * float(r["approx_cost_usd"]) for r in rows) - required, 2))
    assert "%.2f USD" % required in readme_text()
    bad = tmp_path / "bom.csv"
    bad.write_text(",".join(BOM_COLUMNS) + "\nx,two,d,p,1.0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        draw.bom_costs(str(bad))


def forward_direction(element):
    """(dx, dy) from the base to the tip of a diode/LED's triangle, in drawing coordinates.

    Read from the drawn symbol itself, so a .reverse() or a wrong direction shows up here.
    """
    def area(verts):
        (ax, ay), (bx, by), (cx, cy) = verts
        return abs((bx - ax) * (cy - ay) - (cx - ax) * (by - ay))

    triangles = [seg.verts for seg in element.segments
                 if type(seg).__name__ == "SegmentPoly" and len(seg.verts) == 3]
    verts = [element.transform.transform(v) for v in max(triangles, key=area)]
    def opposite_side(i):
        return math.dist(verts[(i + 1) % 3], verts[(i + 2) % 3])

    tip = max(range(3), key=opposite_side)  # the base is the triangle's longest side
    bx = sum(verts[i][0] for i in range(3) if i != tip) / 2
    by = sum(verts[i][1] for i in range(3) if i != tip) / 2
    return verts[tip][0] - bx, verts[tip][1] - by


def test_drawing_gets_the_polarised_parts_the_right_way_round():
    """A reversed flyback diode shorts the 3V3 rail whenever the motor runs; check the drawing."""
    draw = load_draw()
    _, parts = draw.build()

    def at(element, anchor):
        x, y = element.absanchors[anchor]
        return (round(float(x), 3), round(float(y), 3))

    motor, diode, bulk, fet = parts["motor"], parts["diode"], parts["bulk"], parts["fet"]
    supply, drain_node = at(motor, "end"), at(motor, "start")  # the motor runs from the drain up to 3V3
    assert at(fet, "drain")[0] == drain_node[0] and at(fet, "drain")[1] < drain_node[1]
    # Flyback diode spans drain -> 3V3 and conducts upwards: anode on the drain, cathode on 3V3.
    assert {at(diode, "start")[1], at(diode, "end")[1]} == {drain_node[1], supply[1]}
    assert forward_direction(diode)[1] > 0.1
    # Polarised capacitor: "+" at its start, on the 3V3 node.
    assert at(bulk, "start")[1] == supply[1] and at(bulk, "end")[1] < supply[1]
    # LED: conducts away from the series resistor (pin -> resistor -> anode ... cathode -> GND).
    assert at(parts["led"], "start") == at(parts["led_resistor"], "end")
    assert at(parts["led_resistor"], "start") == at(parts["pico"], "LED")
    assert forward_direction(parts["led"])[0] > 0.1


def test_draw_check_mode_reports_current_readme():
    result = subprocess.run([sys.executable, DRAW, "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
