"""Records' settings (`CONTACTPOINT_RECORDS_…`)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from contactpoint.platform.settings import DatabaseSettings, OptionalPath, VerifyingSettings
from services.records.linkage import Thresholds

_DEFAULT = Thresholds()


class RecordsSettings(VerifyingSettings, DatabaseSettings):
    """Records' settings: its database, identity for verifying tokens, the age limits, matching,
    and the audit service that data managers' calls are recorded in."""

    model_config = SettingsConfigDict(env_prefix="CONTACTPOINT_RECORDS_", frozen=True, extra="ignore")

    max_age_years: int = Field(default=18, ge=1, le=30, description="a child is under this age")
    extended_max_age_years: int = Field(
        default=25, ge=1, le=30, description="a young person with an extended record is under this age"
    )
    auto_link: bool = Field(
        default=True, description="false while onboarding a feed: every would-be link raises a review task"
    )
    match_link_threshold: float = Field(
        default=_DEFAULT.link, description="match weight (bits) at or above which a record joins a child"
    )
    match_review_threshold: float = Field(
        default=_DEFAULT.review,
        description="match weight (bits) at or above which a possible match is reviewed",
    )
    match_same_source_link_threshold: float | None = Field(
        default=_DEFAULT.same_source,
        allow_inf_nan=False,
        description="match weight (bits) at or above which a source system's second record for a "
        "child joins it (as does the same NHS number and date of birth); unset: never, a data manager "
        "decides",
    )
    match_nhs_date_slips: bool = Field(
        default=_DEFAULT.nhs_date_slips,
        description="true: the same NHS number with one part of the date of birth wrong joins the "
        "child when the other fields reach the review threshold (as day and month swapped does); "
        "false: a data manager decides",
    )
    model_refresh_seconds: float = Field(
        default=60.0, gt=0, description="how often to look for a re-estimated match model"
    )
    lifecycle_interval_seconds: float = Field(
        default=3600.0, gt=0, le=86400, description="how often the archiving and purging rules run"
    )
    stream_batch_size: int = Field(
        default=200,
        ge=1,
        le=5000,
        description="StreamSourceRecords: most records ingested in one transaction",
    )
    ingest_slots_per_organisation: int = Field(
        default=2,
        ge=1,
        le=64,
        description="most batches (streams) or records (SubmitSourceRecord) of one organisation "
        "checked or stored at once; the rest wait their turn, so that one council's feeds cannot "
        "hold the service from the others",
    )
    ingest_slots: int = Field(
        default=4,
        ge=1,
        le=256,
        description="most batches (streams) of all organisations checked, and stored, at once, "
        "and as many single records (SubmitSourceRecord); the rest wait their turn, first come "
        "first served, so that feeds cannot take every thread of the service",
    )
    prepare_workers: int = Field(
        default=1,
        ge=0,
        le=16,
        description="StreamSourceRecords: processes that check, normalise and key incoming batches "
        "beside the matching (0: the service's own threads)",
    )
    audit_target: str = Field(
        default="",
        description="host:port of the audit service; unset: data managers' calls answer UNAVAILABLE "
        "(they are audited first), and the service warns at start",
    )
    data_key_file: OptionalPath = Field(
        default=None,
        description="the data keys that seal children's personal data at rest (created, 0600, while "
        "the database holds no sealed data; rotated with `contactpoint records rotate-data-key`); "
        "this or DATA_KEYS is required",
    )
    data_keys: SecretStr = Field(
        default=SecretStr(""),
        description="the data keys' text, instead of DATA_KEY_FILE (a container's secret)",
    )
    reseal_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="how often to re-read the data key file and re-seal what an older key sealed",
    )

    @field_validator("match_same_source_link_threshold", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> RecordsSettings:
        if self.match_review_threshold > self.match_link_threshold:
            raise ValueError("match_review_threshold must not exceed match_link_threshold")
        same_source = self.match_same_source_link_threshold
        if same_source is not None and same_source < self.match_link_threshold:
            raise ValueError("match_same_source_link_threshold must not be below match_link_threshold")
        return self
