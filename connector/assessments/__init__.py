"""Assessments that do not live in the CRM — exams, QA audits, self/peer/supervisor ratings — imported
from CSV or XLSX files into the ``assessments`` table.

File format: a header row, then one assessment per row. Headers may be English or Chinese and are
matched case-insensitively; other columns are ignored (but kept in ``raw``).

- ``agent`` (agent, agent_id, 客户经理, 工号, 邮箱, 手机号): the agent's email, phone or CRM id,
  looked up among live agents of every source (or of ``--source``); unknown or ambiguous is an error.
- ``kind`` (kind, 类型, 考核类型): knowledge_exam, policy_exam, accuracy_audit, politeness_audit,
  self, peer, supervisor — or 医疗知识考核, 政策法规考核, 解答准确率抽检, 礼貌规范抽检, 自评, 互评,
  上级评价 (see :data:`KIND_ALIASES`).
- ``score`` (score, 分数, 得分): 0–100.
- ``assessed_at`` (assessed_at, date, 日期, 考核日期): ``2026-10-05``, ``2026/10/5`` or
  ``2026年10月5日`` (00:00 clinic time); ``2026-10-05 14:30`` (clinic time); or with an offset.
  Not in the future.
- ``assessor`` (assessor, 考核人, 评分人): optional.
"""

from connector.assessments.errors import ImportFileError, RowError
from connector.assessments.importer import ImportResult, import_assessments
from connector.assessments.rows import HEADER_ALIASES, KIND_ALIASES, KINDS

__all__ = [
    "HEADER_ALIASES",
    "KINDS",
    "KIND_ALIASES",
    "ImportFileError",
    "ImportResult",
    "RowError",
    "import_assessments",
]
