"""The one pin map of the vagal device (Raspberry Pi Pico / Pico H).

firmware/vagal/board.py takes its pins from here; hardware/draw.py draws the wiring diagram and writes
the pin table in hardware/README.md from here; tests/test_hardware.py checks both against the RP2040's
capabilities. Change a pin here, run `make hardware`, and everything follows.

Numbers are GPIO numbers (GPn), not physical header pins (see PICO_HEADER_PIN for those).
Portable: no machine import, so CPython tools and tests can read it.
"""

# Analog pulse (PPG) sensor output -> ADC0. Only GP26..GP28 reach the ADC on a Pico.
PPG_ADC = 26
# Pacer LED through a series resistor; PWM slice 6, channel B.
LED_PWM = 13
# Vibration motor via an N-channel MOSFET gate; PWM slice 7, channel B (own slice, own frequency).
MOTOR_PWM = 15
# Push button to GND, internal pull-up enabled; pressed reads 0.
BUTTON = 14
# The Pico's onboard LED (GP25 on Pico / Pico H; on a Pico W it is the wireless chip's "LED" pin).
STATUS_LED = 25

# Functions a pin can be given in PINS.
ADC = "adc"
PWM = "pwm"
INPUT_PULLUP = "input_pullup"
OUTPUT = "output"


def __getattr__(name):
    """The documentation tables PINS, PICO_HEADER_PIN and PICO_POWER_PIN (hardware/draw.py, tests),
    built when read: the firmware needs only the numbers above, so the tables take no device heap."""
    if name == "PINS":
        # (name, gpio, function, description): the table the docs are generated from.
        return (
            ("PPG_ADC", PPG_ADC, ADC, "pulse sensor signal (ADC0), 0-3.3 V"),
            ("LED_PWM", LED_PWM, PWM, "pacer LED anode via series resistor"),
            ("MOTOR_PWM", MOTOR_PWM, PWM, "motor MOSFET gate via 100 ohm resistor"),
            ("BUTTON", BUTTON, INPUT_PULLUP, "push button to GND, pressed = 0"),
            ("STATUS_LED", STATUS_LED, OUTPUT, "onboard LED: status blink"),
        )
    if name == "PICO_HEADER_PIN":
        # Physical header pin of each GPIO on the Pico / Pico H (Pico datasheet, pinout figure).
        # GP23, GP24, GP25 and GP29 are not on the header (used on the board itself).
        return {
            0: 1, 1: 2, 2: 4, 3: 5, 4: 6, 5: 7, 6: 9, 7: 10, 8: 11, 9: 12,
            10: 14, 11: 15, 12: 16, 13: 17, 14: 19, 15: 20, 16: 21, 17: 22, 18: 24, 19: 25,
            20: 26, 21: 27, 22: 29, 26: 31, 27: 32, 28: 34,
        }
    if name == "PICO_POWER_PIN":
        # Power and ground header pins the wiring uses.
        return {
            "VBUS": 40,  # 5 V from USB
            "VSYS": 39,  # system input 1.8-5.5 V (battery goes here through a Schottky diode)
            "3V3": 36,  # 3.3 V regulator output
            "ADC_VREF": 35,
            "AGND": 33,  # analog ground, for the pulse sensor
            "GND": 18,  # the ground next to GP13/GP14/GP15
        }
    raise AttributeError(name)


def pwm_slice(gpio):
    """RP2040 PWM slice driving a GPIO (datasheet 4.5.2): slices repeat every 16 GPIOs."""
    return (gpio >> 1) & 7


def pwm_channel(gpio):
    """RP2040 PWM channel of a GPIO: 0 = A (even GPIO), 1 = B (odd GPIO)."""
    return gpio & 1


def adc_channel(gpio):
    """ADC input number of GP26..GP29 (datasheet 4.9), -1 for any other GPIO."""
    if 26 <= gpio <= 29:
        return gpio - 26
    return -1
