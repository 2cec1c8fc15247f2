"""The bundled ShareCRM mapping on records shaped like sharecrm.md §4/§8, and a tenant override of
work-order fields that live in custom ``field_xxxx__c`` fields."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sharecrm_support import MAPPINGS, TZ

from connector.mapping import RecordError, load_mapping

OWNER = "FSUID_0123456789ABCDEF0123456789ABCDEF"
CREATOR = "FSUID_FEDCBA9876543210FEDCBA9876543210"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ticket(**fields: object) -> dict[str, object]:
    return {
        "_id": "65f0a1b2c3d4e5f601234567",
        "name": "投诉：候诊时间过长",
        "contact_id": "65f0a1b2c3d4e5f601230001",
        "owner": [OWNER],
        "created_by": [CREATOR],
        "case_type": "投诉",
        "case_source": "微信",
        "priority": "高",
        "status": "处理中",
        "create_time": 1719800000000,
        "last_modified_time": 1719886400000,
        "first_response_time": 1719803600000,
        "satisfaction": "4",
        "life_status": "normal",
        "is_deleted": False,
        **fields,
    }


def test_work_order_fields_and_chinese_values() -> None:
    row = MAPPINGS["tickets"].apply(ticket())
    assert row["external_id"] == "65f0a1b2c3d4e5f601234567"
    assert row["updated_at"] == utc(2024, 7, 2, 2, 13, 20)
    assert row["created_at"] == utc(2024, 7, 1, 2, 13, 20)
    assert (row["category"], row["channel"], row["priority"], row["status"]) == (
        "complaint",
        "wechat",
        "high",
        "open",
    )
    assert row["owner_id"] == OWNER and row["contact_id"] == "65f0a1b2c3d4e5f601230001"
    assert row["satisfaction"] == 4 and row["first_response_at"] == utc(2024, 7, 1, 3, 13, 20)
    assert row["deleted_at"] is None


@pytest.mark.parametrize(
    ("status", "canonical"),
    [
        ("待处理", "open"),
        ("处理中", "open"),
        ("挂起", "pending"),
        ("已解决", "resolved"),
        ("已关闭", "closed"),
    ],
)
def test_work_order_statuses(status: str, canonical: str) -> None:
    assert MAPPINGS["tickets"].apply(ticket(status=status))["status"] == canonical


def test_an_unknown_status_is_a_record_error_not_a_guess() -> None:
    with pytest.raises(RecordError, match="status"):
        MAPPINGS["tickets"].apply(ticket(status="神秘状态"))


@pytest.mark.parametrize(("field", "value"), [("life_status", "invalid"), ("is_deleted", True)])
def test_invalidated_or_deleted_rows_are_marked_deleted(field: str, value: object) -> None:
    row = MAPPINGS["tickets"].apply(ticket(**{field: value}))
    assert row["deleted_at"] == row["updated_at"]


def test_owner_falls_back_to_the_creator() -> None:
    assert MAPPINGS["tickets"].apply(ticket(owner=[]))["owner_id"] == CREATOR


def test_follow_up_links_owner_and_date_only_due() -> None:
    record = {
        "_id": "fu1",
        "last_modified_time": 1719886400000,
        "related_object_data": [
            {"describe_api_name": "AccountObj", "id": "acc1", "name": "示例"},
            {"describe_api_name": "ContactObj", "id": "c1", "name": "张三"},
            {"describe_api_name": "CasesObj", "id": "t1", "name": "投诉"},
        ],
        "created_by": [CREATOR],
        "active_record_type": "回访",
        "due_date": 1585929600000,  # 2020-04-04, midnight Asia/Shanghai
        "follow_up_status": "待回访",
        "active_record_content": "患者恢复良好",
    }
    row = MAPPINGS["follow_ups"].apply(record)
    assert (row["contact_id"], row["ticket_id"], row["owner_id"]) == ("c1", "t1", CREATOR)
    assert row["kind"] == "revisit" and row["status"] == "planned" and row["outcome"] == "患者恢复良好"
    assert row["due_at"] == datetime(2020, 4, 5, tzinfo=TZ).astimezone(UTC)  # due by the end of that day


def test_calls_and_contacts() -> None:
    call = MAPPINGS["calls"].apply(
        {
            "_id": "call1",
            "last_modified_time": 1719886400000,
            "owner": [OWNER],
            "related_object_data": [{"describe_api_name": "ContactObj", "id": "c9"}],
            "call_type": "呼出",
            "call_purpose": "预约挂号",
            "call_start_time": 1719800000000,
            "call_duration": 185,
        }
    )
    assert (call["contact_id"], call["direction"], call["purpose"], call["duration_s"]) == (
        "c9",
        "outbound",
        "booking",
        185,
    )
    contact = MAPPINGS["contacts"].apply(
        {
            "_id": "c9",
            "name": "张三",
            "mobile": "13800000000",
            "tel": "0571-1234567",
            "owner": [OWNER],
            "last_modified_time": 1,
            "create_time": 1,
        }
    )
    assert (contact["name"], contact["mobile"], contact["phone"], contact["owner_id"]) == (
        "张三",
        "13800000000",
        "0571-1234567",
        OWNER,
    )


def test_a_tenant_override_reads_custom_work_order_fields(tmp_path: Path) -> None:
    override = tmp_path / "clinic-fx.toml"
    override.write_text(
        """
extends = "sharecrm"
[entities.tickets.columns]
status = { path = "field_v24BD__c", transform = "value_map", map = "case_status", required = true }
category = { path = "field_0uAwt__c", transform = "value_map", map = "case_category" }
satisfaction = { path = "field_myd01__c", transform = "int" }
[value_maps.case_status.values]
"待患者确认" = "pending"
"已回访关闭" = "closed"
""",
        encoding="utf-8",
    )
    mapping = load_mapping(override, TZ).entities["tickets"]
    row = mapping.apply(
        ticket(status=None, field_v24BD__c="已回访关闭", field_0uAwt__c="咨询", field_myd01__c=5)
    )
    assert (row["status"], row["category"], row["satisfaction"]) == ("closed", "consultation", 5)
    assert mapping.apply(ticket(field_v24BD__c="已解决"))["status"] == "resolved"  # defaults still apply
    assert {"field_v24BD__c", "field_0uAwt__c", "field_myd01__c"} <= set(mapping.fetch_fields)
