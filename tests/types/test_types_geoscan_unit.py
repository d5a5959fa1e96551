"""The geo scan's shortcuts. The bounding box (geoscan.bands): every point that
passes Redis's radius or box check lies inside the grid rows and columns it
keeps, near the poles, across the antimeridian and on the border, so skipping
the rest cannot change a reply. The grid-arithmetic bounds (geoscan.plane):
points taken or dropped without trigonometry are the ones the exact check
takes or drops, down to 1e-12 of the radius from the edge."""
from __future__ import annotations

import math
import random

import pytest

from distcache.server.types import geohash, geoscan
from distcache.server.types.zset import ZSet


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


def test_plane_bounds_agree_with_the_exact_check():
    rng = random.Random(11)
    for trial in range(400):
        lon, lat = rng.uniform(-179, 179), rng.uniform(-84, 84)
        if trial % 4 == 0:
            lat = rng.choice([0.0, 1e-5, -1e-5, 84.9, -84.9])
        r = 10 ** rng.uniform(-1, 6)
        z = ZSet()
        for i in range(100):  # points within 1e-12 .. 1e-1 of r, or inside it
            angle = rng.uniform(0, 2 * math.pi)
            dist = r * (1 + rng.choice([1, -1]) * 10 ** rng.uniform(-12, -1)) if i % 3 \
                else r * rng.random()
            dlat = dist * math.cos(angle) / geohash.EARTH_RADIUS / geohash.D_R
            plat = lat + dlat
            plon = lon + dist * math.sin(angle) / geohash.EARTH_RADIUS / geohash.D_R \
                / max(math.cos(lat * geohash.D_R), 1e-3)
            if -180 <= plon <= 180 and -85.05 <= plat <= 85.05:
                z.add(b"m%d" % i, float(geohash.lonlat_to_score(plon, plat)))
        grid = geoscan.bands(lon, lat, r, r, False)
        masks, plane = geoscan.masks(grid), geoscan.plane(lon, lat, r, grid)
        for cell in geohash.search_cells(lon, lat, r, r, r):
            if cell == (0, 0):
                continue
            low, high = geohash.score_range(cell)
            chunks = z.score_slices(float(low), float(high))
            exact, taken, measured = [], [], []
            geoscan.scan(chunks, lon, lat, False, 0.0, 0.0, r, exact, 0, masks)
            geoscan.scan(chunks, lon, lat, False, 0.0, 0.0, r, taken, 0, masks, plane, True,
                         geoscan.square(plane) if plane else None)
            geoscan.scan(chunks, lon, lat, False, 0.0, 0.0, r, measured, 0, masks, plane)
            assert [p[2] for p in taken] == [p[2] for p in exact], (lon, lat, r)
            assert measured == exact, (lon, lat, r)
