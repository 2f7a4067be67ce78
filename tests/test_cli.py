"""The `thidua` command as an officer uses it: output, exit codes and what lands in the DB."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import main
from storage.db import make_engine, make_sessionmaker
from storage.models import Campaign, Invite, Person, Registration, Title, Unit

T = TypeVar("T")

ORG_CSV = (
    "code,name,parent_code,kind\n"
    "CDCS-MAY,Công đoàn cơ sở Công ty May Bắc Kạn,CD-KCN,CĐCS\n"
    "CD-KCN,Công đoàn Khu công nghiệp,LDLD-BK,công đoàn cấp trên cơ sở\n"
    "LDLD-BK,LĐLĐ tỉnh Bắc Kạn,,LĐLĐ tỉnh\n"
)
CAMPAIGN_YAML = """\
code: TD2027
name: Phong trào thi đua năm 2027
issuer: LDLD-BK
year: 2027
registration_deadline: 2027-01-25
phases:
  - {name: Đợt 1, start: 2027-01-01, end: 2027-06-30}
  - {name: Đợt 2, start: 2027-07-01, end: 2027-12-31}
titles: [LDTT, CSTDCS, TTLDXS]
"""


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite database for the command, and no stray settings from the machine."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'thidua.db'}"
    monkeypatch.chdir(tmp_path)  # no .env from the project directory
    monkeypatch.setenv("DATABASE_URL", url)
    for name in ("TELEGRAM_BOT_USERNAME", "TELEGRAM_BOT_TOKEN", "THIDUA_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return url


def query(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def count(url: str, model: type) -> int:
    async def work(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    return query(url, work)


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("thidua ")


def test_db_upgrade_creates_the_schema_and_the_catalogue(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    assert "Database is up to date" in capsys.readouterr().out
    assert count(db, Title) > 10
    assert main(["db", "upgrade"]) == 0  # idempotent


def test_org_import_prints_a_summary(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "org.csv", ORG_CSV)
    assert main(["org", "import", file]) == 0
    assert capsys.readouterr().out.strip() == "Imported 3 units (3 new, 0 updated)"
    renamed = ORG_CSV.replace("Công đoàn Khu công nghiệp", "Công đoàn các KCN tỉnh Bắc Kạn")
    assert main(["org", "import", write(tmp_path / "org2.csv", renamed)]) == 0
    assert capsys.readouterr().out.strip() == ("Imported 3 units (0 new, 1 updated, 2 unchanged)")

    async def paths(session: AsyncSession) -> dict[str, str]:
        return {u.code: u.path for u in await session.scalars(select(Unit))}

    found = query(db, paths)
    assert found["CDCS-MAY"].startswith(found["CD-KCN"])
    assert found["CD-KCN"].startswith(found["LDLD-BK"])


def test_a_bad_org_file_names_the_row_and_writes_nothing(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = ORG_CSV.replace("nghiệp,LDLD-BK", "nghiệp,LDLD-XX").replace(
        "CDCS-MAY,Công đoàn cơ sở Công ty May Bắc Kạn", "CDCS-MAY,"
    )
    assert main(["org", "import", write(tmp_path / "org.csv", bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "row 2: name is empty",
        "row 3: unknown parent_code 'LDLD-XX' (not in this file nor in the database)",
        "Nothing was imported; fix the file and run the command again.",
    ]
    assert count(db, Unit) == 0


def test_members_import_from_xlsx(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["org", "import", write(tmp_path / "org.csv", ORG_CSV)]) == 0
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["unit_code", "full_name", "phone", "position"])
    sheet.append(["CDCS-MAY", "Nguyễn Thị Hoa", "0912 345 678", "Tổ trưởng tổ Cắt"])
    sheet.append(["CDCS-MAY", "Trần Văn Bình", 987654321, None])
    workbook.save(tmp_path / "members.xlsx")
    capsys.readouterr()

    assert main(["members", "import", str(tmp_path / "members.xlsx")]) == 0
    assert capsys.readouterr().out.strip() == "Imported 2 members (2 new, 0 updated)"

    async def phones(session: AsyncSession) -> list[str | None]:
        return sorted(await session.scalars(select(Person.phone)), key=str)

    assert query(db, phones) == ["0912345678", "0987654321"]


def test_a_bad_roster_writes_nothing(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["org", "import", write(tmp_path / "org.csv", ORG_CSV)]) == 0
    roster = (
        "unit_code;full_name;phone\n"
        "CDCS-MAY;Nguyễn Thị Hoa;0912345678\n"
        "CDCS-MAY;Trần Văn Bình;0912345678\n"
    )
    assert main(["members", "import", write(tmp_path / "m.csv", roster)]) == 1
    err = capsys.readouterr().err
    assert "row 3: phone 0912345678 already appears in row 2" in err
    assert count(db, Person) == 0


def test_expected_errors_are_one_line_without_traceback(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["org", "import", "khong-co.csv"]) == 1
    assert capsys.readouterr().err == "error: file not found: khong-co.csv\n"
    assert main(["org", "import", write(tmp_path / "org.pdf", "x")]) == 1
    assert "unsupported file type '.pdf'" in capsys.readouterr().err
    assert main(["export", "registrations", "--campaign", "TD2099"]) == 1
    assert capsys.readouterr().err == "error: unknown campaign 'TD2099'\n"
    assert main(["invite", "create", "--role", "leader", "--unit", "CDCS-XX"]) == 1
    assert capsys.readouterr().err == "error: unknown unit code 'CDCS-XX'\n"


def test_campaign_load(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["org", "import", write(tmp_path / "org.csv", ORG_CSV)]) == 0
    capsys.readouterr()
    file = write(tmp_path / "td2027.yaml", CAMPAIGN_YAML)
    assert main(["campaign", "load", file]) == 0
    assert capsys.readouterr().out.strip() == (
        "Loaded campaign TD2027 «Phong trào thi đua năm 2027»: 2 phase(s), 3 title(s), "
        "registration deadline 25/01/2027"
    )
    assert main(["campaign", "load", file]) == 0  # loading again updates, no duplicate
    assert count(db, Campaign) == 1


def test_bad_campaign_files(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = write(tmp_path / "broken.yaml", "code: TD2027\nname: [Phong trào\n")
    assert main(["campaign", "load", broken]) == 1
    err = capsys.readouterr().err
    assert err.startswith("not valid YAML at line")
    assert "Traceback" not in err

    unknown = CAMPAIGN_YAML.replace("issuer: LDLD-BK", "issuer: LDLD-XX")
    assert main(["campaign", "load", write(tmp_path / "td.yaml", unknown)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "issuer: unknown unit code 'LDLD-XX' (import the units first)",
        "The campaign was not loaded.",
    ]
    assert count(db, Campaign) == 0


def test_invites_create_list_revoke(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["org", "import", write(tmp_path / "org.csv", ORG_CSV)]) == 0
    capsys.readouterr()

    assert main(["invite", "create", "--role", "leader", "--unit", "CDCS-MAY"]) == 0
    out = capsys.readouterr().out
    code = out.split("Code: ")[1].split()[0]
    assert f"Link: https://t.me/<bot>?start={code}" in out
    assert "TELEGRAM_BOT_USERNAME" in out

    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "@thidua_bk_bot")
    args = ["invite", "create", "--role", "member", "--unit", "CDCS-MAY", "--uses", "50"]
    assert main([*args, "--days", "30"]) == 0
    out = capsys.readouterr().out
    second = out.split("Code: ")[1].split()[0]
    assert f"Link: https://t.me/thidua_bk_bot?start={second}" in out
    assert "up to 50 use(s)" in out

    assert main(["invite", "revoke", code]) == 0
    assert capsys.readouterr().out.strip() == "Revoked invite for leader of CDCS-MAY"
    assert main(["invite", "list", "--unit", "LDLD-BK"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 2
    assert listing[0].startswith(second) and listing[0].endswith("active")
    assert listing[1].startswith(code) and listing[1].endswith("revoked")
    assert count(db, Invite) == 2

    assert main(["invite", "create", "--role", "member", "--unit", "CDCS-MAY", "--uses", "0"]) == 2
    assert "must be at least 1" in capsys.readouterr().err


def _register(db: str) -> None:
    async def work(session: AsyncSession) -> None:
        campaign = await session.scalar(select(Campaign))
        unit = await session.scalar(select(Unit).where(Unit.code == "CDCS-MAY"))
        assert campaign is not None and unit is not None
        person = Person(full_name="Nguyễn Thị Hoa", phone="0912345678", unit_id=unit.id)
        session.add(person)
        await session.flush()
        at = datetime(2027, 1, 10, 3, 0, tzinfo=UTC)
        session.add_all(
            [
                Registration(
                    receipt_no="TD2027-0001",
                    campaign_id=campaign.id,
                    title_code="LDTT",
                    person_id=person.id,
                    unit_id=unit.id,
                    created_at=at,
                    updated_at=at,
                ),
                Registration(
                    receipt_no="TD2027-0002",
                    campaign_id=campaign.id,
                    title_code="TTLDXS",
                    is_collective=True,
                    unit_id=unit.id,
                    source="leader",
                    created_at=at,
                    updated_at=at,
                ),
            ]
        )

    query(db, work)


def test_export_registrations(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["org", "import", write(tmp_path / "org.csv", ORG_CSV)]) == 0
    assert main(["campaign", "load", write(tmp_path / "td.yaml", CAMPAIGN_YAML)]) == 0
    _register(db)
    capsys.readouterr()

    # CSV to the terminal.
    assert main(["export", "registrations", "--campaign", "TD2027", "--format", "csv"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert [row[0] for row in table[1:]] == ["TD2027-0002", "TD2027-0001"]
    assert table[2][1:3] == ["Nguyễn Thị Hoa", "0912345678"]

    # A CSV file for Excel carries a BOM.
    out_csv = tmp_path / "dk.csv"
    assert main(["export", "registrations", "--campaign", "TD2027", "-o", str(out_csv)]) == 0
    assert out_csv.read_bytes().startswith(b"\xef\xbb\xbf")

    # The CSV is written as it is read: a failed export (here an unknown unit) leaves the
    # file that was there as it was, and no half-written one beside it.
    before = out_csv.read_bytes()
    bad = ["export", "registrations", "--campaign", "TD2027", "--unit", "CD-XX"]
    assert main([*bad, "-o", str(out_csv)]) == 1
    assert "unknown unit code 'CD-XX'" in capsys.readouterr().err
    assert out_csv.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".part") == []

    # XLSX, for one unit's subtree: the familiar form, a sheet for individuals and one for
    # collectives (tests/test_registration_forms.py checks the layout itself).
    out_xlsx = tmp_path / "dk.xlsx"
    args = ["export", "registrations", "--campaign", "TD2027", "--unit", "CD-KCN"]
    assert main([*args, "--format", "xlsx", "-o", str(out_xlsx)]) == 0
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(f"Exported 2 registration(s) (1 individual, 1 collective) to {out_xlsx}")
    )
    workbook = load_workbook(out_xlsx)
    assert workbook.sheetnames == ["Cá nhân", "Tập thể"]
    person = next(workbook["Cá nhân"].iter_rows(min_row=9, values_only=True))
    # The row's own state, and its unit list's beside it (nobody sent the list yet).
    assert person[1] == "Nguyễn Thị Hoa"
    assert person[-3:] == ("TD2027-0001", "Đã đăng ký", "Chưa gửi")
    unit = next(workbook["Tập thể"].iter_rows(min_row=9, values_only=True))
    assert unit[1] == "Công đoàn cơ sở Công ty May Bắc Kạn" and unit[-3] == "TD2027-0002"

    # Every list in one workbook; CSV holds only one.
    assert main([*args, "--kind", "all", "-o", str(tmp_path / "all.xlsx")]) == 0
    assert load_workbook(tmp_path / "all.xlsx").sheetnames == [
        "Cá nhân",
        "Tập thể",
        "Sáng kiến",
        "Công trình",
    ]
    assert main([*args, "--kind", "all", "--format", "csv"]) == 1
    assert "a CSV file holds one list" in capsys.readouterr().err

    assert main(["export", "registrations", "--campaign", "TD2027", "--format", "xlsx"]) == 1
    assert "needs -o FILE" in capsys.readouterr().err
