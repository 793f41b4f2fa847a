"""The accuracy-latency Pareto front when latencies are known only within intervals.

A point leaves the front only if another point is at least as accurate AND faster
beyond both confidence intervals (the other's upper bound is below this one's lower
bound). A point that stays on the front although a point at least as accurate has an
overlapping interval is a tie: the data cannot say which of the two is faster, so
they are not ranked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

FRONT = "front"
TIE = "tie"
DOMINATED = "dominated"


@dataclass(frozen=True)
class FrontStatus:
    """Where one point stands.

    `state` is FRONT, TIE or DOMINATED; `others` holds the indices of the points that
    dominate it (DOMINATED) or whose intervals it ties with (TIE); empty for FRONT.
    """

    state: str
    others: tuple[int, ...] = ()


def pareto_front(top1: Sequence[float], ci_low: Sequence[float], ci_high: Sequence[float]) -> list[FrontStatus]:
    """The front status of every point (higher `top1` is better, lower latency is better).

    `ci_low[i]`..`ci_high[i]` is point i's latency interval (e.g. the 95% interval of
    its median). Points with equal accuracy count as "at least as accurate" both ways.
    """
    if not len(top1) == len(ci_low) == len(ci_high):
        raise ValueError("pareto_front needs one accuracy and one interval per point")
    statuses = []
    for i in range(len(top1)):
        rivals = [j for j in range(len(top1)) if j != i and top1[j] >= top1[i]]
        dominating = tuple(j for j in rivals if ci_high[j] < ci_low[i])
        if dominating:
            statuses.append(FrontStatus(DOMINATED, dominating))
            continue
        tied = tuple(j for j in rivals if ci_low[j] <= ci_high[i])
        statuses.append(FrontStatus(TIE, tied) if tied else FrontStatus(FRONT))
    return statuses
