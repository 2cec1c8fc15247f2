"""A deterministic synthetic township health centre (卫生院) for the CRM sandboxes, tests and benches.

Everything is drawn from ``random.Random(seed)`` (never the global generator), so one seed gives the
same clinic on every machine, and ``advance`` with the same ``rng_seed`` gives the same changes.
The model is CRM-neutral: records carry canonical values (``category="complaint"``,
``status="pending"``) and small integer ``key``s; each sandbox app renders them into its CRM's ids,
field names and picklists. That keeps one clinic behind both the Zoho and the ShareCRM sandbox.

Times are aware UTC datetimes in whole seconds (both CRMs' formats can carry them exactly, so a
synced ``updated_at`` compares equal to the truth). The clinic's local time is UTC+8 (China keeps
no daylight saving time), which places tickets in working hours and due dates on local days.

Internally the generator works in integer epoch seconds, which keeps a 50,000-ticket clinic to a
couple of seconds; records are ``__slots__`` dataclasses so a large clinic stays small in memory.

Deletion has two kinds because the CRMs differ: a *soft* delete is Zoho's recycle bin and
ShareCRM's "invalidated" (作废) record that queries still return; a *hard* delete is Zoho's
permanent delete and ShareCRM's physical delete, after which the record is gone from reads. Deleted
records stay in the lists as tombstones so sandboxes can report them and tests can compare.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal, NamedTuple

#: The clinic's local time zone (Asia/Shanghai has had no DST since 1991).
CLINIC_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
_LOCAL_OFFSET = 8 * 3600
_DAY = 86_400
_HOUR = 3600

ENTITIES: tuple[str, ...] = ("agents", "contacts", "tickets", "follow_ups", "calls", "surveys")
#: Entities that ``advance`` creates, modifies and deletes (staff lists change by hand, not by churn).
CHURNING: tuple[str, ...] = ("contacts", "tickets", "follow_ups", "calls", "surveys")

LIVE, SOFT_DELETED, HARD_DELETED = 0, 1, 2
_DELETED_NAMES = {LIVE: None, SOFT_DELETED: "soft", HARD_DELETED: "hard"}

Size = Literal["small", "medium", "large"]
SIZES: dict[str, dict[str, int]] = {
    "small": {"agents": 12, "contacts": 400, "tickets": 300, "follow_ups": 240, "calls": 360, "surveys": 80},
    "medium": {
        "agents": 40,
        "contacts": 12_500,
        "tickets": 6_000,
        "follow_ups": 4_000,
        "calls": 6_000,
        "surveys": 1_500,
    },
    "large": {
        "agents": 120,
        "contacts": 50_000,
        "tickets": 50_000,
        "follow_ups": 20_000,
        "calls": 30_000,
        "surveys": 10_000,
    },
}


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Agent:
    """A customer manager / service agent. ``skill`` (0.55–1.0) drives how well they perform."""

    key: int
    surname: str
    given: str
    email: str
    mobile: str
    department: str
    role: str
    admin: bool
    active: bool
    skill: float
    created: datetime
    modified: datetime
    deleted: int = LIVE
    deleted_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.surname + self.given


@dataclass(slots=True, eq=False)
class Contact:
    """A patient. ``owner`` is an agent key."""

    key: int
    surname: str
    given: str
    mobile: str
    phone: str | None
    email: str | None
    owner: int
    created: datetime
    modified: datetime
    deleted: int = LIVE
    deleted_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.surname + self.given


@dataclass(slots=True, eq=False)
class Ticket:
    """A complaint, consultation, appointment or other request (工单).

    ``status`` is canonical (open, pending, resolved, closed); ``resolved`` is the latest resolution
    (None while open or after a reopen); ``reopened`` marks tickets that went back to work.
    """

    key: int
    number: int
    contact: int
    owner: int
    category: str
    channel: str
    priority: str
    status: str
    subject: str
    created: datetime
    first_response: datetime | None
    resolved: datetime | None
    satisfaction: int | None
    reopened: bool
    modified: datetime
    deleted: int = LIVE
    deleted_at: datetime | None = None


@dataclass(slots=True, eq=False)
class FollowUp:
    """A follow-up visit or call (回访). ``due`` is a local date: due by the end of that day."""

    key: int
    contact: int
    ticket: int | None
    owner: int
    kind: str
    subject: str
    due: date
    status: str
    completed: datetime | None
    outcome: str | None
    created: datetime
    modified: datetime
    deleted: int = LIVE
    deleted_at: datetime | None = None


@dataclass(slots=True, eq=False)
class Call:
    """A phone call. Missed calls have ``duration_s == 0``."""

    key: int
    contact: int | None
    ticket: int | None
    owner: int
    direction: str
    purpose: str
    subject: str
    started: datetime
    duration_s: int
    created: datetime
    modified: datetime
    deleted: int = LIVE
    deleted_at: datetime | None = None


@dataclass(slots=True, eq=False)
class Survey:
    """A patient satisfaction answer kept apart from tickets (never for a ticket that has a score)."""

    key: int
    contact: int
    ticket: int | None
    owner: int
    score: int
    comment: str | None
    submitted: datetime
    created: datetime
    modified: datetime
    deleted: int = LIVE
    deleted_at: datetime | None = None


Record = Agent | Contact | Ticket | FollowUp | Call | Survey


class TruthRow(NamedTuple):
    """What a faithful sync must reproduce for one record. ``deleted`` is None, "soft" or "hard"."""

    key: int
    created: datetime
    modified: datetime
    deleted: str | None
    deleted_at: datetime | None


@dataclass(frozen=True)
class ChangeSummary:
    """What one ``advance`` did: record keys per entity and kind of change, all inside [start, end]."""

    start: datetime
    end: datetime
    seed: int
    created: Mapping[str, tuple[int, ...]]
    modified: Mapping[str, tuple[int, ...]]
    soft_deleted: Mapping[str, tuple[int, ...]]
    hard_deleted: Mapping[str, tuple[int, ...]]

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            entity: {
                "created": len(self.created.get(entity, ())),
                "modified": len(self.modified.get(entity, ())),
                "soft_deleted": len(self.soft_deleted.get(entity, ())),
                "hard_deleted": len(self.hard_deleted.get(entity, ())),
            }
            for entity in CHURNING
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "seed": self.seed,
            "counts": self.counts(),
        }


# --------------------------------------------------------------------------------------------
# Small helpers on integer epoch seconds
# --------------------------------------------------------------------------------------------


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _ts(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("the clinic needs aware datetimes")
    return int(moment.timestamp())


def _local_date(ts: int) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + (ts + _LOCAL_OFFSET) // _DAY)


def _end_of_local_day(day: date) -> int:
    """The next local midnight after ``day``: a date-only due date is met before this instant."""
    return (day.toordinal() - date(1970, 1, 1).toordinal() + 1) * _DAY - _LOCAL_OFFSET


class _Table:
    """Values with weights, pre-summed so a weighted draw is one ``random()`` and a bisect."""

    __slots__ = ("cumulative", "values")

    def __init__(self, *pairs: tuple[str, float]) -> None:
        self.values = tuple(value for value, _ in pairs)
        total, cumulative = 0.0, []
        for _, weight in pairs:
            total += weight
            cumulative.append(total)
        self.cumulative = tuple(c / total for c in cumulative)


class _Draw:
    """``random.Random`` with cheaper integer and choice draws.

    ``randint``/``choice`` cost microseconds each (rejection sampling); a large clinic needs millions
    of draws, and ``lo + int(random() * n)`` is several times faster while staying deterministic.
    """

    __slots__ = ("rng",)

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def random(self) -> float:
        return self.rng.random()

    def int(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi]."""
        return lo + int(self.rng.random() * (hi - lo + 1))

    def below(self, n: int) -> int:
        return int(self.rng.random() * n)

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.rng.random() * len(seq))]

    def weighted(self, table: _Table) -> str:
        return table.values[min(bisect.bisect(table.cumulative, self.rng.random()), len(table.values) - 1)]

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.rng.random()

    def expovariate(self, rate: float) -> float:
        return self.rng.expovariate(rate)

    def sample(self, population: Sequence[Any], k: int) -> list[Any]:
        return self.rng.sample(population, k)

    def choices(self, values: Sequence[int], weights: Sequence[float]) -> int:
        return self.rng.choices(values, weights)[0]


