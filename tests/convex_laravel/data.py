"""Export contents the tests use: the original importer's fixture, and a richer one.

``original()`` is ``KhalaImportChatCommandTest.php``'s fixture (one user, one owned
thread, one anonymous thread, a run, two messages, a tool receipt, a blueprint), with
times written as Convex writes ``v.number()``: floats.

``rich()`` adds what the original importer lost: a user and an assistant message in
the same millisecond and a third message in the same second, tool calls and results in
``messageParts``, a run whose id is not a UUID, two identical receipts in the same
second, Int64 and bytes inside a receipt, an owner without a ``users`` row, documents
of a thread missing from the export, two blueprint versions, and strings longer than
their columns.
"""

from __future__ import annotations

from typing import Any

T0 = 1_735_700_000_000.0
THREAD = "11111111-1111-1111-1111-111111111111"
ANON_THREAD = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
RUN = "22222222-2222-2222-2222-222222222222"
USER_MESSAGE = "33333333-3333-3333-3333-333333333333"
ASSISTANT_MESSAGE = "44444444-4444-4444-4444-444444444444"


def blueprint(name: str, vibe: str, updated: float, thread: str = THREAD) -> dict[str, Any]:
    return {
        "threadId": thread,
        "updatedAtMs": updated,
        "blueprint": {
            "bootstrapState": {"status": "complete", "stage": None, "templateVersion": 5.0},
            "docs": {
                "user": {"name": name, "addressAs": name},
                "identity": {"name": "Autopilot", "vibe": vibe},
                "character": {
                    "coreTruths": ["Prefer verification over guessing"],
                    "boundaries": ["No irreversible changes without explicit approval"],
                    "continuity": "Keep a durable profile.",
                },
                "rules": {"body": "You are   Autopilot.\n Be brief."},
            },
            "memory": [],
        },
    }


def original(user_id: str = "user_legacy_1", email: str | None = None) -> dict[str, list[dict[str, Any]]]:
    return {
        "users": [{"userId": user_id, **({"email": email} if email else {}), "createdAtMs": T0, "defaultThreadId": THREAD}],
        "threads": [
            {"threadId": THREAD, "ownerId": user_id, "createdAtMs": T0 + 1000, "updatedAtMs": T0 + 2000},
            {"threadId": ANON_THREAD, "anonKey": "anon-secret-key", "createdAtMs": T0 + 1000, "updatedAtMs": T0 + 2000},
        ],
        "blueprints": [blueprint("Chris", "direct and practical", T0 + 30_000)],
        "runs": [
            {"threadId": THREAD, "runId": RUN, "assistantMessageId": ASSISTANT_MESSAGE, "status": "final",
             "cancelRequested": False, "createdAtMs": T0 + 10_000, "updatedAtMs": T0 + 20_000},
        ],
        "messages": [
            {"threadId": THREAD, "messageId": USER_MESSAGE, "role": "user", "status": "final",
             "text": "Summarize my previous conversation.", "createdAtMs": T0 + 5000, "updatedAtMs": T0 + 5000},
            {"threadId": THREAD, "messageId": ASSISTANT_MESSAGE, "role": "assistant", "status": "final",
             "text": "Here is a summary of your previous conversation.", "runId": RUN,
             "createdAtMs": T0 + 20_000, "updatedAtMs": T0 + 20_000},
        ],
        "receipts": [
            {"threadId": THREAD, "runId": RUN, "kind": "tool", "json": {"tool": "echo", "ok": True},
             "createdAtMs": T0 + 20_500},
        ],
    }  # fmt: skip


# -- the richer export -----------------------------------------------------------------------

ALICE, BOB = "user_alice", "user_bob"
T1, T2 = "55555555-5555-4555-8555-555555555555", "66666666-6666-4666-8666-666666666666"
ORPHAN_THREAD = "77777777-7777-4777-8777-777777777777"
R1, R2_LEGACY = "88888888-8888-4888-8888-888888888888", "run-legacy-7"
M1, M2, M3, M4 = (f"9999999{n}-9999-4999-8999-99999999999{n}" for n in range(1, 5))
B1 = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbb1"
LONG_VIBE = "warm, exacting, " * 8  # 128 characters: autopilot_voice holds 64
SAME_MS = T0 + 100_100.0


