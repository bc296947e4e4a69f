"""Write the JSON Schemas in docs/schemas/ from the pydantic models (the code is the source of truth).

The model card, and under docs/schemas/mqtt/ the MQTT payloads and command payloads.

python scripts/gen_schemas.py          # rewrite
python scripts/gen_schemas.py --check  # exit 1 if a committed schema is stale (tests run this)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent import messages
from agent.commands import COMMANDS
from agent.modelcard import ModelCard, SeriesModelCard

SCHEMAS: dict[str, type] = {
    "model-card.schema.json": ModelCard,
    "model-card-timeseries.schema.json": SeriesModelCard,
    # MQTT payloads (docs/mqtt.md): one file per message, one per command.
    "mqtt/state.schema.json": messages.State,
    "mqtt/stats.schema.json": messages.Stats,
    "mqtt/result.schema.json": messages.Result,
    "mqtt/event.schema.json": messages.Event,
    "mqtt/sensor-event.schema.json": messages.SensorEvent,
    "mqtt/reply.schema.json": messages.Reply,
    **{f"mqtt/cmd-{name}.schema.json": model for name, model in sorted(COMMANDS.items())},
}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def render(model: type) -> str:
    schema = model.model_json_schema()  # type: ignore[attr-defined]
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    stale = []
    for name, model in SCHEMAS.items():
        path, text = DOCS / name, render(model)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"stale schemas {stale}: run python scripts/gen_schemas.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
