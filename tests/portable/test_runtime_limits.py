"""The runtime checks themselves can fail: a no_alloc that always passed would prove nothing.

These run on every runtime; the ones that need MicroPython's heap lock or 31-bit small ints skip
with the reason where those do not exist.
"""

import sys

from portable import IS_32BIT_SMALLINT, IS_MICROPYTHON, Skip, assert_raises, no_alloc


def _build_list(n):
    return [0] * n


def _sum(a, b):
    return a + b


def _raise_value_error(x):
    raise ValueError(x)


def _need_heap_lock():
    if not IS_MICROPYTHON:
        raise Skip("CPython has no heap lock; the MicroPython runs check allocation")


def test_no_alloc_fails_a_function_that_builds_a_list():
    _need_heap_lock()
    e = assert_raises(AssertionError, no_alloc, _build_list, 8)
    assert "allocated" in str(e)
    assert "_build_list" in str(e)


def test_no_alloc_passes_small_int_arithmetic_and_returns_its_result():
    assert no_alloc(_sum, 1 << 28, (1 << 28) - 1) == (1 << 29) - 1
    assert no_alloc(_sum, -(1 << 29), -(1 << 29) + 1) == -(1 << 30) + 1


def test_a_sum_reaching_2_pow_30_allocates_on_a_32_bit_runtime():
    _need_heap_lock()
    if not IS_32BIT_SMALLINT:
        raise Skip("small ints are 63-bit on this runtime; the wasm port and the RP2040 are 31-bit")
    e = assert_raises(AssertionError, no_alloc, _sum, 1 << 29, 1 << 29)
    assert "_sum" in str(e)
    assert no_alloc(_sum, (1 << 29) - 1, 1 << 29) == (1 << 30) - 1  # the last small int still fits


def test_32_bit_detection_agrees_with_the_word_size():
    if IS_MICROPYTHON:
        assert IS_32BIT_SMALLINT == (sys.maxsize < (1 << 32))
    else:
        assert not IS_32BIT_SMALLINT


def test_the_heap_is_usable_again_after_a_failed_no_alloc():
    _need_heap_lock()
    assert_raises(AssertionError, no_alloc, _build_list, 8)
    assert len(_build_list(1000)) == 1000


def test_no_alloc_passes_other_exceptions_through():
    e = assert_raises(ValueError, no_alloc, _raise_value_error, 7)
    assert not isinstance(e, AssertionError)
    assert len(_build_list(10)) == 10


def test_assert_raises_fails_when_nothing_is_raised():
    e = assert_raises(AssertionError, assert_raises, ValueError, _sum, 1, 2)
    assert "did not raise" in str(e)
