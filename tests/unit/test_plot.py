import pytest
from pngcheck import decode_png, pixel

from sing_core.plot import GLYPHS, PALETTE, WHITE, Canvas, bar_chart, encode_png, nice_ticks, text_width


def test_png_round_trips_through_an_independent_decoder():
    canvas = Canvas(7, 5, background=(10, 20, 30))
    canvas.fill_rect(2, 1, 3, 2, (200, 100, 50))
    width, height, rows = decode_png(canvas.to_png())
    assert (width, height) == (7, 5)
    for y in range(5):
        for x in range(7):
            inside = 2 <= x < 5 and 1 <= y < 3
            assert pixel(rows, x, y) == ((200, 100, 50) if inside else (10, 20, 30)), (x, y)


def test_encode_png_rejects_a_wrong_buffer_size():
    with pytest.raises(ValueError, match="expected 12"):
        encode_png(2, 2, bytes(11))


def test_fill_rect_clips_at_the_edges():
    canvas = Canvas(4, 4)
    canvas.fill_rect(-2, -2, 4, 4, (1, 2, 3))
    canvas.fill_rect(3, 3, 10, 10, (4, 5, 6))
    assert canvas.pixel(0, 0) == (1, 2, 3)
    assert canvas.pixel(1, 1) == (1, 2, 3)
    assert canvas.pixel(2, 2) == WHITE
    assert canvas.pixel(3, 3) == (4, 5, 6)


def test_text_draws_the_glyph_and_names_missing_ones():
    canvas = Canvas(20, 16)
    width = canvas.text(0, 0, "1", scale=2)
    assert width == text_width("1", 2) == 10
    ink = {(x, y) for y in range(16) for x in range(20) if canvas.pixel(x, y) == (0, 0, 0)}
    expected = {(2 * gx + dx, 2 * gy + dy) for gx, gy in GLYPHS["1"] for dx in (0, 1) for dy in (0, 1)}
    assert ink == expected
    with pytest.raises(ValueError, match="no glyph for 'é'"):
        canvas.text(0, 0, "café")


def test_lower_case_is_drawn_as_upper_case():
    a, b = Canvas(40, 8), Canvas(40, 8)
    a.text(0, 0, "grey w=7.5")
    b.text(0, 0, "GREY W=7.5")
    assert a.pixels == b.pixels


def test_grey_image_maps_the_range_and_clamps():
    canvas = Canvas(3, 1)
    canvas.grey_image(0, 0, [[-1.0, 0.0, 5.0]], lo=-1.0, hi=1.0)
    assert [canvas.pixel(x, 0) for x in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


def test_nice_ticks():
    assert nice_ticks(-1.6, 1.6, 8) == [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]
    assert nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]


def test_bar_chart_draws_each_bar_from_zero_in_its_series_colour():
    canvas = Canvas(300, 200)
    values_a, values_b = [1.0, -0.5], [0.25, 0.75]
    bars = bar_chart(canvas, (0, 0, 300, 200), ["black", "white"], [("a", values_a), ("b", values_b)], title="t")
    _, _, rows = decode_png(canvas.to_png())
    zero_y = bars[(1, 0)][1]  # the negative bar hangs from the zero line
    for (c, s), (x, y, w, h) in bars.items():
        value = (values_a, values_b)[s][c]
        assert pixel(rows, x + w // 2, y + h // 2) == PALETTE[s]
        if value > 0:
            assert abs((y + h) - zero_y) <= 1
        else:
            assert y == zero_y
    # heights are proportional to the values
    assert bars[(0, 0)][3] == pytest.approx(4 * bars[(0, 1)][3], abs=2)
    assert bars[(0, 0)][3] == pytest.approx(2 * bars[(1, 0)][3], abs=2)


def test_bar_chart_checks_its_input():
    with pytest.raises(ValueError, match="has 1 values for 2 categories"):
        bar_chart(Canvas(100, 100), (0, 0, 100, 100), ["a", "b"], [("s", [1.0])])


def test_text_at_a_fractional_position_keeps_the_glyph_shape():
    exact, shifted = Canvas(12, 12), Canvas(12, 12)
    exact.text(2, 3, "0")
    shifted.text(2, 2.5, "0")  # rounds as a whole to one row, never squashes rows apart
    ink = [{(x, y) for y in range(12) for x in range(12) if c.pixel(x, y) != WHITE} for c in (exact, shifted)]
    assert len(ink[0]) == len(ink[1]) == len(GLYPHS["0"])
    offset = min(y for _, y in ink[1]) - min(y for _, y in ink[0])
    assert {(x, y - offset) for x, y in ink[1]} == ink[0]
