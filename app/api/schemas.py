"""What the API takes and gives, as pydantic models: validated by spectree, documented
in the OpenAPI document from the same classes. Ids are opaque strings (``app.api.ids``).
"""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Phase = Literal["generation", "conversion", "account"]
LeadStatus = Literal["open", "won", "lost", "churned"]
Channel = Literal["call", "message", "email", "meeting", "visit"]
LostReason = Literal[
    "no_problem", "no_money", "bad_timing", "unreachable", "junk", "competitor", "other"
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- Queries ---------------------------------------------------------------------------------


class Page(Strict):
    cursor: str | None = Field(None, description="next_cursor of the previous page")
    limit: int = Field(50, ge=1, le=200)
    updated_since: datetime | None = Field(None, description="ISO 8601 with a time zone")


class LeadQuery(Page):
    phase: Phase | None = None
    stage_id: str | None = None
    owner_id: str | None = None
    source_id: str | None = None
    status: LeadStatus | None = None
    qualified: bool | None = None


class ClientQuery(Page):
    owner_id: str | None = None
    due_by: date | None = Field(None, description="next touch on or before this date")
    churned: bool | None = None


class TouchQuery(Page):
    lead_id: str | None = None


class PromiseQuery(Page):
    lead_id: str | None = None
    status: Literal["pending", "accepted", "flagged"] | None = None


class ConflictQuery(Page):
    status: Literal["open", "acknowledged", "resolved"] | None = None
    kind: str | None = None


# --- Resources -------------------------------------------------------------------------------


class Person(BaseModel):
    id: str
    name: str
    email: str | None
    phone: str | None
    company: str | None
    created_at: datetime


class Lead(BaseModel):
    """A lead, a deal and a client are one record at different phases of the conveyor."""

    id: str
    title: str
    person_id: str
    source_id: str | None
    stage_id: str
    stage: str
    phase: Phase
    status: LeadStatus
    owner_id: str | None
    problem: str | None
    money: str | None
    decision_date: date | None
    qualified: bool
    value_minor: int = Field(description="in minor units of the currency")
    currency: str
    message: str | None
    budget: str | None
    external_id: str | None
    lost_reason: str | None
    next_touch_on: date | None
    cadence_days: int | None
    last_touch_at: datetime | None
    created_at: datetime
    updated_at: datetime
    won_at: datetime | None
    closed_at: datetime | None
    churned_at: datetime | None


class Stage(BaseModel):
    id: str
    name: str
    phase: Phase
    position: int
    is_won: bool
    is_lost: bool


class Source(BaseModel):
    id: str
    name: str
    kind: str
    active: bool
    cost_per_lead_minor: int
    created_at: datetime


class Touch(BaseModel):
    id: str
    lead_id: str
    actor_id: str | None
    channel: Channel
    outcome: str
    note: str | None
    happened_at: datetime


class Promise(BaseModel):
    id: str
    lead_id: str
    text: str
    discount_percent: int | None
    due_on: date | None
    status: str
    flag_reason: str | None
    created_at: datetime
    decided_at: datetime | None


class Conflict(BaseModel):
    id: str
    kind: str
    status: str
    lead_id: str | None
    source_id: str | None
    promise_id: str | None
    details: dict
    created_at: datetime
    resolved_at: datetime | None


def page_of(model: type[BaseModel], name: str) -> type[BaseModel]:
    return type(
        name,
        (BaseModel,),
        {
            "__annotations__": {"data": list[model], "next_cursor": str | None},
            "__doc__": f"One page of {model.__name__} records, oldest first.",
        },
    )


PersonPage = page_of(Person, "PersonPage")
LeadPage = page_of(Lead, "LeadPage")
StageList = page_of(Stage, "StageList")
SourcePage = page_of(Source, "SourcePage")
TouchPage = page_of(Touch, "TouchPage")
PromisePage = page_of(Promise, "PromisePage")
ConflictPage = page_of(Conflict, "ConflictPage")


# --- Bodies ----------------------------------------------------------------------------------


class NewLead(Strict):
    name: str = Field("", max_length=200)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40)
    company: str | None = Field(None, max_length=200)
    message: str | None = Field(None, max_length=5000)
    budget: str | None = Field(None, max_length=200)
    external_id: str | None = Field(None, max_length=200)
    decision_date: date | None = None
    source_id: str | None = None
    extra: dict = Field(default_factory=dict)


class LeadChange(Strict):
    stage_id: str | None = Field(None, description="moves obey the board's gates")
    problem: str | None = Field(None, max_length=5000)
    money: str | None = Field(None, max_length=200)
    decision_date: date | None = None
    value_minor: int | None = Field(None, ge=0)
    lost_reason: LostReason | None = None
    lost_note: str | None = Field(None, max_length=500)


class NewTouch(Strict):
    lead_id: str
    channel: Channel
    outcome: str = Field("", max_length=200)
    note: str | None = Field(None, max_length=5000)


class Problem(BaseModel):
    """RFC 9457 problem details; ``errors`` names each invalid field."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: dict[str, list[str]] | None = None
