"""The promotion gate's statistics: what a test split can prove about a model, in plant terms.

- **Escapes** are defects the model decides `ok` on its own: the error that ships a bad part. From
  k escapes among n defects, the gate takes the one-sided 95% Clopper–Pearson upper bound on the
  escape rate (SciPy's exact binomial interval): 0 in 100 still allows 2.95%, 1 in 100 allows
  4.66%. A candidate serves only if that bound is at or below the target. And a split with too few
  defects cannot prove the target at all: with none passed, 299 defects prove ≤ 1%.
- **Against the serving model**, image by image: McNemar's exact test on the images where exactly
  one of the two errs (statsmodels). A candidate that errs significantly more often is refused; a
  difference chance explains is not held against it.
- **Escapes weigh more than false rejects.** McNemar counts a defect passed as ok and a good part
  held back alike, so a candidate that trades five false rejects for five escapes scored p = 1.0
  and was promoted. The defects alone are compared too: one-sided, the defects only the candidate
  passes against the defects only the serving model passes (an exact sign test), and a candidate
  that passes more of them, beyond chance, is refused whatever it gains on good parts.
- **A test split wears out.** Each verdict on the same split is another look at it, and choosing
  among candidates by their results erodes what the split can prove (the reusable-holdout problem:
  https://doi.org/10.1126/science.aaa9375; with k looks, a 5% error per look allows up to k × 5% in
  all). After `split_reuse_limit` verdicts on one split the gate refuses, and asks for fresh
  labelled images: the reviewers' decisions since (scripts.training.retrain_from_reviews).
- **The share sent to people** is bounded too: the one-sided 95% Wilson upper bound must stay
  within the limit, or reviewers drown.

https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.binomtest.html,
https://www.statsmodels.org/stable/generated/statsmodels.stats.contingency_tables.mcnemar.html,
https://www.statsmodels.org/stable/generated/statsmodels.stats.proportion.proportion_confint.html
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from inspection import routing
from inspection.layout import DEFECT, OK
from scripts.training.metrics import Outcome

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Rules:
    escape_target: float = 0.01  # the escape rate the plant accepts, proven at 95%
    max_unclear: float = 0.30  # the share of photos people can take, proven at 95%
    alpha: float = 0.05  # McNemar and the escape test: how sure "worse than the serving model" must be
    split_reuse_limit: int = 5  # verdicts one test split may give before it must be renewed


@dataclass(frozen=True)
class Decisions:
    """What a model decides on each image of the split, at one threshold."""

    decided: tuple[str | None, ...]  # the label decided automatically, None: sent to a person
    truth: tuple[str, ...]

    @classmethod
    def of(cls, outcomes: Sequence[Outcome], threshold: float) -> Decisions:
        return cls(
            tuple(routing.decided_label(o.label, o.score, o.unclear_reason, threshold) for o in outcomes),
            tuple(o.truth for o in outcomes),
        )

    @property
    def images(self) -> int:
        return len(self.truth)

    @property
    def defects(self) -> int:
        return sum(1 for t in self.truth if t == DEFECT)

    @property
    def escapes(self) -> int:
        return sum(1 for t, d in zip(self.truth, self.decided, strict=True) if t == DEFECT and d == OK)

    @property
    def errors(self) -> list[bool]:
        return [d is not None and d != t for t, d in zip(self.truth, self.decided, strict=True)]

    @property
    def unclear(self) -> int:
        return sum(1 for d in self.decided if d is None)


def escape_upper_bound(escapes: int, defects: int, confidence: float = CONFIDENCE) -> float:
    """One-sided upper bound on the escape rate (Clopper–Pearson): the two-sided exact interval at
    2·confidence − 1 has this upper end."""
    if defects == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(
        binomtest(escapes, defects).proportion_ci(confidence_level=2 * confidence - 1, method="exact").high
    )


def defects_needed(target: float, confidence: float = CONFIDENCE) -> int:
    """The fewest defects that, with none passed as ok, prove an escape rate at or below `target`."""
    return math.ceil(math.log(1 - confidence) / math.log(1 - target))


def unclear_upper_bound(unclear: int, images: int, confidence: float = CONFIDENCE) -> float:
    """One-sided upper bound on the share sent to people (Wilson)."""
    if images == 0:
        return 1.0
    from statsmodels.stats.proportion import proportion_confint

    return float(proportion_confint(unclear, images, alpha=2 * (1 - confidence), method="wilson")[1])


def more_escapes_p(candidate_only: int, serving_only: int) -> float:
    """One-sided exact sign test on the defects exactly one model passes as ok: how likely the
    candidate passes at least `candidate_only` of them if both were equally safe."""
    if candidate_only + serving_only == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(candidate_only, candidate_only + serving_only, 0.5, alternative="greater").pvalue)


def mcnemar_p(candidate_only: int, serving_only: int) -> float:
    """Exact McNemar p-value (two-sided) on the discordant pairs: images only the candidate gets
    wrong, and images only the serving model gets wrong."""
    if candidate_only + serving_only == 0:
        return 1.0
    from statsmodels.stats.contingency_tables import mcnemar

    return float(mcnemar([[0, candidate_only], [serving_only, 0]], exact=True).pvalue)


@dataclass(frozen=True)
class Verdict:
    refusals: list[str]
    figures: dict  # what the table prints and the registry keeps


def judge(
    serving: Decisions | None, candidate: Decisions, rules: Rules, earlier_verdicts: int = 0
) -> Verdict:
    """Why the candidate may not serve (empty: it may), with the figures behind it. `serving` is
    None when no model serves yet (day zero: people decide everything, so there is nothing to pair).
    `earlier_verdicts`: how many verdicts this test split has given before this one."""
    refusals = []
    bound = escape_upper_bound(candidate.escapes, candidate.defects)
    needed = defects_needed(rules.escape_target)
    unclear_bound = unclear_upper_bound(candidate.unclear, candidate.images)
    figures = {
        "images": candidate.images,
        "defects": candidate.defects,
        "escapes": candidate.escapes,
        "escape_upper_bound": round(bound, 4),
        "defects_needed": needed,
        "unclear_share": round(candidate.unclear / candidate.images, 4) if candidate.images else 0.0,
        "unclear_upper_bound": round(unclear_bound, 4),
        "errors": sum(candidate.errors),
    }
    if candidate.defects < needed:
        refusals.append(
            f"the split cannot prove an escape rate ≤ {rules.escape_target:.1%}: it has {candidate.defects} "
            f"defects, and even with none passed as ok it takes {needed}. Add reviewed defects to the test "
            "split (scripts.training.retrain_from_reviews), or agree a higher --escape-target"
        )
    elif bound > rules.escape_target:
        refusals.append(
            f"it passes {candidate.escapes} of {candidate.defects} defects as ok: the escape rate may be as "
            f"high as {bound:.2%} (95% upper bound), above the target of {rules.escape_target:.2%}"
        )
    if unclear_bound > rules.max_unclear:
        refusals.append(
            f"it sends {candidate.unclear} of {candidate.images} photos to people: up to {unclear_bound:.1%} "
            f"(95% upper bound), above the limit of {rules.max_unclear:.0%}"
        )
    if serving is not None:
        if serving.truth != candidate.truth:
            raise ValueError("the two models were not judged on the same images")
        only_candidate = sum(1 for c, s in zip(candidate.errors, serving.errors, strict=True) if c and not s)
        only_serving = sum(1 for c, s in zip(candidate.errors, serving.errors, strict=True) if s and not c)
        p = mcnemar_p(only_candidate, only_serving)
        figures.update(
            only_candidate_wrong=only_candidate, only_serving_wrong=only_serving, mcnemar_p=round(p, 4)
        )
        if only_candidate > only_serving and p < rules.alpha:
            refusals.append(
                f"it is wrong on {only_candidate} images the serving model gets right, and right on "
                f"only {only_serving} the serving model gets wrong: worse, beyond chance "
                f"(McNemar exact p = {p:.3f})"
            )
        passed = [
            (c, s)
            for c, s, t in zip(candidate.decided, serving.decided, candidate.truth, strict=True)
            if t == DEFECT
        ]
        new_escapes = sum(1 for c, s in passed if c == OK and s != OK)
        fixed_escapes = sum(1 for c, s in passed if s == OK and c != OK)
        escape_p = more_escapes_p(new_escapes, fixed_escapes)
        figures.update(new_escapes=new_escapes, fixed_escapes=fixed_escapes, escapes_p=round(escape_p, 4))
        if new_escapes > fixed_escapes and escape_p < rules.alpha:
            refusals.append(
                f"it passes as ok {new_escapes} defects the serving model caught, and catches only "
                f"{fixed_escapes} the serving model passed: more escapes, beyond chance (exact sign test "
                f"p = {escape_p:.3f}), whatever it gains on good parts"
            )
    figures["split_verdicts"] = earlier_verdicts + 1
    if earlier_verdicts >= rules.split_reuse_limit:
        refusals.append(
            f"this test split has already judged {earlier_verdicts} candidates (the limit is "
            f"{rules.split_reuse_limit}): what it proves wears out with every look. Renew it with fresh "
            "labelled images, the reviewers' decisions since it was made "
            "(python -m scripts.training.retrain_from_reviews …), then promote with --import-file of it"
        )
    return Verdict(refusals, figures)