def rich() -> dict[str, list[dict[str, Any]]]:
    tool_json = {"tool": "search", "tokens": 33, "digest": b"\x00\x01\x02", "ok": True}
    return {
        "users": [{"userId": ALICE, "createdAtMs": T0, "defaultThreadId": T1}],
        "threads": [
            {"threadId": T1, "ownerId": ALICE, "createdAtMs": T0 + 100_000, "updatedAtMs": T0 + 200_000},
            {"threadId": T2, "ownerId": BOB, "createdAtMs": T0 + 50_000, "updatedAtMs": T0 + 60_000},
            {"threadId": ANON_THREAD, "anonKey": "anon-secret-key", "createdAtMs": T0, "updatedAtMs": T0},
        ],
        "messages": [
            # m2 (assistant) is written in the same millisecond as m1 (user), as createRun does
            {"threadId": T1, "messageId": M2, "role": "assistant", "status": "final", "text": "Sure: checking.",
             "runId": R1, "createdAtMs": SAME_MS, "updatedAtMs": SAME_MS + 5, "_creationTime": SAME_MS + 0.25},
            {"threadId": T1, "messageId": M1, "role": "user", "status": "final",
             "text": "  Find   the report\nfrom last week " + "x" * 300, "createdAtMs": SAME_MS, "updatedAtMs": SAME_MS,
             "_creationTime": SAME_MS + 0.125},
            {"threadId": T1, "messageId": M3, "role": "user", "status": "final", "text": "And the summary?",
             "createdAtMs": SAME_MS + 800, "updatedAtMs": SAME_MS + 800},
            {"threadId": T1, "messageId": M4, "role": "assistant", "status": "final", "text": "Here it is.",
             "runId": R2_LEGACY, "createdAtMs": SAME_MS + 1500, "updatedAtMs": SAME_MS + 1600},
            {"threadId": T2, "messageId": B1, "role": "user", "status": "final", "text": "Hello from Bob",
             "createdAtMs": T0 + 55_000, "updatedAtMs": T0 + 55_000},
            {"threadId": ANON_THREAD, "messageId": "cccccccc-cccc-4ccc-8ccc-cccccccccccc", "role": "user",
             "status": "final", "text": "anonymous hello", "createdAtMs": T0 + 1, "updatedAtMs": T0 + 1},
            {"threadId": ORPHAN_THREAD, "messageId": "dddddddd-dddd-4ddd-8ddd-dddddddddddd", "role": "user",
             "status": "final", "text": "my thread is gone", "createdAtMs": T0 + 2, "updatedAtMs": T0 + 2},
        ],
        "messageParts": [
            {"threadId": T1, "runId": R2_LEGACY, "messageId": M4, "seq": 0,
             "part": {"type": "response-metadata", "modelId": "gpt-4o-mini"}, "createdAtMs": SAME_MS + 1500},
            {"threadId": T1, "runId": R2_LEGACY, "messageId": M4, "seq": 1,
             "part": {"type": "reasoning-delta", "id": "r", "delta": "Look it up."}, "createdAtMs": SAME_MS + 1500},
            {"threadId": T1, "runId": R2_LEGACY, "messageId": M4, "seq": 2,
             "part": {"type": "tool-call", "id": "call_1", "name": "search", "params": {"q": "report"}},
             "createdAtMs": SAME_MS + 1500},
            {"threadId": T1, "runId": R2_LEGACY, "messageId": M4, "seq": 3,
             "part": {"type": "tool-result", "id": "call_1", "name": "search", "result": {"hits": 2},
                      "isFailure": False}, "createdAtMs": SAME_MS + 1500},
            {"threadId": T1, "runId": R2_LEGACY, "messageId": M4, "seq": 4,
             "part": {"type": "finish", "reason": "stop", "usage": {"inputTokens": 12, "outputTokens": 5}},
             "createdAtMs": SAME_MS + 1600},
        ],
        "runs": [
            {"threadId": T1, "runId": R1, "assistantMessageId": M2, "status": "final", "cancelRequested": False,
             "createdAtMs": SAME_MS, "updatedAtMs": SAME_MS + 5},
            {"threadId": T1, "runId": R2_LEGACY, "assistantMessageId": M4, "status": "streaming",
             "cancelRequested": True, "createdAtMs": SAME_MS + 1500, "updatedAtMs": SAME_MS + 1600},
        ],
        "receipts": [
            {"threadId": T1, "runId": R1, "kind": "tool", "json": tool_json, "createdAtMs": SAME_MS + 2},
            {"threadId": T1, "runId": R1, "kind": "tool", "json": tool_json, "createdAtMs": SAME_MS + 3},
            {"threadId": T1, "runId": R2_LEGACY, "kind": "dse.predict", "json": {"label": "x"},
             "signatureId": "sig", "receiptId": "rcpt", "compiled_id": "c1", "createdAtMs": SAME_MS + 1600},
        ],
        "blueprints": [
            blueprint("Alice (old)", "calm", T0 + 1000, T1),
            blueprint("Alice", LONG_VIBE, T0 + 300_000, T1),
            blueprint("Bob", "cheerful", T0 + 70_000, T2),
            blueprint("Anon", "quiet", T0 + 5, ANON_THREAD),
        ],
        "lightningInvoices": [{"invoiceId": "inv-1", "amountMsats": 1000}],
    }  # fmt: skip
