"""Ertl's cardinality estimator over the registers, as Redis 5+ computes it."""
from __future__ import annotations

import math

from .layout import Q, REGISTERS

_ALPHA_INF = 0.721347520444481703680  # 0.5 / ln(2)


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if previous == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1 - x) ** 2 * y
        if previous == z:
            return z / 3


def estimate(registers: bytes) -> int:
    """Ertl's estimator over the register histogram, as Redis 5+ computes it."""
    histogram = [0] * 64
    for value in range(max(registers) + 1):
        histogram[value] = registers.count(value)
    m = float(REGISTERS)
    z = m * _tau((m - histogram[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histogram[j]
        z *= 0.5
    z += m * _sigma(histogram[0] / m)
    return int(math.floor(_ALPHA_INF * m * m / z + 0.5))  # llroundl: half away from 0
