"""``crm-connector metrics``: compute, store and show the scorecards (绩效考核表) of a period.

Periods: ``--period`` takes a label (2026-10, 2026-W43, 2026-Q4, 2026-10-05, 2026-10-01..2026-10-15);
``--from``/``--to`` an explicit range of local days. ``--granularity`` splits either into days,
weeks, months or quarters (``--from 2026-01-01 --to 2026-06-30 --granularity month`` recomputes six
months after late data arrived). Without any, the current month in the clinic's time zone.

Every computed period replaces its rows in ``scorecards``; ``--agent`` only narrows what is shown
(ranks stay team ranks). ``--explain AGENT`` lists the records behind each of that agent's numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import click
from rich.table import Table
from rich.text import Text

from connector.calendar import BusinessCalendar
from connector.cli.context import AppContext, ExitCode
from connector.i18n import tr
from connector.metrics import (
    Period,
    Scorecard,
    compute_series,
    current_period,
    explain,
    parse_period,
    periods_between,
    range_period,
    store_scorecards,
)
from connector.metrics.definitions import METRICS
from connector.metrics.explain import Evidence, Explanation
from connector.metrics.labels import label
from connector.metrics.periods import GRANULARITIES, Granularity
from connector.metrics.settings import ScorecardSettings

MESSAGES = {
    "title": {"en": "Scorecards {period}", "zh": "绩效考核表 {period}"},
    "agent": {"en": "Agent", "zh": "客户经理"},
    "follow_ups": {"en": "Follow-ups / target", "zh": "回访数/目标"},
    "none": {
        "en": "No scorecards for {period}: no agent has data in it.",
        "zh": "{period} 没有可计算的绩效考核表：无数据。",
    },
    "stored": {
        "en": "{count} scorecard(s) stored for {periods}.",
        "zh": "已保存 {count} 份绩效考核表（{periods}）。",
    },
    "legend": {"en": "— = no data (not counted in its category).", "zh": "— 表示无数据（不计入所在类别）。"},
    "period_conflict": {
        "en": "use either --period or --from/--to, not both",
        "zh": "--period 与 --from/--to 只能二选一",
    },
    "to_without_from": {"en": "--to needs --from", "zh": "--to 需要与 --from 一起使用"},
    "explain_title": {
        "en": "Why: {agent} · {period} · composite {composite}",
        "zh": "得分明细：{agent} · {period} · 综合得分 {composite}",
    },
    "value": {"en": "{metric}: {value}", "zh": "{metric}：{value}"},
    "record": {"en": "Record", "zh": "记录"},
    "time": {"en": "Time", "zh": "时间"},
    "outcome": {"en": "Outcome", "zh": "结果"},
    "detail": {"en": "Detail", "zh": "说明"},
    "scheduled": {
        "en": "Scheduled working hours in the period: {hours:.1f} h; patients served: {served}.",
        "zh": "本期排班工作时长：{hours:.1f} 小时；服务患者数：{served}。",
    },
    "goals": {"en": "Goals", "zh": "改进目标"},
    "goal_line": {
        "en": "{metric}: {value} (expected by now {expected}; goal {goal_to} within {months} month(s) "
        "from {start}) — {status}",
        "zh": "{metric}：{value}（应达 {expected}，目标 {start} 起 {months} 个月内达到 {goal_to}）— {status}",
    },
    "hours": {
        "en": "{hours:.1f} h of {limit:g} h ({clock})",
        "zh": "{hours:.1f} 小时 / 时限 {limit:g} 小时（{clock}）",
    },
    "calendar": {"en": "calendar hours", "zh": "自然小时"},
    "business": {"en": "working hours", "zh": "工作小时"},
    "via": {"en": "first response by {via} at {at}", "zh": "首次响应：{via} {at}"},
    "field": {"en": "CRM field", "zh": "CRM字段"},
    "call": {"en": "call", "zh": "电话"},
    "follow_up": {"en": "follow-up", "zh": "回访"},
    "resolved": {"en": "resolved {at}", "zh": "解决于 {at}"},
    "paused": {"en": "paused {hours:.1f} h", "zh": "暂停 {hours:.1f} 小时"},
    "score": {"en": "score {score:g}", "zh": "评分 {score:g}"},
    "band": {
        "en": "{purpose}, {seconds} s (band {low}–{high} s)",
        "zh": "{purpose}，{seconds} 秒（标准 {low}–{high} 秒）",
    },
    "due": {"en": "due {due}, done {done}", "zh": "截止 {due}，完成 {done}"},
}
_TABLE_METRICS = (
    "satisfaction_rate",
    "first_response_within_sla",
    "resolution_within_sla",
    "follow_up_completion",
    "call_duration_compliance",
    "knowledge_score",
)
NO_DATA = "—"


def format_value(metric: str, value: float | None) -> str:
    """A metric as staff read it: rates as percentages, counts whole, the rest with one decimal."""
    if value is None:
        return NO_DATA
    unit = METRICS[metric].unit
    if unit == "rate":
        return f"{value * 100:.1f}%"
    if unit == "count":
        return f"{value:.0f}"
    return f"{value:.2f}" if unit == "per_hour" else f"{value:.1f}"


def _score(value: float | None) -> str:
    return NO_DATA if value is None else f"{value:.1f}"


def _resolve_periods(
    app: AppContext,
    period: str | None,
    date_from: datetime | None,
    date_to: datetime | None,
    granularity: Granularity | None,
) -> list[Period]:
    tz, lang = app.config.clinic.tz, app.lang
    if period and (date_from or date_to):
        app.fail(tr(MESSAGES, "period_conflict", lang), ExitCode.USAGE)
    if date_to and not date_from:
        app.fail(tr(MESSAGES, "to_without_from", lang), ExitCode.USAGE)
    try:
        if period:
            chosen = parse_period(period, tz)
        elif date_from:
            last = date_to.date() if date_to else app.clock().astimezone(tz).date()
            chosen = range_period(date_from.date(), last, tz)
        else:
            return [current_period(app.clock(), granularity or "month", tz)]
    except ValueError as exc:
        app.fail(str(exc), ExitCode.USAGE)
    if granularity is None or granularity == chosen.granularity:
        return [chosen]
    return periods_between(chosen.first, chosen.last, granularity, tz)


@click.command()
@click.option(
    "--period", help="A period label: 2026-10, 2026-W43, 2026-Q4, 2026-10-05, 2026-10-01..2026-10-15."
)
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), help="First day (local) of a range.")
@click.option(
    "--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), help="Last day (local, included); default today."
)
@click.option(
    "--granularity",
    type=click.Choice(GRANULARITIES),
    help="Split the period into days/weeks/months/quarters.",
)
@click.option("--agent", help="Show only this agent (external id of the agent or of a merged member).")
@click.option("--explain", "explain_agent", metavar="AGENT", help="List the records behind AGENT's numbers.")
@click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable JSON output (same as the global --json)."
)
@click.pass_obj
def metrics(
    app: AppContext,
    period: str | None,
    date_from: datetime | None,
    date_to: datetime | None,
    granularity: Granularity | None,
    agent: str | None,
    explain_agent: str | None,
    as_json: bool,
) -> None:
    """Compute and store the scorecards (绩效考核表) of a period and show them."""
    app.as_json = app.as_json or as_json
    config, now = app.config, app.clock()
    periods = _resolve_periods(app, period, date_from, date_to, granularity)
    calendar = BusinessCalendar.from_config(config.clinic.calendar, config.clinic.tz)
    series = compute_series(app.store, config.scorecard, calendar, config.clinic.tz, periods, as_of=now)
    with app.store.begin() as conn:
        for chosen, cards in zip(periods, series, strict=True):
            store_scorecards(conn, chosen, cards, computed_at=now)
    if explain_agent:
        try:
            found = [
                explain(app.store, config.scorecard, calendar, config.clinic.tz, p, explain_agent, as_of=now)
                for p in periods
            ]
        except LookupError as exc:
            app.fail(str(exc), ExitCode.USAGE)

        def human_explanations() -> None:
            for explanation in found:
                print_explanation(app, explanation)

        app.emit([e.as_json() for e in found], human_explanations)
        return
    shown = [[card for card in cards if agent is None or card.matches(agent)] for cards in series]

    def human_scorecards() -> None:
        for chosen, cards in zip(periods, shown, strict=True):
            print_scorecards(app, chosen, cards)
        count, labels = sum(map(len, series)), ", ".join(p.label for p in periods)
        app.console.print(tr(MESSAGES, "stored", app.lang, count=count, periods=labels))

    app.emit([card.as_json() for cards in shown for card in cards], human_scorecards)


def print_scorecards(app: AppContext, period: Period, cards: Sequence[Scorecard]) -> None:
    """One period's scorecards as a table (also used by ``demo``)."""
    lang, settings = app.lang, app.config.scorecard
    if not cards:
        app.console.print(tr(MESSAGES, "none", lang, period=period.label))
        return
    table = Table(title=tr(MESSAGES, "title", lang, period=period.label))
    table.add_column(label("rank", lang), justify="right")
    table.add_column(tr(MESSAGES, "agent", lang))
    for metric in _TABLE_METRICS:
        table.add_column(label(metric, lang, settings), justify="right")
    table.add_column(tr(MESSAGES, "follow_ups", lang), justify="right")
    for column in ("quality", "efficiency", "knowledge", "composite", "trend", "bonus_pct"):
        table.add_column(label(column, lang), justify="right")
    for card in cards:
        done = format_value("follow_ups_done", card.metrics["follow_ups_done"])
        trend = NO_DATA if card.trend is None else f"{card.trend:+.1f}"
        bonus = NO_DATA if card.bonus_pct is None else f"{card.bonus_pct:g}%"
        table.add_row(
            NO_DATA if card.rank is None else str(card.rank),
            Text(_agent_name(card)),  # CRM names are data, not rich markup
            *(format_value(metric, card.metrics[metric]) for metric in _TABLE_METRICS),
            f"{done}/{card.follow_ups_target:.0f}",
            *(_score(card.categories[c]) for c in ("quality", "efficiency", "knowledge")),
            _score(card.composite),
            trend,
            bonus,
        )
    app.console.print(table)
    app.console.print(tr(MESSAGES, "legend", lang))


