"""Chatbot UI history files (v1 and v2)."""

from __future__ import annotations

import base64
import json
import sqlite3
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.exports.samples.expected import PDF, PNG, Expected


def chatbotui_files(folder: Path) -> tuple[list[Path], Expected]:
    """A v1 (bare array) file and a v2 (unversioned, numeric folders) file."""
    owner = "zoe@example.org"
    expected = Expected(users={f"user:{owner}"})
    v1 = [
        {
            "id": 1,
            "name": "Erste 🙂",
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hallo"}],
        },
        {"id": 2, "name": "broken", "messages": "nope"},
    ]
    expected.add(
        f"conversation:{owner}/1",
        [(f"message:{owner}/1/0", None), (f"message:{owner}/1/1", f"message:{owner}/1/0")],
        f"message:{owner}/1/1",
    )
    expected.rejected.add(f"conversation:{owner}/2")
    v2 = {
        "history": [
            {
                "id": "v2-a",
                "name": "Zweite",
                "model": {"id": "gpt-3.5-turbo", "name": "GPT-3.5"},
                "prompt": "Be brief.",
                "folderId": 7,
                "messages": [
                    {"role": "user", "content": "eins"},
                    {"role": "assistant", "content": 42},
                    {"role": "assistant", "content": "drei"},
                ],
            },
            {"id": "v2-empty", "name": "", "messages": []},
        ],
        "folders": [{"id": 7, "name": "Arbeit"}],
    }
    # the middle message is rejected (content is not text); the next hangs from the one before it
    expected.add(
        f"conversation:{owner}/v2-a",
        [(f"message:{owner}/v2-a/0", None), (f"message:{owner}/v2-a/2", f"message:{owner}/v2-a/0")],
        f"message:{owner}/v2-a/2",
    )
    expected.add(f"conversation:{owner}/v2-empty", [], None)
    paths = [folder / "chatbot_ui_history_v1.json", folder / "chatbot_ui_history_v2.json"]
    paths[0].write_text(json.dumps(v1, ensure_ascii=False), encoding="utf-8")
    paths[1].write_text(json.dumps(v2, ensure_ascii=False), encoding="utf-8")
    return paths, expected
