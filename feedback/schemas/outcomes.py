"""Request and response schemas of outcomes."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
    RootModel,
)

from feedback.schemas.types import Key, RowId, Strict, Text100, Text200, Timestamp


class OutcomeIn(Strict):
    """What later turned out to be true for a case: a label from the model's actions, or a number.

    Name the case by `recommendation_id`, or by `model` and `external_id`: one way, not both.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["recommendation_id"],
                    "properties": {
                        "recommendation_id": {"type": "integer"},
                        "model": {"type": "null"},
                        "external_id": {"type": "null"},
                    },
                },
                {
                    "required": ["model", "external_id"],
                    "properties": {
                        "recommendation_id": {"type": "null"},
                        "model": {"type": "string"},
                        "external_id": {"type": "string"},
                    },
                },
            ]
        }
    )

    recommendation_id: RowId | None = None
    model: Key | None = None
    external_id: Text200 | None = None
    outcome: Key | float
    observed_at: Timestamp
    source: Text100


class OutcomeStored(BaseModel):
    """Where one outcome is stored and whether this call created it."""

    id: int
    recommendation_id: int
    source: str
    created: bool


class OutcomesOut(BaseModel):
    """Answer to an outcomes batch (a single object answers one OutcomeStored)."""

    items: list[OutcomeStored]


class OutcomesAnswer(RootModel[OutcomesOut | OutcomeStored]):
    """A batch's OutcomesOut, or one OutcomeStored for a single object."""
