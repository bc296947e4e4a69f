"""The `sensors:` config section, and the cards: valid with cameras only, sensors only or both."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from agent.config import ConfigError, parse_config
from agent.modelcard import card_path_for, load_series_card
from agent.status import InspectError
from tests.agent_harness import DEMO_MODEL

CAMERA = {"line1": {"source": "line.avi"}}
GROUP = {"model": "press.tflite", "source": {"mqtt": {"topics": [{"topic": "plc/+", "field": "v"}]}}}


def _parse(**sections: Any) -> Any:
    return parse_config(yaml.safe_dump(sections))


def test_cameras_only_sensors_only_and_both_are_valid() -> None:
    assert _parse(cameras=CAMERA).sensors == {}
    only = _parse(sensors={"press1": GROUP}, decision={"cooldown_s": 5})
    assert only.cameras == {} and only.sensor_decision("press1").cooldown_s == 5  # top level merged in
    both = _parse(cameras=CAMERA, sensors={"press1": {**GROUP, "decision": {"min_consecutive": 3}}})
    assert both.sensor_decision("press1").min_consecutive == 3


@pytest.mark.parametrize(
    ("sections", "path", "words"),
    [
        ({}, "cameras", "or a sensor group"),  # nothing to inspect
        ({"cameras": CAMERA, "sensors": {"line1": GROUP}}, "sensors", "topics would clash"),  # same id
        ({"sensors": {"p": {**GROUP, "model": "p.h5"}}}, "sensors.p.model", "must be a .tflite"),
        ({"sensors": {"p": {**GROUP, "source": {}}}}, "sensors.p.source", "one of mqtt, serial or csv"),
        ({"sensors": {"p": {**GROUP, "source": {"csv": {"path": "a.csv", "speed": -1}}}}},
         "sensors.p.source.csv.speed", "greater than or equal to 0"),
        ({"sensors": {"p": {**GROUP, "max_gap_s": 0}}}, "sensors.p.max_gap_s", "greater than 0"),
        ({"sensors": {"p": {**GROUP, "source": {"mqtt": {"topics": [
            {"topic": "a", "channel": "t", "fields": {"p": "p"}}]}}}}},
         "sensors.p.source.mqtt.topics.0.fields", "not both"),
        ({"sensors": {"p": {**GROUP, "colour": 1}}}, "sensors.p.colour", "unknown key"),  # unknown key
    ],
)  # fmt: skip
def test_bad_sensor_config_names_the_key_path(sections: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _parse(**sections)
    problems = caught.value.problems
    assert [p.path for p in problems] == [path], str(caught.value)
    assert words in problems[0].message, str(caught.value)


def test_a_sensor_group_refuses_an_image_card() -> None:
    with pytest.raises(InspectError, match="not a time-series one"):
        load_series_card(card_path_for(DEMO_MODEL))