# --------------------------------------------------------------------------------------------
# Vocabulary (Chinese names and texts)
# --------------------------------------------------------------------------------------------


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """``"王:wang 李:li"`` → ((王, wang), (李, li)): hanzi with the pinyin used for e-mail addresses."""
    return tuple(tuple(item.split(":")) for item in text.split())  # type: ignore[misc]


_SURNAMES = _pairs(
    "王:wang 李:li 张:zhang 刘:liu 陈:chen 杨:yang 黄:huang 赵:zhao 吴:wu 周:zhou 徐:xu 孙:sun 马:ma "
    "朱:zhu 胡:hu 郭:guo 何:he 高:gao 林:lin 罗:luo 郑:zheng 梁:liang 谢:xie 宋:song 唐:tang 许:xu "
    "韩:han 冯:feng 邓:deng 曹:cao 彭:peng 曾:zeng 肖:xiao 田:tian 董:dong 袁:yuan 潘:pan 于:yu 蒋:jiang "
    "蔡:cai"
)
_GIVEN = _pairs(
    "伟:wei 芳:fang 娜:na 敏:min 静:jing 丽:li 强:qiang 磊:lei 军:jun 洋:yang 勇:yong 艳:yan 杰:jie "
    "娟:juan 涛:tao 明:ming 超:chao 秀:xiu 霞:xia 平:ping 刚:gang 桂:gui 英:ying 华:hua 文:wen 玉:yu "
    "兰:lan 红:hong 建:jian 国:guo 志:zhi 海:hai 春:chun 燕:yan 鹏:peng 浩:hao 宇:yu 欣:xin 怡:yi 晨:chen"
)
_TOWNS = ("青山镇", "石桥镇", "柳溪镇", "白沙镇", "东湖镇", "南岭镇", "云台镇", "桃源镇")
_MOBILE_PREFIXES = ("13", "15", "17", "18", "19")  # + one more digit: 130–199 like real carriers
_DEPARTMENTS = _Table(
    ("客服部", 0.5), ("公卫科", 0.2), ("医务科", 0.1), ("全科门诊", 0.1), ("预防保健科", 0.1)
)
_ROLES = {
    "客服部": ("客户经理", "医疗客服"),
    "公卫科": ("回访专员", "公卫专员"),
    "医务科": ("医疗客服",),
    "全科门诊": ("医疗客服", "客户经理"),
    "预防保健科": ("回访专员",),
}
_SUPERVISOR = "客服主管"

