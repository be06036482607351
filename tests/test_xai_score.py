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


# ---- baselines: scored by the same code as the methods
def test_baselines_point_at_the_brightest_pixel_the_strongest_edge_and_anywhere():
    img = np.zeros((2, 32, 32, 3), dtype=np.float32)
    img[0, :, 16:] = 0.4              # image 0: one vertical step edge between columns 15 and 16
    img[0, 5, 25] = 0.6               # and its brightest pixel
    img[1, 20, 12] = 1.0
    maps = xai_score.baseline_maps(img, seed=3)
    assert set(maps) == set(xai_score.BASELINES)
    for m in maps.values():
        assert m.shape == (2, 32, 32) and m.dtype == np.float32
        assert m.min() >= 0 and m.max() <= 1
    assert xai_score.peak(maps[xai_score.BRIGHTEST][0]) == (5, 25)
    assert xai_score.peak(maps[xai_score.BRIGHTEST][1]) == (20, 12)
    edge = maps[xai_score.SOBEL][0]
    assert edge[10:30, 15:17].min() > edge[10:30, :14].max()  # the edge, not the flat parts
    again = xai_score.baseline_maps(img, seed=3)[xai_score.RANDOM]
    np.testing.assert_array_equal(again, maps[xai_score.RANDOM])
    assert not np.array_equal(xai_score.baseline_maps(img, seed=4)[xai_score.RANDOM], again)


def test_baselines_of_single_channel_volumes():
    vol = np.zeros((1, 12, 12, 8), dtype=np.float32)
    vol[0, 3, 4, 5] = 2.0
    maps = xai_score.baseline_maps(vol, channel_axis=None)
    assert maps[xai_score.BRIGHTEST].shape == (1, 12, 12, 8)
    assert xai_score.peak(maps[xai_score.BRIGHTEST][0]) == (3, 4, 5)
    with pytest.raises(ValueError, match="expected"):
        xai_score.baseline_maps(np.zeros((12, 12)), channel_axis=None)


def test_score_maps_is_the_pointing_game_of_each_map_set():
    mask = _disc((32, 32), (10, 10), 3)
    masks = [mask, mask]
    maps = {"method": np.stack([_bump((32, 32), (10, 10)), _bump((32, 32), (25, 25))]),
            "copy of a baseline": np.stack([_bump((32, 32), (25, 25))] * 2)}
    games = xai_score.score_maps(maps, masks)
    for name, m in maps.items():
        alone = xai_score.pointing_game(m, masks)
        assert games[name].hits.tolist() == alone.hits.tolist()
        assert games[name].peaks == alone.peaks
    assert games["method"].hits.tolist() == [True, False]


def test_a_random_map_hits_at_the_chance_rate():
    rng = np.random.default_rng(0)
    masks = [_disc((24, 24), tuple(rng.integers(6, 18, 2)), 3) for _ in range(400)]
    imgs = np.zeros((400, 24, 24, 1), dtype=np.float32)
    game = xai_score.score_maps({"r": xai_score.baseline_maps(imgs, seed=1)[xai_score.RANDOM]},
                                masks)["r"]
    assert abs(game.hits.mean() - game.chance_image.mean()) < 0.06  # ~0.22 expected


def test_stratified_hit_rates_per_tertile():
    hits = np.array([True, True, False, False, True, False])
    game = xai_score.PointingGame(hits, [(0, 0)] * 6, np.full(6, 0.1), np.full(6, np.nan))
    rows = xai_score.stratified({"m": game}, np.array([1, 2, 3, 4, 5, 6.0]), by="lesion size")
    assert [r["bin"] for r in rows] == ["low", "middle", "high"]
    assert [r["n_scored"] for r in rows] == [2, 2, 2]
    assert [r["hits"] for r in rows] == [2, 0, 1]
    assert rows[0]["stratum"] == "lesion size" and rows[0]["bin_lo"] == 1.0
    with pytest.raises(ValueError, match="3 values for 6 items"):
        xai_score.stratified({"m": game}, np.ones(3), by="x")