def _agent_name(card: Scorecard) -> str:
    return f"{card.agent_name} ({card.agent_id})" if card.agent_name else card.agent_id


def print_explanation(app: AppContext, explanation: Explanation) -> None:
    lang, settings, card = app.lang, app.config.scorecard, explanation.scorecard
    title = tr(
        MESSAGES,
        "explain_title",
        lang,
        agent=_agent_name(card),
        period=card.period.label,
        composite=_score(card.composite),
    )
    app.console.print(Text(title, style="bold"))
    for metric in METRICS:
        value = tr(
            MESSAGES,
            "value",
            lang,
            metric=label(metric, lang, settings),
            value=format_value(metric, card.metrics[metric]),
        )
        evidence = explanation.for_metric(metric)
        if not evidence:
            app.console.print(Text(value))
            continue
        table = Table(title=value, title_justify="left")
        for column in ("record", "time", "outcome", "detail"):
            table.add_column(tr(MESSAGES, column, lang))
        for item in evidence:
            table.add_row(
                Text(f"{item.entity} {item.record_id}"),
                _when(app, item.at),
                label(item.outcome, lang),
                Text(_detail(app, item, settings)),
            )
        app.console.print(table)
    served = format_value("contacts_served", card.metrics["contacts_served"])
    app.console.print(tr(MESSAGES, "scheduled", lang, hours=explanation.scheduled_hours, served=served))
    if card.goals:
        app.console.print(Text(tr(MESSAGES, "goals", lang), style="bold"))
    for goal in card.goals:
        app.console.print(
            tr(
                MESSAGES,
                "goal_line",
                lang,
                metric=label(goal.metric, lang, settings),
                value=format_value(goal.metric, goal.value),
                expected=format_value(goal.metric, goal.expected),
                goal_to=format_value(goal.metric, goal.goal_to),
                months=goal.months,
                start=goal.start,
                status=label(goal.status, lang),
            )
        )


