"""Tests of the pointing game: hits and misses, the dilation tolerance, ties, chance rates, CIs."""

from __future__ import annotations

import numpy as np
import pytest
from medrepro.analysis import xai_score


def _disc(shape, center, radius):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, center)) <= radius ** 2


def _bump(shape, center, width=3.0):
    grid = np.indices(shape)
    return np.exp(-sum((g - c) ** 2 for g, c in zip(grid, center)) / (2 * width ** 2))


def test_a_peak_inside_the_lesion_hits_and_far_outside_misses():
    mask = _disc((64, 64), (20, 20), 5)
    game = xai_score.pointing_game([_bump((64, 64), (21, 19)), _bump((64, 64), (50, 50))],
                                   [mask, mask])
    assert game.hits.tolist() == [True, False]
    assert game.peaks == [(21, 19), (50, 50)]


def test_the_tolerance_is_the_documented_dilation():
    mask = np.zeros((40, 40), dtype=bool)
    mask[20, 10:20] = True
    r = xai_score.DILATION_PX
    just_in = _bump((40, 40), (20 + r, 15))     # r px below the lesion: inside the tolerance
    just_out = _bump((40, 40), (20 + r + 1, 15))
    assert xai_score.pointing_game([just_in, just_out], [mask, mask]).hits.tolist() == [True, False]
    assert xai_score.pointing_game([just_in], [mask], radius=0).hits.tolist() == [False]


def test_three_d_maps_are_scored_the_same_way():
    mask = _disc((20, 20, 12), (5, 5, 6), 2)
    game = xai_score.pointing_game([_bump((20, 20, 12), (5, 6, 6)),
                                    _bump((20, 20, 12), (15, 15, 2))], [mask, mask])
    assert game.hits.tolist() == [True, False]


def test_a_plateau_points_at_its_middle_not_its_first_pixel():
    hm = np.zeros((30, 30))
    hm[0:10, 0:30] = 1.0  # a flat maximum along the top band
    assert xai_score.peak(hm) in {(4, 14), (4, 15), (5, 14), (5, 15)}  # centroid (4.5, 14.5)
    mask = np.zeros((30, 30), dtype=bool)
    mask[0, 0] = True  # np.argmax would say (0, 0): a hit by accident
    assert not xai_score.pointing_game([hm], [mask]).hits[0]


def test_an_all_zero_map_is_a_miss_and_counted():
    mask = _disc((16, 16), (0, 0), 3)  # argmax of zeros would land on (0, 0), inside
    game = xai_score.pointing_game([np.zeros((16, 16))], [mask])
    assert game.hits.tolist() == [False] and game.peaks == [None] and game.n_empty_maps == 1


def test_chance_is_the_dilated_mask_share_of_the_image_and_of_the_region():
    mask = np.zeros((10, 10), dtype=bool)
    mask[0:2, 0:5] = True  # 10 pixels
    region = np.zeros((10, 10), dtype=bool)
    region[0:5, :] = True  # 50 pixels, holding all of the dilated mask
    game = xai_score.pointing_game([_bump((10, 10), (0, 0))], [mask], regions=[region], radius=0)
    assert game.chance_image[0] == pytest.approx(0.10)
    assert game.chance_region[0] == pytest.approx(0.20)
    grown = xai_score.dilate(mask, radius=1)
    assert grown.sum() == 10 + 5 + 2  # one row below and one column right (4-neighbours)
    assert xai_score.pointing_game([_bump((10, 10), (0, 0))], [mask], radius=1).chance_image[0] \
        == pytest.approx(0.17)


def test_summary_rate_ci_and_chance():
    mask = _disc((32, 32), (16, 16), 4)
    maps = [_bump((32, 32), (16, 16))] * 6 + [_bump((32, 32), (2, 2))] * 4
    row = xai_score.summary(xai_score.pointing_game(maps, [mask] * 10))
    assert row["n_scored"] == 10 and row["hits"] == 6
    assert row["hit_rate"] == pytest.approx(0.6)
    # Wilson's interval of 6/10
    assert (row["hit_rate_lo"], row["hit_rate_hi"]) == pytest.approx((0.3127, 0.8318), abs=1e-4)
    assert row["chance_image"] == pytest.approx(xai_score.dilate(mask).mean())
    assert np.isnan(row["chance_region"])


def test_six_hits_of_six_keep_an_interval():
    mask = _disc((32, 32), (16, 16), 4)
    row = xai_score.summary(xai_score.pointing_game([_bump((32, 32), (16, 16))] * 6, [mask] * 6))
    assert row["hit_rate"] == 1.0 and row["hit_rate_hi"] == pytest.approx(1.0)
    assert row["hit_rate_lo"] == pytest.approx(0.6097, abs=1e-4)  # a bootstrap gives [1, 1]


def test_summary_of_nothing_scored_is_nan():
    row = xai_score.summary(xai_score.pointing_game([], []))
    assert row["n_scored"] == 0 and np.isnan(row["hit_rate"]) and np.isnan(row["hit_rate_lo"])


def test_mismatched_shapes_and_empty_masks_raise():
    with pytest.raises(ValueError, match=r"map of shape \(8, 8\), mask of shape \(4, 4\)"):
        xai_score.pointing_game([np.ones((8, 8))], [np.ones((4, 4), dtype=bool)])
    with pytest.raises(ValueError, match="empty lesion mask"):
        xai_score.pointing_game([np.ones((8, 8))], [np.zeros((8, 8), dtype=bool)])
    with pytest.raises(ValueError, match="2 maps, 1 masks"):
        xai_score.pointing_game([np.ones((8, 8))] * 2, [np.ones((8, 8), dtype=bool)])


def test_take_keeps_the_chosen_items():
    mask = _disc((16, 16), (8, 8), 3)
    game = xai_score.pointing_game([_bump((16, 16), (8, 8)), np.zeros((16, 16))], [mask, mask])
    part = game.take(np.array([False, True]))
    assert part.hits.tolist() == [False] and part.peaks == [None] and part.n_empty_maps == 1
