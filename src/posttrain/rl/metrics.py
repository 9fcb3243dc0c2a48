"""Rollout metrics (names and definitions from tinker-cookbook's ``rl/metric_util.py``).

:func:`trajectory_metrics` reports a batch under ``env/all/`` (and ``env/<tag>/`` for each tag that
picks a strict subset of the groups): token and turn counts, ``reward/total`` (mean total reward per
trajectory), the means of every transition and per-trajectory metric (``correct``, ``format``, ...),
``by_group/frac_mixed | frac_all_good | frac_all_bad`` (groups whose rewards differ; all equal and
>= 0.5; all equal and below), plus two posttrain additions: ``frac_length_stop`` (the share of turns
whose sample stopped at max_tokens or the context end) and, when trajectories were dropped,
``rollout_errors/total``, ``rollout_errors/<reason>`` and ``rollout_errors/<reason>/<ExceptionClass>`` counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from posttrain.rl.types import Metrics, TrajectoryGroup

GOOD_THRESHOLD = 0.5


def group_metrics(group: TrajectoryGroup) -> Metrics:
    """One group's metrics, unprefixed."""
    return _metrics([group])


def trajectory_metrics(groups: Sequence[TrajectoryGroup],
                       tags_per_group: Sequence[Sequence[str]] | None = None) -> Metrics:
    """A batch's metrics, prefixed; ``tags_per_group`` defaults to each group's ``tags``."""
    tags = tags_per_group if tags_per_group is not None else [g.tags for g in groups]
    if len(tags) != len(groups):
        raise ValueError(f"{len(groups)} groups but {len(tags)} tag lists")
    by_tag: dict[str, list[TrajectoryGroup]] = defaultdict(list)
    for group, group_tags in zip(groups, tags, strict=True):
        for tag in group_tags:
            by_tag[tag].append(group)
    out: Metrics = {}
    if any(len(gs) < len(groups) for gs in by_tag.values()):
        for tag, gs in by_tag.items():
            out.update({f"env/{tag}/{k}": v for k, v in _metrics(gs).items()})
    out.update({f"env/all/{k}": v for k, v in _metrics(groups).items()})
    return out


def by_group_metrics(groups: Sequence[TrajectoryGroup], good_threshold: float = GOOD_THRESHOLD) -> Metrics:
    """Fractions of groups with mixed rewards, all good, all bad (groups with no trajectory left out)."""
    rewards = [g.get_total_rewards() for g in groups if g.trajectories]
    n = len(rewards)
    mixed = sum(len(set(r)) > 1 for r in rewards)
    good = sum(len(set(r)) == 1 and r[0] >= good_threshold for r in rewards)
    return {"by_group/frac_mixed": mixed / n if n else 0.0,
            "by_group/frac_all_good": good / n if n else 0.0,
            "by_group/frac_all_bad": (n - mixed - good) / n if n else 0.0}


def _metrics(groups: Sequence[TrajectoryGroup]) -> Metrics:
    trajs = [t for g in groups for t in g.trajectories]
    turns = [tr for t in trajs for tr in t.transitions]
    n_turns, n_eps = len(turns), len(trajs)
    ac = sum(len(tr.ac_tokens) for tr in turns)
    ob = sum(tr.ob.length for tr in turns)
    rewards = [r for g in groups for r in g.get_total_rewards()]
    out: Metrics = {
        "ac_tokens_per_turn": ac / n_turns if n_turns else 0.0,
        "ob_tokens_per_turn": ob / n_turns if n_turns else 0.0,
        "turns_per_episode": n_turns / n_eps if n_eps else 0.0,
        "total_episodes": float(n_eps),
        "total_turns": float(n_turns),
        "total_ac_tokens": float(ac),
        "total_ob_tokens": float(ob),
        "reward/total": float(np.mean(rewards)) if rewards else 0.0,
        "frac_length_stop": sum(tr.stop_reason == "length" for tr in turns) / n_turns if n_turns else 0.0,
    }
    out.update(_dict_mean([tr.metrics for tr in turns] + [m for g in groups for m in g.metrics_per_traj]))
    out.update(by_group_metrics(groups))
    errors = [e for g in groups for e in g.rollout_errors]
    if errors:
        counts = Counter(e.reason for e in errors) + Counter(f"{e.reason}/{e.error_type}" for e in errors)
        out.update({f"rollout_errors/{k}": float(v) for k, v in counts.items()})
        out["rollout_errors/total"] = float(len(errors))
    return out


def _dict_mean(dicts: Sequence[Metrics]) -> Metrics:
    """Each key's mean over the dicts that have it."""
    values: dict[str, list[float]] = defaultdict(list)
    for d in dicts:
        for k, v in d.items():
            values[k].append(float(v))
    return {k: float(np.mean(v)) for k, v in values.items()}
