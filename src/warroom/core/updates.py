"""Stakeholder updates as every room names them: where one stands, and why it was due."""

from __future__ import annotations

from warroom.core.words import Word


class UpdateStatus(Word):
    DRAFT = "draft", "drafted by the engine from the journal, waiting for its owner (kept current until approved)"
    APPROVED = "approved", "approved by its owner (or by `auto`): being archived and posted"
    PUBLISHED = "published", "archived (in the store and as an HTML file) and posted to the notify targets"


class UpdateReason(Word):
    CADENCE = "cadence", "the plan's `every`: an update while the launch is in flight"
    INCIDENT = "incident", "the plan's `after_incident`: a rollback or a guardrail breach happened"
    SCHEDULED = "scheduled", "one of the plan's fixed times of day (`at`)"
    ASKED = "asked", "its owner published one when none was due"
