"""``decision:``: how scores become OK/NG verdicts and events."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agent.config.base import ConfigModel

__all__ = ["DecisionConfig"]

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class DecisionConfig(ConfigModel):
    """Thresholds come from the model card; these settings adjust them and debounce the verdicts."""

    sensitivity: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="0..1; 0.5 uses the model card's thresholds as they are, higher flags more parts as NG.",
    )
    thresholds: dict[str, Fraction] = Field(
        default_factory=dict,
        description="Label -> threshold 0..1 overriding the card's threshold for that label; "
        '"defect" is the good/defect threshold. A score equal to the threshold is good.',
    )
    min_consecutive: int = Field(
        default=1,
        ge=1,
        description="Frames (or parts) in a row above threshold before NG (continuous and interval modes).",
    )
    cooldown_s: float = Field(
        default=0.0,
        ge=0,
        description="Seconds after an NG event during which no new event is raised for the same camera.",
    )
