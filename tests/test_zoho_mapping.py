"""The bundled mappings/zoho.toml on records shaped as crm-api/zoho.md documents them (§4, §9)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from zoho_support import MAPPINGS

from adapters.zoho.pull import MAX_FIELDS, request_fields
from connector.mapping import RecordError

OWNER = {"name": "Asha Rao", "id": "5725767000000411001", "email": "asha@example.com"}
MODIFIED = "2024-05-01T10:05:12+05:30"
MODIFIED_UTC = datetime(2024, 5, 1, 4, 35, 12, tzinfo=UTC)


def apply(entity: str, raw: dict[str, Any]) -> dict[str, Any]:
    return MAPPINGS[entity].apply(raw)


def case(**fields: Any) -> dict[str, Any]:
    return {
        "id": "5725767000000700001",
        "Case_Number": "1042",
        "Subject": "投诉：候诊时间过长",
        "Status": "New",
        "Priority": "High",
        "Case_Origin": "Phone",
        "Type": "Problem",
        "Case_Reason": None,
        "Related_To": {"name": "John Doe", "id": "5725767000000333001"},
        "Owner": OWNER,
        "Created_Time": "2024-05-01T09:00:00+05:30",
        "Modified_Time": MODIFIED,
        **fields,
    }


def test_every_entity_fits_in_one_zoho_request() -> None:
    for mapping in MAPPINGS.values():
        assert len(request_fields(mapping.fetch_fields)) <= MAX_FIELDS
    assert set(MAPPINGS) == {"agents", "contacts", "tickets", "follow_ups", "calls"}
    assert MAPPINGS["agents"].object == "users"


def test_user_becomes_an_agent() -> None:
    user = {
        "id": "5725767000000411001",
        "full_name": "Asha Rao",
        "first_name": "Asha",
        "last_name": "Rao",
        "email": "asha@example.com",
        "phone": None,
        "mobile": "13800000000",
        "role": {"name": "客户经理", "id": "1"},
        "profile": {"name": "Standard", "id": "2"},
        "status": "active",
        "Modified_Time": MODIFIED,
    }
    row = apply("agents", user)
    assert row["external_id"] == "5725767000000411001" and row["updated_at"] == MODIFIED_UTC
    assert (row["name"], row["email"], row["phone"], row["role"], row["active"]) == (
        "Asha Rao",
        "asha@example.com",
        "13800000000",
        "客户经理",
        True,
    )
    assert row["department"] == "Standard"


@pytest.mark.parametrize("status", ["inactive", "disabled", "deleted", "closed", "disabled dormant"])
def test_users_not_active_are_inactive_agents(status: str) -> None:
    assert apply("agents", {"id": "1", "status": status, "Modified_Time": MODIFIED})["active"] is False


def test_contact() -> None:
    raw = {
        "id": "5725767000000333001",
        "Full_Name": "张三",
        "Last_Name": "张",
        "Phone": "0731-1234567",
        "Mobile": "13900000000",
        "Email": None,
        "Owner": OWNER,
        "Created_Time": "2024-04-01T08:00:00+08:00",
        "Modified_Time": MODIFIED,
    }
    row = apply("contacts", raw)
    assert (row["name"], row["phone"], row["mobile"], row["email"], row["owner_id"]) == (
        "张三",
        "0731-1234567",
        "13900000000",
        None,
        OWNER["id"],
    )
    assert row["created_at"] == datetime(2024, 4, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "canonical"),
    [
        ("New", "open"),
        ("Escalated", "open"),
        ("On Hold", "pending"),
        ("Closed", "closed"),
        ("新建", "open"),
        ("处理中", "open"),
        ("已升级", "open"),
        ("挂起", "pending"),
        ("已解决", "resolved"),
        ("已关闭", "closed"),
    ],
)
def test_case_status_english_and_chinese(status: str, canonical: str) -> None:
    assert apply("tickets", case(Status=status))["status"] == canonical


def test_unknown_case_status_is_a_record_error_not_a_guess() -> None:
    with pytest.raises(RecordError) as caught:
        apply("tickets", case(Status="Reopened by robot"))
    assert caught.value.column == "status"


@pytest.mark.parametrize(
    ("type_", "reason", "category"),
    [
        ("Complaint", None, "complaint"),
        ("Problem", None, "complaint"),
        ("投诉", None, "complaint"),
        ("Question", None, "consultation"),
        ("Consultation", None, "consultation"),
        ("咨询", None, "consultation"),
        ("Appointment", None, "appointment"),
        ("预约", None, "appointment"),
        ("Feature Request", None, "other"),
        (None, "投诉", "complaint"),
        (None, None, None),
    ],
)
def test_case_category_from_type_then_reason(
    type_: str | None, reason: str | None, category: str | None
) -> None:
    assert apply("tickets", case(Type=type_, Case_Reason=reason))["category"] == category


@pytest.mark.parametrize(
    ("origin", "channel"),
    [
        ("Phone", "phone"),
        ("Email", "email"),
        ("Web", "online"),
        ("微信", "wechat"),
        ("现场", "walk_in"),
        ("Fax", "other"),
    ],
)
def test_case_origin_is_the_channel(origin: str, channel: str) -> None:
    assert apply("tickets", case(Case_Origin=origin))["channel"] == channel


def test_case_columns_and_optional_custom_fields() -> None:
    row = apply("tickets", case(Satisfaction_Score="4", First_Response_Time="2024-05-01T09:30:00+05:30"))
    assert row["contact_id"] == "5725767000000333001" and row["owner_id"] == OWNER["id"]
    assert row["subject"] == "投诉：候诊时间过长" and row["priority"] == "high"
    assert row["created_at"] == datetime(2024, 5, 1, 3, 30, tzinfo=UTC)
    assert row["first_response_at"] == datetime(2024, 5, 1, 4, 0, tzinfo=UTC)
    assert row["satisfaction"] == 4
    plain = apply("tickets", case())
    assert (
        plain["satisfaction"] is None
        and plain["first_response_at"] is None
        and plain["contact_id"] == "5725767000000333001"
    )


def test_resolution_time_is_left_to_the_status_history() -> None:
    assert "resolved_at" not in MAPPINGS["tickets"].maps_column


def task(**fields: Any) -> dict[str, Any]:
    return {
        "id": "5725767000000800001",
        "Subject": "回访：术后恢复情况",
        "Due_Date": "2024-05-03",
        "Status": "Not Started",
        "Closed_Time": None,
        "Who_Id": {"name": "John Doe", "id": "5725767000000333001"},
        "What_Id": {"name": "1042", "id": "5725767000000700001"},
        "$se_module": "Cases",
        "Owner": OWNER,
        "Description": None,
        "Modified_Time": MODIFIED,
        **fields,
    }


def test_task_becomes_a_follow_up_due_by_the_end_of_its_local_day() -> None:
    row = apply("follow_ups", task())
    assert row["due_at"] == datetime(2024, 5, 3, 16, 0, tzinfo=UTC)  # 2024-05-04 00:00 in Shanghai
    assert (row["contact_id"], row["ticket_id"], row["owner_id"]) == (
        "5725767000000333001",
        "5725767000000700001",
        OWNER["id"],
    )
    assert (row["status"], row["kind"], row["completed_at"]) == ("planned", None, None)


def test_completed_task_and_a_task_about_something_else() -> None:
    row = apply(
        "follow_ups",
        task(
            Status="已完成",
            Closed_Time="2024-05-02T15:00:00+08:00",
            **{"$se_module": "Accounts"},
            Description="患者恢复良好",
        ),
    )
    assert row["status"] == "done" and row["completed_at"] == datetime(2024, 5, 2, 7, 0, tzinfo=UTC)
    assert row["ticket_id"] is None and row["outcome"] == "患者恢复良好"


@pytest.mark.parametrize(
    ("kind", "canonical"), [("Revisit", "revisit"), ("回电", "callback"), ("Satisfaction survey", "other")]
)
def test_follow_up_kind_from_the_optional_custom_field(kind: str, canonical: str) -> None:
    assert apply("follow_ups", task(Follow_Up_Type=kind))["kind"] == canonical


@pytest.mark.parametrize(
    ("status", "canonical"),
    [("Completed", "done"), ("Deferred", "planned"), ("Cancelled", "cancelled"), ("已取消", "cancelled")],
)
def test_task_status(status: str, canonical: str) -> None:
    assert apply("follow_ups", task(Status=status))["status"] == canonical


def test_call_from_the_fact_sheet_example() -> None:
    raw = {
        "id": "5725767000000524157",
        "Subject": "Follow-up on case 1042",
        "Call_Type": "Outbound",
        "Call_Start_Time": "2024-05-01T10:00:00+05:30",
        "Call_Duration": "04:35",
        "Call_Duration_in_seconds": 275,
        "Owner": OWNER,
        "Who_Id": {"name": "John Doe", "id": "5725767000000333001"},
        "What_Id": {"name": "Acme Ltd", "id": "5725767000000222001"},
        "$se_module": "Accounts",
        "Modified_Time": MODIFIED,
    }
    row = apply("calls", raw)
    assert (row["direction"], row["duration_s"], row["ticket_id"], row["purpose"]) == (
        "outbound",
        275,
        None,
        None,
    )
    assert (
        row["started_at"] == datetime(2024, 5, 1, 4, 30, tzinfo=UTC)
        and row["contact_id"] == "5725767000000333001"
    )


@pytest.mark.parametrize(
    ("fields", "duration"),
    [
        ({"Call_Duration_in_seconds": None, "Call_Duration": "12:02"}, 722),
        ({"Call_Duration_in_seconds": None, "Call_Duration": "1:02:03"}, 3723),
        ({"Call_Duration_in_seconds": 90, "Call_Duration": "99:99"}, 90),
    ],
)
def test_call_duration_falls_back_to_the_text_field(fields: dict[str, Any], duration: int) -> None:
    raw = {"id": "1", "Call_Type": "Inbound", "Modified_Time": MODIFIED, **fields}
    assert apply("calls", raw)["duration_s"] == duration


@pytest.mark.parametrize(
    ("call_type", "purpose", "expected"),
    [
        ("Inbound", "Appointment", ("inbound", "booking")),
        ("来电", "预约挂号", ("inbound", "booking")),
        ("Missed", "咨询", ("missed", "consultation")),
        ("去电", "投诉", ("outbound", "complaint")),
        ("未接来电", "Prospecting", ("missed", "other")),
    ],
)
def test_call_direction_and_purpose(call_type: str, purpose: str, expected: tuple[str, str]) -> None:
    raw = {
        "id": "1",
        "Call_Type": call_type,
        "Call_Purpose": purpose,
        "Modified_Time": MODIFIED,
        "What_Id": {"id": "5725767000000700001"},
        "$se_module": "Cases",
    }
    row = apply("calls", raw)
    assert (row["direction"], row["purpose"]) == expected and row["ticket_id"] == "5725767000000700001"


def test_alert_tasks_written_by_the_connector_never_count_as_follow_ups() -> None:
    """The alert → task → overdue follow-up → alert loop is cut at the mapping."""
    from zoneinfo import ZoneInfo

    from connector.mapping import load_mapping

    follow_ups = load_mapping("zoho", ZoneInfo("Asia/Shanghai")).entities["follow_ups"]
    assert "Alert_Source" in follow_ups.fetch_fields
    task = {
        "id": "1",
        "Modified_Time": "2026-10-01T10:00:00+08:00",
        "Owner": {"id": "9"},
        "Status": "Not Started",
        "Due_Date": "2026-10-02",
    }
    assert follow_ups.apply(task)["deleted_at"] is None
    assert follow_ups.apply({**task, "Alert_Source": "crm-connector"})["deleted_at"] is not None