_CATEGORIES = _Table(("complaint", 0.3), ("consultation", 0.35), ("appointment", 0.25), ("other", 0.1))
_CHANNELS = _Table(("phone", 0.38), ("online", 0.2), ("walk_in", 0.2), ("wechat", 0.19), ("email", 0.03))
_PRIORITY = {
    "complaint": _Table(("high", 0.4), ("medium", 0.45), ("low", 0.15)),
    "other": _Table(("high", 0.1), ("medium", 0.5), ("low", 0.4)),
}
_SUBJECTS = {
    "complaint": (
        "投诉：候诊时间过长",
        "投诉：医生态度生硬",
        "投诉：收费项目有疑问",
        "投诉：检查报告迟迟未出",
        "投诉：电话长时间无人接听",
        "投诉：药房排队混乱",
        "投诉：预约后仍需排队",
        "投诉：病历资料丢失",
    ),
    "consultation": (
        "咨询：医保报销比例",
        "咨询：慢病用药续方",
        "咨询：家庭医生签约",
        "咨询：体检项目安排",
        "咨询：疫苗接种时间",
        "咨询：转诊手续办理",
        "咨询：检查前注意事项",
    ),
    "appointment": (
        "预约：儿童疫苗接种",
        "预约：老年人免费体检",
        "预约：中医理疗",
        "预约：妇科门诊",
        "预约：口腔科复诊",
        "预约：孕产妇建档",
    ),
    "other": ("其他：开具证明", "其他：失物招领", "其他：意见建议", "其他：探视安排"),
}
_FOLLOW_UP_SUBJECTS = {
    "revisit": (
        "回访：术后恢复情况",
        "回访：慢病随访",
        "回访：用药情况",
        "回访：满意度回访",
        "回访：接种后观察",
    ),
    "callback": ("回电：咨询答复", "回电：检查结果告知", "回电：预约确认", "回电：投诉处理进展"),
}
_OUTCOMES_DONE = (
    "患者恢复良好",
    "已告知复诊时间",
    "已解答用药疑问",
    "患者表示满意",
    "建议到院复查",
    "已转介上级医院",
)
_OUTCOMES_CANCELLED = ("患者已转院", "多次联系不上，取消回访", "患者拒绝回访")
_CALL_DIRECTIONS = _Table(("inbound", 0.55), ("outbound", 0.35), ("missed", 0.1))
_CALL_PURPOSES = _Table(("booking", 0.35), ("consultation", 0.35), ("complaint", 0.15), ("other", 0.15))
_PURPOSE_OF_CATEGORY = {"complaint": "complaint", "consultation": "consultation", "appointment": "booking"}
_CALL_WORDS = {"inbound": "来电", "outbound": "去电", "missed": "未接来电"}
_PURPOSE_WORDS = {"booking": "预约挂号", "consultation": "咨询", "complaint": "投诉", "other": "其他事务"}
_COMMENTS = {
    5: ("服务很好，谢谢！", "医生很耐心", "挂号很方便"),
    4: ("整体满意", "回访很及时"),
    3: ("一般", "还可以，等候有点久"),
    2: ("等候时间太长", "电话一直占线"),
    1: ("态度需要改进", "问题一直没有解决"),
}


