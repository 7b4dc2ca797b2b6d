"""The small table type behind results.csv, the report's tables and ``merge``: CSV written as
the files always were (the header, missing cells empty, floats at full precision, quoting only
where needed), CSV read back with numbers parsed."""

from __future__ import annotations

from pathlib import Path

from hilobench.core.frame import Frame, read_csv
from hilobench.store.writer import table_frame, to_markdown


def test_csv_quotes_only_where_needed_and_keeps_full_precision() -> None:
    rows = [
        {"name": "hilo", "batch": 8, "tp": 0.1 + 0.2, "noisy": False, "tiny": 1e-05},
        {"name": 'msa, "q"', "tp": None, "noisy": True, "tiny": float("nan"), "msg": "a\nb"},
    ]
    assert Frame(rows).to_csv() == (
        "name,batch,tp,noisy,tiny,msg\n"
        "hilo,8,0.30000000000000004,False,1e-05,\n"
        '"msa, ""q""",,,True,,"a\nb"\n'
    )


def test_results_table_puts_row_columns_first_and_flattens_lists() -> None:
    rows = [{"zzz": 1, "status": "ok", "name": "hilo", "uncounted_ops": ["a", "b"],
             "samples_s": [0.1], "options": {"k": 1}}]  # fmt: skip
    df = table_frame(rows)
    assert df.columns == ["name", "uncounted_ops", "status", "zzz"]
    assert df.to_csv() == "name,uncounted_ops,status,zzz\nhilo,a;b,ok,1\n"
    assert to_markdown(df).splitlines()[2] == "| hilo | a;b | ok | 1 |"


def test_read_csv_parses_numbers_and_empty_cells(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("backbone,window,fps,note\nLITv2-S,2,18.7,\nLITv2-M,4,,x y\n")
    t = read_csv(p)
    assert t.columns == ["backbone", "window", "fps", "note"]
    assert t["window"] == [2, 4] and t["fps"] == [18.7, None] and t["note"] == [None, "x y"]
    assert t.by("backbone")["LITv2-M"]["window"] == 4


def test_frame_operations_keep_column_order() -> None:
    t = Frame([{"a": 1, "b": 2}, {"a": 3, "c": 4}])
    assert t.columns == ["a", "b", "c"] and t["b"] == [2, None]
    t2 = t.with_column("x", [9, 8], at=1).drop("c").rename({"a": "A"})
    assert t2.columns == ["A", "x", "b"] and list(t2) == [
        {"A": 1, "x": 9, "b": 2},
        {"A": 3, "x": 8, "b": None},
    ]
    assert len(t.dropna("b")) == 1
    assert [(k, len(g)) for k, g in Frame([{"k": "z"}, {"k": "a"}, {"k": "z"}]).groups("k")] == [
        ("a", 1),
        ("z", 2),
    ]
