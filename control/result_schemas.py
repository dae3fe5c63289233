"""The API's bodies for a run's results: per-second rows, per-label summaries with percentiles,
codes and failure messages, reports and comparisons (control/api/routes/results.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from control.schemas import RunOut


class Percentiles(BaseModel):
    """Milliseconds, each within 1 % of the exact value (docs/histograms.md)."""

    p50: float
    p90: float
    p95: float
    p99: float
    p99_9: float


class SecondOut(BaseModel):
    second: int = Field(description="Unix time of the second")
    samples: int
    failures: int
    error_rate: float
    elapsed_mean_ms: float
    elapsed: Percentiles
    threads: int
    bytes_recv: int
    bytes_sent: int
    failure_messages: dict[str, int] = Field(default_factory=dict)


class SummaryOut(BaseModel):
    plan_id: str | None = Field(description="None on the whole run's row")
    label: str | None = Field(description="None on the whole run's row")
    samples: int
    failures: int
    error_rate: float
    rps: float = Field(description="samples per second between the first and last second")
    elapsed_min_ms: int
    elapsed_mean_ms: float
    elapsed_max_ms: int
    elapsed: Percentiles
    latency: Percentiles = Field(description="time to first byte")
    connect: Percentiles
    codes: dict[str, int] = Field(description="samples per response code")
    failure_messages: dict[str, int] = Field(
        default_factory=dict,
        description="failed samples per failure message, most frequent first; they add up to "
        "the failures ('(other messages)' past a label's 20)",
    )
    first_second: int
    last_second: int


class ReportOut(BaseModel):
    run: RunOut
    total: SummaryOut | None
    labels: list[SummaryOut]
    late_samples: int = Field(description="samples that arrived after their second was final")


class ChangeOut(BaseModel):
    a: float | None
    b: float | None
    delta: float | None = Field(description="b − a")
    percent: float | None = Field(description="(b − a) / a in percent; None when a is 0")


class ComparedOut(BaseModel):
    plan_id: str | None
    label: str | None = Field(description="None on the whole run's row")
    in_a: bool
    in_b: bool
    changes: dict[str, ChangeOut] = Field(
        description="samples, rps, error_rate, mean, p50, p90, p95, p99, p99.9 (milliseconds)"
    )


class ComparisonOut(BaseModel):
    a: RunOut
    b: RunOut
    total: ComparedOut
    labels: list[ComparedOut]