# --------------------------------------------------------------------------------------------
# The clinic
# --------------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class Clinic:
    """The clinic's records and its clock. Sandboxes read it; ``advance`` and ``touch`` change it.

    ``version`` increases on every change, so servers can cache sorted views until it moves.
    Record lists are indexed by ``key`` (``clinic.tickets[k].key == k``); nothing is ever removed.
    """

    seed: int
    name: str
    start: datetime
    now: datetime
    agents: list[Agent]
    contacts: list[Contact]
    tickets: list[Ticket]
    follow_ups: list[FollowUp]
    calls: list[Call]
    surveys: list[Survey]
    version: int = 0
    _gen: _Generator | None = field(default=None, repr=False)
    _advances: int = 0

    def __repr__(self) -> str:  # the record lists would print for minutes
        sizes = ", ".join(f"{entity}={len(self.records(entity))}" for entity in ENTITIES)
        return f"Clinic(seed={self.seed}, name={self.name!r}, now={self.now.isoformat()}, {sizes})"

    def records(self, entity: str) -> list[Any]:
        """The live list of ``entity``'s records (tombstones included), indexed by key."""
        if entity not in ENTITIES:
            raise KeyError(f"unknown entity {entity!r}; known: {', '.join(ENTITIES)}")
        return getattr(self, entity)

    def truth(self, entity: str) -> list[TruthRow]:
        """Every record of ``entity`` as a sync should see it: ids, times and deletion, by key."""
        return [
            TruthRow(r.key, r.created, r.modified, _DELETED_NAMES[r.deleted], r.deleted_at)
            for r in self.records(entity)
        ]

    def counts(self) -> dict[str, dict[str, int]]:
        """Live, soft-deleted and hard-deleted records per entity."""
        out: dict[str, dict[str, int]] = {}
        for entity in ENTITIES:
            tally = [0, 0, 0]
            for record in self.records(entity):
                tally[record.deleted] += 1
            out[entity] = {"live": tally[0], "soft_deleted": tally[1], "hard_deleted": tally[2]}
        return out

    def touch(self, entity: str, key: int, at: datetime | None = None) -> None:
        """Mark a record modified (a sandbox wrote to it through its API) at ``at`` or the clinic's now."""
        record = self.records(entity)[key]
        moment = (at or self.now).astimezone(UTC).replace(microsecond=0)
        record.modified = max(record.modified, moment)
        self.version += 1

    def delete(self, entity: str, key: int, *, hard: bool, at: datetime | None = None) -> None:
        """Soft-delete (recycle bin, invalidate) or hard-delete (purge) a record; a purge may follow."""
        record = self.records(entity)[key]
        if record.deleted == HARD_DELETED or (record.deleted == SOFT_DELETED and not hard):
            raise ValueError(f"{entity} {key} is already deleted")
        record.deleted = HARD_DELETED if hard else SOFT_DELETED
        record.deleted_at = (at or self.now).astimezone(UTC).replace(microsecond=0)
        self.version += 1

    def advance(
        self,
        delta: timedelta,
        *,
        rng_seed: int | None = None,
        change_share: float = 0.01,
        create_ratio: float = 0.3,
        delete_ratio: float = 0.1,
    ) -> ChangeSummary:
        """Move the clock forward by ``delta`` and churn ``change_share`` of each entity's live records.

        Of the touched records, ``create_ratio`` are new, ``delete_ratio`` are deletions (half soft,
        half hard; hard deletes purge soft-deleted records first, like emptying a recycle bin) and
        the rest are modifications that follow each record's lifecycle (a complaint gets its first
        response, then its resolution, then a satisfaction score …). While ``change_share > 0`` every
        churning entity gets at least one create, one modification, one soft and one hard delete,
        so even a small clinic exercises every path. Every change time lies in (old now, new now].
        ``rng_seed`` defaults to one derived from the clinic's seed and the number of advances.
        """
        if delta.total_seconds() < 1:
            raise ValueError("advance needs a positive delta of at least one second")
        if not 0 <= change_share <= 1:
            raise ValueError("change_share must be between 0 and 1")
        seed = rng_seed if rng_seed is not None else self.seed * 1_000_003 + self._advances + 1
        gen = self._generator()
        old_now = self.now
        gen.begin_window(random.Random(seed), _ts(old_now), _ts(old_now + delta))
        created: dict[str, tuple[int, ...]] = {}
        modified: dict[str, tuple[int, ...]] = {}
        soft: dict[str, tuple[int, ...]] = {}
        hard: dict[str, tuple[int, ...]] = {}
        for entity in CHURNING:
            plan = _plan(len(gen.live(entity)), change_share, create_ratio, delete_ratio)
            modified[entity], soft[entity], hard[entity] = gen.churn(entity, *plan[1:])
            created[entity] = gen.create(entity, plan[0])
        self.now = _dt(gen.now_ts)
        self._advances += 1
        self.version += 1
        return ChangeSummary(old_now, self.now, seed, created, modified, soft, hard)

    def _generator(self) -> _Generator:
        if self._gen is None:
            raise RuntimeError("this clinic was not built by generate_clinic")
        return self._gen


def _unfinished(record: Any) -> bool:
    """Records whose lifecycle still has steps to take; advance favours them, as real work does."""
    if isinstance(record, Ticket):
        return record.status != "closed"
    if isinstance(record, FollowUp):
        return record.status == "planned"
    return False


def _plan(live: int, share: float, create_ratio: float, delete_ratio: float) -> tuple[int, int, int, int]:
    """(creates, modifications, soft deletes, hard deletes) for one entity."""
    if share <= 0 or live == 0:
        return (0, 0, 0, 0)
    total = max(4, round(live * share))
    deletes = max(2, round(total * delete_ratio))
    creates = max(1, round(total * create_ratio))
    modifies = max(1, total - creates - deletes)
    soft = math.ceil(deletes / 2)
    return (creates, modifies, soft, deletes - soft)


def generate_clinic(
    seed: int,
    size: Size | Mapping[str, int] = "small",
    *,
    now: datetime,
    start: datetime | None = None,
) -> Clinic:
    """Build a clinic whose tickets, follow-ups and calls fall in [start, now] (start = now − 91 days).

    ``size`` is a preset (small ≈ a few hundred per entity, medium ≥ 12,500 contacts and 6,000
    tickets, large = 50,000 contacts and 50,000 tickets) or a dict of counts per entity (missing
    entities take the small preset's count). Contacts and agents partly predate ``start``.
    """
    counts = dict(SIZES["small"])
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; choose {', '.join(SIZES)} or give counts")
        counts = dict(SIZES[size])
    else:
        unknown = set(size) - set(ENTITIES)
        if unknown:
            raise ValueError(f"unknown entities in size: {', '.join(sorted(unknown))}")
        counts.update(size)
    if counts["agents"] < 1 or counts["contacts"] < 1:
        raise ValueError("a clinic needs at least one agent and one contact")
    if any(n < 0 for n in counts.values()):
        raise ValueError("counts must not be negative")
    now_ts = _ts(now)
    start_ts = _ts(start) if start is not None else now_ts - 91 * _DAY
    if start_ts >= now_ts:
        raise ValueError("start must be before now")
    rng = random.Random(seed)
    gen = _Generator(rng, start_ts, now_ts)
    gen.build(counts)
    clinic = Clinic(
        seed=seed,
        name=f"{gen.rng.pick(_TOWNS)}卫生院",
        start=_dt(start_ts),
        now=_dt(now_ts),
        agents=gen.agents,
        contacts=gen.contacts,
        tickets=gen.tickets,
        follow_ups=gen.follow_ups,
        calls=gen.calls,
        surveys=gen.surveys,
    )
    clinic._gen = gen
    return clinic


