"""The built-in losses, with Tinker's math: per datum, a **sum** over tokens (never a mean), from the
target tokens' log-probabilities ``lp`` under the current weights and the datum's loss inputs.

=====================  ======================================  ==========================================
loss                   inputs                                  per-datum loss
=====================  ======================================  ==========================================
``cross_entropy``      target_tokens, weights                  ``-Σ w·lp``
``importance_sampling`` target_tokens, logprobs (q), advantages ``-Σ exp(lp - q)·A``
``ppo``                target_tokens, logprobs, advantages     ``-Σ min(r·A, clip(r, lo, hi)·A)``, r = exp(lp - q)
``cispo``              target_tokens, logprobs, advantages     ``-Σ sg(clip(r, lo, hi))·lp·A``
``dro``                target_tokens, logprobs, advantages     ``-Σ (lp·A - ½β(lp - q)²)``
``gspo``               target_tokens, logprobs, advantages,    ``-Σ min(s_t·A, clip(s_t, lo, hi)·A)``,
                       sequence_ratio_mask                     s_t = sg(s)·exp(lp - sg(lp)) (below)
=====================  ======================================  ==========================================

``gspo`` is Tinker's GSPO-token: the sequence ratio ``s = exp(mean over masked tokens of (lp - q))``,
the geometric mean of the token ratios over the tokens ``sequence_ratio_mask`` marks (non-zero), gives
every token its value, while each token keeps the gradient of its own ``lp``; clipping that one ratio
keeps or drops a whole sequence. A datum whose mask marks nothing has ``s = 1``.
``stable_reinforce`` is not built in: it needs information the hosted service records at sampling
time (``record_stability_info``), which posttrain's samplers do not keep.

``loss_fn_config`` defaults: ppo ``clip_low_threshold`` 0.8, ``clip_high_threshold`` 1.2; cispo 0.0 and 4.0
(one-sided, as Tinker documents); dro ``beta`` 0.05; gspo takes ppo's keys and defaults (0.8, 1.2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from posttrain.errors import PosttrainError

LossTerm = Callable[[torch.Tensor, Mapping[str, torch.Tensor], Mapping[str, float]], torch.Tensor]


@dataclass(frozen=True)
class LossSpec:
    name: str
    inputs: tuple[str, ...]  # besides target_tokens
    term: LossTerm
    defaults: Mapping[str, float] = field(default_factory=dict)

    def config(self, loss_fn_config: Mapping[str, float] | None) -> dict[str, float]:
        given = dict(loss_fn_config or {})
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise PosttrainError(f"loss_fn_config for {self.name!r} has unknown keys {unknown}; it takes: {known}")
        return {**self.defaults, **{k: float(v) for k, v in given.items()}}


def _cross_entropy(lp: torch.Tensor, x: Mapping[str, torch.Tensor], c: Mapping[str, float]) -> torch.Tensor:
    return -(x["weights"] * lp).sum()


def _ratio(lp: torch.Tensor, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return torch.exp(lp - x["logprobs"])


def _importance_sampling(lp: torch.Tensor, x: Mapping[str, torch.Tensor], c: Mapping[str, float]) -> torch.Tensor:
    return -(_ratio(lp, x) * x["advantages"]).sum()


def _ppo(lp: torch.Tensor, x: Mapping[str, torch.Tensor], c: Mapping[str, float]) -> torch.Tensor:
    ratio, adv = _ratio(lp, x), x["advantages"]
    clipped = torch.clamp(ratio, c["clip_low_threshold"], c["clip_high_threshold"])
    return -torch.minimum(ratio * adv, clipped * adv).sum()


def _cispo(lp: torch.Tensor, x: Mapping[str, torch.Tensor], c: Mapping[str, float]) -> torch.Tensor:
    coef = torch.clamp(_ratio(lp, x), c["clip_low_threshold"], c["clip_high_threshold"]).detach()
    return -(coef * lp * x["advantages"]).sum()


def _dro(lp: torch.Tensor, x: Mapping[str, torch.Tensor], c: Mapping[str, float]) -> torch.Tensor:
    penalty = (lp - x["logprobs"]) ** 2
    return -(lp * x["advantages"] - 0.5 * c["beta"] * penalty).sum()


def _gspo(lp: torch.Tensor, x: Mapping[str, torch.Tensor], c: Mapping[str, float]) -> torch.Tensor:
    marked = x["sequence_ratio_mask"] != 0
    token_log_ratio = lp.detach() - x["logprobs"]
    log_ratio = token_log_ratio[marked].mean() if bool(marked.any()) else torch.zeros((), device=lp.device)
    ratio = torch.exp(log_ratio + lp - lp.detach())  # the sequence's value, each token's own gradient
    adv = x["advantages"]
    clipped = torch.clamp(ratio, c["clip_low_threshold"], c["clip_high_threshold"])
    return -torch.minimum(ratio * adv, clipped * adv).sum()


_RL_INPUTS = ("logprobs", "advantages")
LOSSES: dict[str, LossSpec] = {
    "cross_entropy": LossSpec("cross_entropy", ("weights",), _cross_entropy),
    "importance_sampling": LossSpec("importance_sampling", _RL_INPUTS, _importance_sampling),
    "ppo": LossSpec("ppo", _RL_INPUTS, _ppo, {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}),
    "cispo": LossSpec("cispo", _RL_INPUTS, _cispo, {"clip_low_threshold": 0.0, "clip_high_threshold": 4.0}),
    "dro": LossSpec("dro", _RL_INPUTS, _dro, {"beta": 0.05}),
    "gspo": LossSpec("gspo", (*_RL_INPUTS, "sequence_ratio_mask"), _gspo,
                     {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}),
}
NOT_BUILT_IN = {
    "stable_reinforce": "it needs the stability information the hosted Tinker service records at sampling "
                        "time (record_stability_info), which posttrain does not keep; use ppo, cispo or gspo",
}


def get_loss(name: str) -> LossSpec:
    spec = LOSSES.get(name)
    if name in NOT_BUILT_IN:
        raise PosttrainError(f"loss_fn {name!r} is not supported by posttrain: {NOT_BUILT_IN[name]}")
    if spec is None:
        raise PosttrainError(f"unknown loss_fn {name!r}; built-in losses: {', '.join(LOSSES)} "
                             "(or use forward_backward_custom)")
    return spec