def _when(app: AppContext, at: datetime | None) -> str:
    return NO_DATA if at is None else f"{at.astimezone(app.config.clinic.tz):%Y-%m-%d %H:%M}"


def _detail(app: AppContext, item: Evidence, settings: ScorecardSettings) -> str:
    """The facts that decided ``item``'s outcome, in a few words."""
    lang, d = app.lang, item.detail
    parts: list[str] = []
    if d.get("hours") is not None and "limit_hours" in d:
        clock = tr(MESSAGES, d["clock"], lang)
        parts.append(tr(MESSAGES, "hours", lang, hours=d["hours"], limit=d["limit_hours"], clock=clock))
    elif d.get("hours") is not None:
        parts.append(f"{d['hours']:.1f} h")
    if d.get("via"):
        via = tr(MESSAGES, d["via"], lang)
        parts.append(tr(MESSAGES, "via", lang, via=via, at=_when(app, d.get("first_response_at"))))
    if d.get("resolved_at"):
        parts.append(tr(MESSAGES, "resolved", lang, at=_when(app, d["resolved_at"])))
    if d.get("paused_hours"):
        parts.append(tr(MESSAGES, "paused", lang, hours=d["paused_hours"]))
    if d.get("score") is not None:
        parts.append(tr(MESSAGES, "score", lang, score=d["score"]))
    if "duration_s" in d:
        low, high = d.get("band_min_s"), d.get("band_max_s")
        parts.append(
            tr(
                MESSAGES,
                "band",
                lang,
                purpose=d["purpose"],
                seconds=d["duration_s"],
                low=low or 0,
                high=high or "∞",
            )
        )
    if "due_at" in d:
        parts.append(
            tr(MESSAGES, "due", lang, due=_when(app, d["due_at"]), done=_when(app, d["completed_at"]))
        )
    for key in ("category", "kind"):
        if d.get(key):
            parts.append(str(d[key]))
    return "; ".join(parts)


COMMANDS = [metrics]
