"""Study D's six training scenarios (:data:`SCENARIOS`) and which of them are the first epochs of
a longer one (:func:`nested_plan`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    """One training scenario of study D."""

    key: str
    paper_epochs: int
    augment: bool
    lung_only: bool
    label: str


SCENARIOS: dict[str, Scenario] = {s.key: s for s in (
    Scenario("aug_5", 5, True, False, "all slices, augmentation, 5 epochs"),
    Scenario("aug_10", 10, True, False, "all slices, augmentation, 10 epochs"),
    Scenario("aug_15", 15, True, False, "all slices, augmentation, 15 epochs"),
    Scenario("aug_25", 25, True, False, "all slices, augmentation, 25 epochs"),
    Scenario("noaug_5", 5, False, False, "all slices, no augmentation, 5 epochs"),
    Scenario("lung_25", 25, True, True, "lung-only slices, augmentation, 25 epochs"),
)}


def nested_plan(epochs: dict[str, int]) -> dict[str, list[str]]:
    """The scenarios of ``epochs`` (key -> epochs) to train, each with the shorter scenarios of
    the same kind (augmentation, lung-only) that are its first epochs:
    ``{longest: [shorter, ...]}``, in :data:`SCENARIOS` order (ties: the later one is trained).

    The scenarios that differ only in their number of epochs (``aug_5``, ``aug_10``, ``aug_15``
    and ``aug_25``) start from the same weights, with the same optimizer state, data order and
    per-step learning-rate schedule; nothing in a run depends on how many epochs it will have,
    and early stopping (patience on validation accuracy) that ends the long run at epoch
    ``s < k`` would have ended the ``k``-epoch run there too. So the first ``k`` epochs of the
    longest run are the ``k``-epoch run (:class:`medrepro.training.callbacks.PrefixSnapshots`). The random
    streams of augmentation and dropout continue from run to run in either case: the draws are
    not the ones a separate run would make.
    """
    kinds: dict[tuple[bool, bool], list[str]] = {}
    for key, sc in SCENARIOS.items():
        if key in epochs:
            kinds.setdefault((sc.augment, sc.lung_only), []).append(key)
    plan = {}
    for keys in kinds.values():
        longest = max(reversed(keys), key=lambda k: epochs[k])
        plan[longest] = [k for k in keys if k != longest]
    return {k: plan[k] for k in SCENARIOS if k in plan}