class _Generator:
    """Draws records and their lifecycles. Shared by the initial build and by ``advance``'s creates,
    so new records in a window look exactly like generated history."""

    def __init__(self, rng: random.Random, start_ts: int, now_ts: int) -> None:
        self.rng = _Draw(rng)
        self.start_ts = start_ts
        self.now_ts = now_ts
        self.window_lo = start_ts  # creations fall in [window_lo, now_ts]
        self.agents: list[Agent] = []
        self.contacts: list[Contact] = []
        self.tickets: list[Ticket] = []
        self.follow_ups: list[FollowUp] = []
        self.calls: list[Call] = []
        self.surveys: list[Survey] = []
        self._deactivated: dict[int, int] = {}
        self._active_agents: list[int] = []
        self._contact_created: list[int] = []

    # ---- build ---------------------------------------------------------------------------

    def build(self, counts: Mapping[str, int]) -> None:
        self._make_agents(counts["agents"])
        rng, lo, hi = self.rng, self.start_ts, self.now_ts
        contact_times = sorted(
            rng.int(lo - 720 * _DAY, lo) if rng.random() < 0.6 else self._moment(lo, hi)
            for _ in range(counts["contacts"])
        )
        for ts in contact_times:
            self._add_contact(ts)
        for ts in sorted(self._moment(lo, hi) for _ in range(counts["tickets"])):
            self._add_ticket(ts)
        for _ in range(counts["follow_ups"]):
            self._add_follow_up(self._moment(lo, hi))
        for ts in sorted(self._moment(lo, hi) for _ in range(counts["calls"])):
            self._add_call(ts)
        for _ in range(counts["surveys"]):
            self._add_survey(self._moment(lo, hi))

    def _make_agents(self, n: int) -> None:
        rng = self.rng
        for key in range(n):
            (surname, s_py), (given, g_py) = rng.pick(_SURNAMES), rng.pick(_GIVEN)
            if key == 0:
                department, role = "客服部", _SUPERVISOR
            else:
                department = rng.weighted(_DEPARTMENTS)
                role = rng.pick(_ROLES[department])
            created_ts = self.start_ts - rng.int(60 * _DAY, 1000 * _DAY)
            inactive = key != 0 and (
                rng.random() < 0.08 or (key == n - 1 and n >= 4 and not self._deactivated)
            )
            modified_ts = created_ts + rng.int(0, 30 * _DAY)
            if inactive:
                left = self.start_ts + rng.int(0, (self.now_ts - self.start_ts) // 3)
                self._deactivated[key] = left
                modified_ts = left
            else:
                self._active_agents.append(key)
            self.agents.append(
                Agent(
                    key=key,
                    surname=surname,
                    given=given,
                    email=f"{g_py}.{s_py}{key:02d}@clinic.example.cn",
                    mobile=self._mobile(),
                    department=department,
                    role=role,
                    admin=key == 0,
                    active=not inactive,
                    skill=round(rng.uniform(0.55, 1.0), 3),
                    created=_dt(created_ts),
                    modified=_dt(modified_ts),
                )
            )

    # ---- draws ---------------------------------------------------------------------------

    def _moment(self, lo: int, hi: int) -> int:
        """A time in [lo, hi], mostly in local working hours (08:00–17:30), like clinic traffic."""
        rng = self.rng
        ts = rng.int(lo, hi)
        if rng.random() < 0.82:
            day_start = ts - (ts + _LOCAL_OFFSET) % _DAY
            shifted = day_start + 8 * _HOUR + rng.int(0, 9 * _HOUR + 1800)
            if lo <= shifted <= hi:
                return shifted
        return ts

    def _mobile(self) -> str:
        return f"{self.rng.pick(_MOBILE_PREFIXES)}{self.rng.below(10**9):09d}"

    def _agent_at(self, ts: int, preferred: int | None = None) -> int:
        """An agent who still worked at ``ts`` (``preferred`` when possible)."""
        candidate = preferred if preferred is not None else self.rng.below(len(self.agents))
        left = self._deactivated.get(candidate)
        if left is not None and ts >= left:
            return self.rng.pick(self._active_agents)
        return candidate

    def _contact_before(self, ts: int) -> int:
        """A contact who already existed at ``ts``."""
        upto = bisect.bisect_right(self._contact_created, ts)
        return self.rng.below(max(upto, 1))

    # ---- entities ------------------------------------------------------------------------

    def _add_contact(self, created_ts: int) -> Contact:
        rng = self.rng
        key = len(self.contacts)
        (surname, s_py), (given, g_py) = rng.pick(_SURNAMES), rng.pick(_GIVEN)
        if rng.random() < 0.6:
            second, g2_py = rng.pick(_GIVEN)
            given, g_py = given + second, g_py + g2_py
        owner = self._agent_at(max(created_ts, self.start_ts))
        modified_ts = created_ts
        if rng.random() < 0.4:
            modified_ts = rng.int(created_ts, self.now_ts)
        contact = Contact(
            key=key,
            surname=surname,
            given=given,
            mobile=self._mobile(),
            phone=f"0{rng.int(310, 999)}-{rng.int(2_000_000, 8_999_999)}" if rng.random() < 0.3 else None,
            email=f"{s_py}{g_py}{key}@example.com" if rng.random() < 0.35 else None,
            owner=owner,
            created=_dt(created_ts),
            modified=_dt(modified_ts),
        )
        self.contacts.append(contact)
        self._contact_created.append(created_ts)
        return contact

    def _add_ticket(self, created_ts: int) -> Ticket:
        rng = self.rng
        key = len(self.tickets)
        contact = self._contact_before(created_ts)
        owner = self._agent_at(created_ts, self.contacts[contact].owner if rng.random() < 0.7 else None)
        category = rng.weighted(_CATEGORIES)
        ticket = Ticket(
            key=key,
            number=100_001 + key,
            contact=contact,
            owner=owner,
            category=category,
            channel=rng.weighted(_CHANNELS),
            priority=rng.weighted(_PRIORITY.get(category, _PRIORITY["other"])),
            status="open",
            subject=rng.pick(_SUBJECTS[category]),
            created=_dt(created_ts),
            first_response=None,
            resolved=None,
            satisfaction=None,
            reopened=False,
            modified=_dt(created_ts),
        )
        self._ticket_lifecycle(ticket, created_ts, self.agents[owner].skill)
        self.tickets.append(ticket)
        return ticket

    def _ticket_lifecycle(self, ticket: Ticket, created: int, skill: float) -> None:
        """Draw response, resolution, reopen, rating and closing, then keep what happened by now.

        Shares (for an average agent): ~6% never answered, ~9% answered after 24 h; of the
        answered, ~7% never resolved and ~11% resolved after 48 h; 65% of resolutions rated.
        """
        rng, now = self.rng, self.now_ts
        events = [created]
        r = rng.random()
        if r < 0.06:
            response = None
        elif r < 0.06 + 0.2 * (1.2 - skill):
            response = created + rng.int(24 * _HOUR + 60, 96 * _HOUR)
        else:
            response = created + min(300 + int(rng.expovariate(1 / (3 * _HOUR))), 23 * _HOUR + 3000)
        resolved = None
        if response is not None:
            r = rng.random()
            if r < 0.07:
                resolved = None
            elif r < 0.07 + 0.22 * (1.2 - skill):
                resolved = max(created + rng.int(48 * _HOUR + 60, 240 * _HOUR), response + 600)
            else:
                lo = response + 600
                resolved = rng.int(lo, max(lo, created + 47 * _HOUR))
        if response is None or response > now:
            ticket.status = "open"
            ticket.modified = _dt(max(events))
            return
        ticket.first_response = _dt(response)
        events.append(response)
        if resolved is not None and resolved <= now and rng.random() < 0.05:
            reopen = resolved + rng.int(6 * _HOUR, 96 * _HOUR)
            if reopen <= now:
                ticket.reopened = True
                events.append(reopen)
                resolved = reopen + rng.int(12 * _HOUR, 72 * _HOUR) if rng.random() < 0.6 else None
        if resolved is None or resolved > now:
            ticket.status = "pending"
            ticket.modified = _dt(max(events))
            return
        ticket.resolved = _dt(resolved)
        ticket.status = "resolved"
        events.append(resolved)
        if rng.random() < 0.65:
            rated = resolved + rng.int(600, 72 * _HOUR)
            if rated <= now:
                late = resolved - created > 48 * _HOUR
                ticket.satisfaction = self._score(skill, late, ticket.category == "complaint")
                events.append(rated)
        if rng.random() < 0.7:
            closed = resolved + rng.int(24 * _HOUR, 120 * _HOUR)
            if closed <= now:
                ticket.status = "closed"
                events.append(closed)
        last = max(events)
        if rng.random() < 0.08:
            last = rng.int(last, now)
        ticket.modified = _dt(last)

    def _score(self, skill: float, late: bool, complaint: bool) -> int:
        bad = (1.0 - skill) + (0.3 if late else 0.0) + (0.2 if complaint else 0.0)
        weights = (0.03 + 0.1 * bad, 0.05 + 0.15 * bad, 0.12 + 0.1 * bad, 0.33, max(0.05, 0.47 - 0.35 * bad))
        return self.rng.choices((1, 2, 3, 4, 5), weights)

    def _add_follow_up(self, created_ts: int) -> FollowUp:
        rng = self.rng
        key = len(self.follow_ups)
        ticket_key: int | None = None
        if self.tickets and rng.random() < 0.6:
            candidate = self.tickets[rng.below(len(self.tickets))]
            if candidate.resolved is not None and candidate.deleted == LIVE:
                planned = _ts(candidate.resolved) + rng.int(60, 2 * _HOUR)
                if planned <= self.now_ts:
                    ticket_key = candidate.key
                    created_ts = planned if planned >= self.window_lo else created_ts
        if ticket_key is not None:
            ticket = self.tickets[ticket_key]
            contact, owner = ticket.contact, self._agent_at(created_ts, ticket.owner)
        else:
            contact = self._contact_before(created_ts)
            owner = self._agent_at(created_ts, self.contacts[contact].owner)
        kind = "revisit" if rng.random() < 0.6 else "callback"
        due = _local_date(created_ts + rng.int(1, 14) * _DAY)
        follow_up = FollowUp(
            key=key,
            contact=contact,
            ticket=ticket_key,
            owner=owner,
            kind=kind,
            subject=rng.pick(_FOLLOW_UP_SUBJECTS[kind]),
            due=due,
            status="planned",
            completed=None,
            outcome=None,
            created=_dt(created_ts),
            modified=_dt(created_ts),
        )
        self._follow_up_lifecycle(follow_up, created_ts, self.agents[owner].skill)
        self.follow_ups.append(follow_up)
        return follow_up

    def _follow_up_lifecycle(self, follow_up: FollowUp, created: int, skill: float) -> None:
        """~5% cancelled; of the rest ~80% done on time, some late, the others still planned (overdue
        once their day has passed)."""
        rng, now = self.rng, self.now_ts
        deadline = _end_of_local_day(follow_up.due)
        r = rng.random()
        if r < 0.05:
            cancelled = rng.int(created, max(created, min(deadline, now)))
            if cancelled <= now:
                follow_up.status = "cancelled"
                follow_up.outcome = rng.pick(_OUTCOMES_CANCELLED)
                follow_up.modified = _dt(cancelled)
            return
        on_time = 0.62 + 0.3 * skill
        if r < 0.05 + 0.95 * on_time:
            done = rng.int(max(created + 60, deadline - 3 * _DAY), deadline - 60)
        elif r < 0.05 + 0.95 * (on_time + (1 - on_time) * 0.5):
            done = deadline + rng.int(_HOUR, 10 * _DAY)
        else:
            return
        if max(done, created) <= now:
            follow_up.status = "done"
            follow_up.completed = _dt(max(done, created))
            follow_up.outcome = rng.pick(_OUTCOMES_DONE)
            follow_up.modified = follow_up.completed

    def _add_call(self, started_ts: int) -> Call:
        rng = self.rng
        key = len(self.calls)
        ticket_key: int | None = None
        if self.tickets and rng.random() < 0.3:
            ticket = self.tickets[rng.below(len(self.tickets))]
            linked_start = _ts(ticket.created) + rng.int(0, 72 * _HOUR)
            if ticket.deleted == LIVE and linked_start <= self.now_ts:
                ticket_key = ticket.key
                started_ts = linked_start if linked_start >= self.window_lo else started_ts
        if ticket_key is not None:
            ticket = self.tickets[ticket_key]
            contact: int | None = ticket.contact
            owner = self._agent_at(started_ts, ticket.owner)
            purpose = _PURPOSE_OF_CATEGORY.get(ticket.category, "other")
        else:
            contact = self._contact_before(started_ts) if rng.random() < 0.9 else None
            preferred = self.contacts[contact].owner if contact is not None else None
            owner = self._agent_at(started_ts, preferred)
            purpose = rng.weighted(_CALL_PURPOSES)
        direction = rng.weighted(_CALL_DIRECTIONS)
        duration = 0 if direction == "missed" else self._duration(purpose)
        logged = min(started_ts + duration + rng.int(0, 600), self.now_ts)
        modified = rng.int(logged, self.now_ts) if rng.random() < 0.05 else logged
        subject = (
            _CALL_WORDS[direction]
            if direction == "missed"
            else f"{_CALL_WORDS[direction]}：{_PURPOSE_WORDS[purpose]}"
        )
        call = Call(
            key=key,
            contact=contact,
            ticket=ticket_key,
            owner=owner,
            direction=direction,
            purpose=purpose,
            subject=subject,
            started=_dt(started_ts),
            duration_s=duration,
            created=_dt(logged),
            modified=_dt(max(modified, logged)),
        )
        self.calls.append(call)
        return call

    def _duration(self, purpose: str) -> int:
        """Seconds, drawn around the policy bands: booking ≤ 3 min mostly, consultation 5–10 min mostly."""
        rng = self.rng
        r = rng.random()
        if purpose == "booking":
            return rng.int(40, 180) if r < 0.8 else rng.int(181, 420)
        if purpose == "consultation":
            if r < 0.72:
                return rng.int(300, 600)
            return rng.int(90, 299) if r < 0.86 else rng.int(601, 1200)
        if purpose == "complaint":
            return rng.int(180, 1500)
        return rng.int(20, 600)

    def _add_survey(self, submitted_ts: int) -> Survey:
        rng = self.rng
        key = len(self.surveys)
        ticket_key: int | None = None
        if self.tickets and rng.random() < 0.6:
            ticket = self.tickets[rng.below(len(self.tickets))]
            if ticket.resolved is not None and ticket.satisfaction is None and ticket.deleted == LIVE:
                answered = _ts(ticket.resolved) + rng.int(_HOUR, 120 * _HOUR)
                if answered <= self.now_ts:
                    ticket_key = ticket.key
                    submitted_ts = answered if answered >= self.window_lo else submitted_ts
        if ticket_key is not None:
            ticket = self.tickets[ticket_key]
            contact, owner = ticket.contact, ticket.owner
            skill, late = (
                self.agents[owner].skill,
                ticket.resolved is not None and (ticket.resolved - ticket.created > timedelta(hours=48)),
            )
        else:
            contact = self._contact_before(submitted_ts)
            owner = self.contacts[contact].owner
            skill, late = self.agents[owner].skill, False
        score = self._score(skill, late, complaint=False)
        survey = Survey(
            key=key,
            contact=contact,
            ticket=ticket_key,
            owner=owner,
            score=score,
            comment=rng.pick(_COMMENTS[score]) if rng.random() < 0.6 else None,
            submitted=_dt(submitted_ts),
            created=_dt(submitted_ts),
            modified=_dt(submitted_ts),
        )
        self.surveys.append(survey)
        return survey

    # ---- evolution -----------------------------------------------------------------------

    def begin_window(self, rng: random.Random, lo: int, hi: int) -> None:
        self.rng, self.window_lo, self.now_ts = _Draw(rng), lo + 1, hi

    def live(self, entity: str) -> list[Any]:
        return [r for r in getattr(self, entity) if r.deleted == LIVE]

    def create(self, entity: str, n: int) -> tuple[int, ...]:
        adders: dict[str, Callable[[int], Any]] = {
            "contacts": self._add_contact,
            "tickets": self._add_ticket,
            "follow_ups": self._add_follow_up,
            "calls": self._add_call,
            "surveys": self._add_survey,
        }
        times = sorted(self._moment(self.window_lo, self.now_ts) for _ in range(n))
        return tuple(adders[entity](ts).key for ts in times)

    def churn(
        self, entity: str, n_modify: int, n_soft: int, n_hard: int
    ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        rng = self.rng
        live = self.live(entity)
        recycled = [r for r in getattr(self, entity) if r.deleted == SOFT_DELETED]
        purged = rng.sample(recycled, min(len(recycled), (n_hard + 1) // 2))
        unfinished = [r for r in live if _unfinished(r)]
        to_modify = rng.sample(unfinished, min(len(unfinished), math.ceil(n_modify * 0.7)))
        chosen = {id(r) for r in to_modify}
        rest = [r for r in live if id(r) not in chosen]
        picked = rng.sample(rest, min(len(rest), n_modify - len(to_modify) + n_soft + n_hard - len(purged)))
        split = n_modify - len(to_modify)
        to_modify += picked[:split]
        to_soft = picked[split : split + n_soft]
        to_hard = purged + picked[split + n_soft :]
        modifier = getattr(self, f"_modify_{entity}")
        for record in sorted(to_modify, key=lambda r: r.key):
            ts = rng.int(self.window_lo, self.now_ts)
            modifier(record, ts)
            record.modified = _dt(max(ts, _ts(record.modified)))
        for record in sorted(to_soft, key=lambda r: r.key):
            record.deleted, record.deleted_at = SOFT_DELETED, _dt(rng.int(self.window_lo, self.now_ts))
        for record in sorted(to_hard, key=lambda r: r.key):
            record.deleted, record.deleted_at = HARD_DELETED, _dt(rng.int(self.window_lo, self.now_ts))
        return (
            tuple(sorted(r.key for r in to_modify)),
            tuple(sorted(r.key for r in to_soft)),
            tuple(sorted(r.key for r in to_hard)),
        )

    def _modify_contacts(self, contact: Contact, ts: int) -> None:
        r = self.rng.random()
        if r < 0.5:
            contact.mobile = self._mobile()
        elif r < 0.8:
            contact.email = f"p{contact.key}.{ts % 10_000}@example.com"
        else:
            contact.owner = self._agent_at(ts)

    def _modify_tickets(self, ticket: Ticket, ts: int) -> None:
        """One lifecycle step: answer, resolve, rate or close, reopen, or re-prioritise."""
        rng = self.rng
        moment = _dt(ts)
        if ticket.status == "open":
            ticket.first_response, ticket.status = moment, "pending"
        elif ticket.status == "pending":
            ticket.resolved, ticket.status = moment, "resolved"
        elif ticket.status == "resolved":
            if ticket.satisfaction is None and rng.random() < 0.6:
                assert ticket.resolved is not None
                late = ticket.resolved - ticket.created > timedelta(hours=48)
                ticket.satisfaction = self._score(
                    self.agents[ticket.owner].skill, late, ticket.category == "complaint"
                )
            else:
                ticket.status = "closed"
        elif rng.random() < 0.3:
            ticket.status, ticket.resolved, ticket.reopened = "pending", None, True
        else:
            ticket.priority = rng.pick(("high", "medium", "low"))

    def _modify_follow_ups(self, follow_up: FollowUp, ts: int) -> None:
        rng = self.rng
        if follow_up.status == "planned":
            if rng.random() < 0.85:
                follow_up.status, follow_up.completed = "done", _dt(ts)
                follow_up.outcome = rng.pick(_OUTCOMES_DONE)
            else:
                follow_up.status, follow_up.outcome = "cancelled", rng.pick(_OUTCOMES_CANCELLED)
        elif follow_up.status == "done":
            follow_up.outcome = rng.pick(_OUTCOMES_DONE)
        else:
            follow_up.outcome = rng.pick(_OUTCOMES_CANCELLED)

    def _modify_calls(self, call: Call, ts: int) -> None:
        if call.direction != "missed":
            call.duration_s = max(1, call.duration_s + self.rng.int(-30, 30))

    def _modify_surveys(self, survey: Survey, ts: int) -> None:
        survey.comment = self.rng.pick(_COMMENTS[survey.score])
