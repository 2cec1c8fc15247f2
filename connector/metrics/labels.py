"""Staff-facing names of metrics, categories and explain outcomes, in zh and en (design.md glossary).

Kept next to the engine rather than in one command so every screen and report (CLI tables, push
field captions, reports) names a metric the same way.
"""

from __future__ import annotations

from connector.i18n import tr
from connector.metrics.settings import ScorecardSettings

LABELS = {
    # metrics
    "satisfaction_rate": {"en": "Satisfaction", "zh": "满意度"},
    "avg_satisfaction": {"en": "Avg rating", "zh": "平均评分"},
    "accuracy_audit": {"en": "Answer accuracy audit", "zh": "解答准确率抽检"},
    "politeness_audit": {"en": "Politeness audit", "zh": "礼貌规范抽检"},
    "first_response_within_sla": {"en": "First response within {hours:g} h", "zh": "{hours:g}小时内首次响应"},
    "resolution_within_sla": {"en": "Resolved within {hours:g} h", "zh": "{hours:g}小时内解决"},
    "median_resolution_hours": {"en": "Median resolution (h)", "zh": "解决时长中位数(小时)"},
    "tickets_handled": {"en": "Tickets", "zh": "工单数"},
    "complaints_handled": {"en": "Complaints", "zh": "投诉数"},
    "contacts_served": {"en": "Patients served", "zh": "服务患者数"},
    "follow_up_completion": {"en": "Follow-ups on time", "zh": "回访按时完成率"},
    "follow_ups_done": {"en": "Follow-ups done", "zh": "完成回访数"},
    "call_duration_compliance": {"en": "Call time in band", "zh": "通话时长达标率"},
    "contacts_per_hour": {"en": "Patients per working hour", "zh": "每工作小时服务患者数"},
    "knowledge_score": {"en": "Knowledge exams", "zh": "医疗知识/政策法规考核"},
    "reopen_rate": {"en": "Reopened", "zh": "工单重开率"},
    # categories and scores
    "quality": {"en": "Quality", "zh": "服务质量"},
    "efficiency": {"en": "Efficiency", "zh": "工作效率"},
    "knowledge": {"en": "Knowledge", "zh": "业务知识"},
    "composite": {"en": "Composite score", "zh": "综合得分"},
    "bonus_pct": {"en": "Bonus tier", "zh": "奖金档位"},
    "rank": {"en": "Rank", "zh": "排名"},
    "trend": {"en": "Trend", "zh": "趋势"},
    # explain outcomes
    "met": {"en": "met", "zh": "达标"},
    "breached": {"en": "breached", "zh": "超时"},
    "pending": {"en": "limit not reached yet (not counted)", "zh": "未到时限(不计入)"},
    "not_owed": {"en": "no second contact: no response owed", "zh": "患者未再联系，无需响应"},
    "good": {"en": "satisfied", "zh": "满意"},
    "not_good": {"en": "not satisfied", "zh": "不满意"},
    "counted": {"en": "counted", "zh": "计入"},
    "excluded": {"en": "not counted (rating kept on the ticket)", "zh": "不计入(已按工单评价计)"},
    "on_ticket": {"en": "not counted (rating kept on the ticket)", "zh": "不计入(已按工单评价计)"},
    "within": {"en": "within band", "zh": "时长达标"},
    "outside": {"en": "outside band", "zh": "时长不达标"},
    "missed": {"en": "missed call (not judged)", "zh": "未接来电(不计)"},
    "no_band": {"en": "no band for this purpose (not judged)", "zh": "该用途无时长标准(不计)"},
    "no_duration": {"en": "no duration (not judged)", "zh": "无通话时长(不计)"},
    "on_time": {"en": "done on time", "zh": "按时完成"},
    "late": {"en": "done late", "zh": "逾期完成"},
    "not_done": {"en": "not done by the due time", "zh": "到期未完成"},
    "no_due_date": {"en": "no due date (counts as done only)", "zh": "无截止时间(仅计完成数)"},
    "reopened": {"en": "reopened", "zh": "已重开"},
    "not_reopened": {"en": "not reopened", "zh": "未重开"},
    # goal states
    "achieved": {"en": "achieved", "zh": "已达成"},
    "on_track": {"en": "on track", "zh": "进度正常"},
    "at_risk": {"en": "at risk", "zh": "有风险"},
}


def label(name: str, lang: str, settings: ScorecardSettings | None = None) -> str:
    """The caption of a metric, category or outcome; SLA captions carry the configured limit."""
    settings = settings or ScorecardSettings()
    hours = {
        "first_response_within_sla": settings.response_limit_hours,
        "resolution_within_sla": settings.resolution_limit_hours,
    }.get(name, 0.0)
    return tr(LABELS, name, lang, hours=hours) if name in LABELS else name
