"""The geo scan's bounding box (geoscan.bands): every point that passes Redis's
radius or box check lies inside the grid rows and columns it keeps, near the
poles, across the antimeridian and on the border, so skipping the rest cannot
change a reply."""
from __future__ import annotations

import math
import random

import pytest

from distcache.server.types import geohash, geoscan


@pytest.mark.parametrize("box", [False, True])
def test_matches_lie_inside_the_bands(box):
    rng = random.Random(5 + box)
    centres = [(13.36, 38.11), (179.999, 0.5), (-179.999, -10.0), (0.0, 84.9),
               (100.0, -84.9), (0.0, 0.0), (-179.98, 60.0)]
    for lon, lat in centres:
        for size in (1.0, 50.0, 2000.0, 30000.0, 400000.0):
            half_w, half_h = (size, size / 2) if box else (size, size)
            lat_lo, lat_hi, lon_lo, lon_hi = geoscan.bands(lon, lat, half_w, half_h, box)
            reach = 1.2 * max(half_w, half_h) / geohash.EARTH_RADIUS / geohash.D_R
            for _ in range(600):
                # points around the centre, many near the search's border
                angle = rng.uniform(0, 2 * math.pi)
                r = reach * rng.choice([rng.random(), 1 / 1.2, 1 / 1.2 + 1e-7])
                plat = max(min(lat + r * math.sin(angle), 85.05), -85.05)
                plon = lon + r * math.cos(angle) / max(math.cos(plat * geohash.D_R), 1e-3)
                plon = (plon + 180.0) % 360.0 - 180.0
                score = geohash.lonlat_to_score(plon, plat)
                qlon, qlat = geohash.score_to_lonlat(float(score))
                if box:
                    ok = geohash.in_box(2 * half_w, 2 * half_h, lon, lat, qlon,
                                        qlat) is not None
                else:
                    ok = geohash.radius_checker(lon, lat, half_w)(qlon, qlat) is not None
                if ok:
                    ilat, ilon = geohash.deinterleave(score)
                    assert lat_lo <= ilat <= lat_hi and lon_lo <= ilon <= lon_hi, \
                        (lon, lat, size, qlon, qlat)
