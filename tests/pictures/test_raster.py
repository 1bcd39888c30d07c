from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from softmax_lab.pictures import raster


def test_save_png_keeps_palette_colours_and_maps_others_to_the_nearest(tmp_path: Path) -> None:
    colours = raster.palette(raster.GREYS, raster.tints((31, 119, 180), 96), raster.RDBU_R[::4])
    entries = np.frombuffer(colours.colours, dtype=np.uint8).reshape(256, 3)
    rgb = np.repeat(entries[None], 7, axis=0)  # (7, 256, 3): every entry, in 7 rows
    rgb[3:] = np.random.default_rng(0).integers(0, 256, (4, 256, 3))  # and any colours
    out = raster.save_png(Image.fromarray(rgb), tmp_path / "x.png", colours)
    with Image.open(out) as im:
        assert (im.mode, im.size) == ("P", (256, 7))
        back = np.asarray(im.convert("RGB")).astype(int)
    # an entry comes back exactly, unless an earlier one rounds to the same multiples of 4
    _, first = np.unique(entries & 0xFC, axis=0, return_index=True)
    np.testing.assert_array_equal(back[0, first], entries[first])
    assert np.abs(back[:3] - rgb[:3]).max() <= 3
    np.testing.assert_array_equal(back[0, :64], raster.GREYS)  # black, white and 62 greys
    # others go to the entry nearest their colour rounded down to multiples of 4: ≤ 3√3 off
    nearest = np.sqrt(((rgb[3:, :, None].astype(int) - entries) ** 2).sum(-1).min(-1))  # (4, 256)
    assert (np.sqrt(((back[3:] - rgb[3:]) ** 2).sum(-1)) <= nearest + 2 * 3 * np.sqrt(3)).all()


def test_palette_rejects_more_than_256_colours() -> None:
    with pytest.raises(ValueError, match="a palette holds 256 colours, got 320"):
        raster.palette(raster.GREYS, raster.RDBU_R)


def test_colour_maps_run_from_their_first_to_their_last_anchor() -> None:
    np.testing.assert_array_equal(raster.RDBU_R[[0, 255]], [[5, 48, 97], [103, 0, 31]])
    assert (raster.RDBU_R[127:129] > 240).all()  # #f7f7f7 at the centre
    np.testing.assert_array_equal(raster.BLUES[[0, 255]], [[247, 251, 255], [8, 48, 107]])


def test_map_colours_clips_to_the_range_and_draws_nan_grey() -> None:
    rgb = raster.map_colours(np.array([-5.0, -1.0, 1.0, 5.0, np.nan]), raster.RDBU_R, -1, 1)
    np.testing.assert_array_equal(rgb[:4], raster.RDBU_R[[0, 0, 255, 255]])
    np.testing.assert_array_equal(rgb[4], raster.BAD)


def test_draw_text_centres_on_its_anchor_and_turns_vertical() -> None:
    canvas = Image.new("RGB", (200, 200), raster.WHITE)
    x0, y0, x1, y1 = raster.draw_text(canvas, (100, 100), "epoch", size=14, anchor="mm")
    assert abs((x0 + x1) / 2 - 100) <= 1 and abs((y0 + y1) / 2 - 100) <= 2
    assert (np.asarray(canvas)[y0:y1, x0:x1] < 128).any()  # ink inside its box
    x0, y0, x1, y1 = raster.draw_text(canvas, (20, 100), "epoch", size=14, vertical=True)
    assert y1 - y0 > x1 - x0  # taller than wide


def test_fit_text_shrinks_then_shortens_to_its_room() -> None:
    assert raster.fit_text("optim.lr", 200, 14, smallest=10) == ("optim.lr", 14)
    width = raster.text_size("optim.batch_size", 14)[0]
    text, size = raster.fit_text("optim.batch_size", width - 10, 14, smallest=10)
    assert text == "optim.batch_size" and 10 <= size < 14
    text, size = raster.fit_text("kmnist_with_a_very_long_name", 60, 14, smallest=10)
    assert size == 10 and text.endswith("…") and raster.text_size(text, 10)[0] <= 60


def test_viridis_runs_from_dark_purple_to_yellow_like_matplotlibs() -> None:
    np.testing.assert_array_equal(raster.VIRIDIS[[0, 255]], [[68, 1, 84], [253, 231, 37]])
    lum = raster.VIRIDIS @ np.array([0.299, 0.587, 0.114])
    assert (np.diff(lum) >= 0).all()  # lighter all the way: low values dark


def test_map_colours_draws_nan_in_the_bad_colour_given() -> None:
    rgb = raster.map_colours(np.array([np.nan]), raster.VIRIDIS, 0, 1, bad=raster.WHITE)
    np.testing.assert_array_equal(rgb, [raster.WHITE])


def ink_box(canvas: Image.Image) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the dark pixels of ``canvas``, x1 and y1 exclusive."""
    ys, xs = np.nonzero((np.asarray(canvas) < 128).any(axis=-1))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_draw_title_fits_its_room_on_one_line_or_two() -> None:
    canvas = Image.new("RGB", (400, 60), raster.WHITE)
    raster.draw_title(canvas, "test/error over 8 runs", 200, 380, y=8)
    x0, y0, x1, y1 = ink_box(canvas)
    assert abs((x0 + x1) / 2 - 200) <= 2 and y1 - y0 < 20  # centred, one line
    canvas = Image.new("RGB", (400, 60), raster.WHITE)
    long = "final test/error of a sweep over the learning rate with a title far too long"
    raster.draw_title(canvas, long, 200, 300, y=8)
    x0, y0, x1, y1 = ink_box(canvas)
    assert x1 - x0 <= 300 and y1 - y0 > 20  # two lines inside the room
