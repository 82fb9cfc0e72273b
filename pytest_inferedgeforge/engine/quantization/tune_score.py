"""How the int8 search's trials compare (engine/quantization/tune.py): passed or not, how close a failing one
comes, which one the search selects, and a trial's figures in one line."""

from __future__ import annotations

from pytest_inferedgeforge.model.records.tuning import TuningTrial


def ms(value: float | None) -> str:
    return f"{value:.3f} ms" if value is not None else "unmeasured"


def describe(trial: TuningTrial) -> str:
    """A trial's figures in one line."""
    if trial.error:
        return f"error: {trial.error}"
    parity = trial.parity
    parts = [f"min cosine {parity.min_cosine}" if parity else "no parity"]
    if parity and parity.min_channel_cosine is not None:
        parts.append(f"min channel cosine {parity.min_channel_cosine}")
    parts.append(f"{len(trial.float_nodes)} float node(s)")
    parts.append(f"median {ms(trial.median_ms)}")
    if parity and parity.failures:
        parts.append(parity.failures[0])
    return ", ".join(parts)


def failing_score(trial: TuningTrial) -> tuple[float, float, float, float]:
    """How close a failing trial comes: fewer failed checks, then fewer collapsed channels (6 of 22 score channels
    constant is closer than 17, though both have a channel cosine of 0), then the lowest channel cosine, then the
    lowest cosine, rounded so that noise between two equally broken artifacts is no improvement."""
    parity = trial.parity
    if trial.error or parity is None:
        return (-1e9, -1e9, -2.0, -2.0)
    channel = parity.min_channel_cosine if parity.min_channel_cosine is not None else 1.0
    cosine = parity.min_cosine if parity.min_cosine is not None else -1.0
    return (-float(len(parity.failures)), -float(parity.collapsed_channels or 0), round(channel, 3), round(cosine, 4))


def passed(trial: TuningTrial) -> bool:
    return trial.parity is not None and trial.parity.passed


def select(trials: list[TuningTrial], *, fewest_float: bool = False) -> TuningTrial:
    """The fastest passing trial (``fewest_float``: the one with the fewest float nodes, as on a simulator whose
    latency says nothing); else the failing one with the best figures."""
    passing = [trial for trial in trials if passed(trial)]
    if passing:
        return min(passing, key=lambda t: (len(t.float_nodes) if fewest_float else 0,
                                           t.median_ms if t.median_ms is not None else float("inf"), t.trial))
    return max(trials, key=lambda t: (failing_score(t), -t.trial))
