"""Training inside a wall-clock budget (``inspect-model train --time-budget MINUTES``).

A line engineer retraining on a workstation asks "done in 15 minutes?", not "how many epochs?". With a
budget, ``--epochs`` becomes an upper bound: after every epoch the number of epochs that still fit is
re-planned from the epoch times measured so far, and the cosine learning-rate schedule is stretched or
shrunk to end at the re-planned last epoch, so a run cut by the clock still finishes at a low learning
rate instead of stopping mid-descent (Ultralytics' ``time`` argument re-plans the same way, once). A
machine that gets busier half-way through still finishes on time, with fewer epochs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EpochClock", "adjustable_cosine", "budget_callback", "finish_reserve_s", "split_deadline"]


def finish_reserve_s(budget_s: float) -> float:
    """Time kept back for what follows the last epoch: best weights, export, validation metrics, plots.

    3 % was not enough on a loaded machine: 2,000 images, 15 minutes, load average 4-5 ended 1.7 s late.
    """
    return min(90.0, max(15.0, 0.05 * budget_s))


def split_deadline(now: float, deadline: float, map_epochs: int, epochs: int) -> float:
    """The deadline of the defect-map phase: its share of the time left, as its share of the epochs."""
    if map_epochs <= 0:
        return now
    return now + (deadline - now) * map_epochs / (map_epochs + epochs)


@dataclass
class EpochClock:
    """Plans how many epochs fit before ``deadline`` from the epochs measured so far."""

    deadline: float
    cap: int
    durations: list[float] = field(default_factory=list)
    planned: int = 0  # the latest plan: epochs this phase runs in all

    def typical_epoch_s(self) -> float:
        # The first epoch of a phase also traces the graph: leave it out once others are known, and
        # follow the latest epochs so that a machine getting busier is noticed.
        settled = self.durations[1:] or self.durations
        recent = settled[-3:]
        return sum(recent) / len(recent)

    def planned_epochs(self, now: float) -> int:
        """Epochs in the phase: those run plus those that still fit, at most ``cap``, at least those run."""
        done = len(self.durations)
        if not done:
            return self.cap
        fit = max(0, math.floor((self.deadline - now) / self.typical_epoch_s()))
        return max(done, min(self.cap, done + fit))


def adjustable_cosine(lr: float, total_steps: int, alpha: float = 0.05) -> Any:
    """Keras' cosine decay to ``alpha * lr``, with a horizon that can move during training.

    ``schedule.total_steps.assign(n)`` re-plans it; the value is read inside the compiled train step.
    """
    import keras
    from keras import ops

    class AdjustableCosine(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self) -> None:
            self.total_steps = keras.Variable(float(max(1, total_steps)), trainable=False, name="lr_horizon")

        def __call__(self, step: Any) -> Any:
            progress = ops.minimum(ops.cast(step, "float32") / self.total_steps, 1.0)
            cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
            return lr * ((1.0 - alpha) * cosine + alpha)

        def get_config(self) -> dict[str, float]:
            return {"lr": lr, "total_steps": float(self.total_steps.numpy()), "alpha": alpha}

    return AdjustableCosine()


def budget_callback(clock: EpochClock, steps_per_epoch: int, schedule: Any = None) -> Any:
    """A Keras callback: measures each epoch, re-plans, moves the schedule's horizon, stops on time."""
    import keras

    class TimeBudget(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self._began = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            now = time.monotonic()
            clock.durations.append(now - self._began)
            clock.planned = planned = clock.planned_epochs(now)
            if schedule is not None:
                schedule.total_steps.assign(float(planned * steps_per_epoch))
            if len(clock.durations) >= planned:
                self.model.stop_training = True

    return TimeBudget()
