"""Convex documents → canonical records (DESIGN §2).

| Convex | record | key |
| --- | --- | --- |
| ``users`` row (or a ``threads.ownerId`` without one) | ``user`` | ``user:<userId>`` (the WorkOS subject id) |
| ``threads`` row | ``conversation`` | ``conversation:<threadId>`` |
| ``messages`` row + its ``messageParts`` | ``message`` | ``message:<threadId>/<messageId>`` |
| ``runs`` row | ``run`` | ``run:<runId>`` |
| ``receipts`` row | ``run_event`` | ``run_event:<_id>`` |
| the ``blueprints`` of an owner's threads | ``assistant`` | ``assistant:<userId>`` |
| the ``blueprints`` of an ownerless thread | ``assistant`` | ``assistant:thread/<threadId>`` |
| ``_storage`` file | ``file`` | ``file:<storageId>`` |

- Timestamps keep their milliseconds: ``created_at``/``updated_at`` are RFC 3339 with
  three fraction digits, and the integer milliseconds are in ``metadata``
  (``created_at_ms``, ``updated_at_ms``) together with ``_creationTime`` (``creation_time``,
  fractional), which orders documents written in the same millisecond (a run's user and
  assistant messages are inserted with the same ``createdAtMs``).
- A thread's messages are a flat list; each message's ``parent`` is the one before it in
  (``createdAtMs``, ``_creationTime``) order and ``active_leaf`` is the last one.
- ``status``: ``final`` → complete, ``error`` → error, ``canceled``/``streaming``/``draft``
  → aborted; the native status stays in ``metadata.status``.
- ``assistant`` is the owner's autopilot: the app keeps one per owner, built from the
  newest blueprint among the owner's threads (per thread the highest ``updatedAtMs``,
  else ``_creationTime``; later documents win ties, as in the original importer). ``data``
  holds that payload, ``raw`` every blueprint document of the owner.
- ``raw`` is the decoded document (era-B form, see :mod:`sources.convex.encoding`); a
  thread's ``anonKey`` (a bearer token for anonymous access) is replaced by its sha256.
- ``run``, ``run_event`` and ``assistant`` carry in ``data`` only what a sink needs (the
  receipt's ``json``, the blueprint payload); everything else is in ``raw``.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from ledger.kit import Record, blob_ref
from sources.convex.index import Doc, ThreadDocs
from sources.convex.parts import convert

STATUS = {"final": "complete", "error": "error", "canceled": "aborted"}


def ms(value: Any) -> int | None:
    """Milliseconds as an int, for a positive finite number (or numeric string)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    return int(value)


def iso(milliseconds: int | None) -> str | None:
    if milliseconds is None:
        return None
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(milliseconds // 1000)) + f".{milliseconds % 1000:03d}Z"
    )


def text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return stripped or None


def user_key(user_id: str) -> str:
    return f"user:{user_id}"


def conversation_key(thread_id: str) -> str:
    return f"conversation:{thread_id}"


def message_key(thread_id: str, message_id: str) -> str:
    return f"message:{thread_id}/{message_id}"


def assistant_key(owner: str | None, thread_id: str) -> str:
    return f"assistant:{owner}" if owner else f"assistant:thread/{thread_id}"


def run_event_key(doc: Doc) -> str:
    return f"run_event:{doc.ident}"


def _times(body: dict[str, Any]) -> dict[str, Any]:
    created = ms(body.get("createdAtMs"))
    updated = ms(body.get("updatedAtMs")) or created
    return {"created_at_ms": created, "updated_at_ms": updated}


def _creation_time(body: dict[str, Any]) -> float | None:
    value = body.get("_creationTime")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class RecordMaker:
    """Builds one stream's records; ``make`` is ``Source.record``."""

    def __init__(self, make) -> None:
        self.make = make

    def user(self, user_id: str, doc: Doc | None, first_thread_ms: int | None) -> Record:
        body = doc.body if doc else {}
        created = ms(body.get("createdAtMs")) if doc else first_thread_ms
        data = {
            "email": text(body.get("email")),
            "name": None,
            "username": None,
            "avatar_url": None,
            "created_at": iso(created),
            "external_ids": {"workos": user_id},
            "metadata": {
                "created_at_ms": created,
                "default_thread": text(body.get("defaultThreadId")),
                # an owner seen only in threads.ownerId: the original importer made one too
                "from_threads_only": doc is None,
            },
        }
        return self.make("user", user_key(user_id), data, body if doc else None)

    def conversation(self, thread: ThreadDocs, doc: Doc, last_message: str | None) -> Record:
        body = dict(doc.body)
        owner = text(body.get("ownerId"))
        anonymous = body.get("anonKey")
        if isinstance(anonymous, str):
            body["anonKey"] = "sha256:" + hashlib.sha256(anonymous.encode()).hexdigest()
        times = _times(body)
        data = {
            "owner": user_key(owner) if owner else None,
            "title": None,
            "created_at": iso(times["created_at_ms"]),
            "updated_at": iso(times["updated_at_ms"]),
            "assistant": assistant_key(owner, thread.thread_id) if owner else None,
            "model": None,
            "system_prompt": None,
            "pinned": False,
            "archived": False,
            "tags": [],
            "active_leaf": last_message,
            "metadata": {
                "thread_id": thread.thread_id,
                "owner_id": owner,
                "anonymous": owner is None,
                **times,
            },
        }
        return self.make("conversation", conversation_key(thread.thread_id), data, body, [data["owner"]])

    def message(self, doc: Doc, parts: list[Doc], parent: str | None) -> Record:
        body = doc.body
        thread_id = body["threadId"]
        converted = convert([part.body.get("part") for part in parts])
        content = body.get("text") if isinstance(body.get("text"), str) else None
        if not content and converted.streamed_text:
            content = converted.streamed_text
        times = _times(body)
        native_status = body.get("status")
        canonical_parts = ([{"type": "text", "text": content}] if content else []) + converted.parts
        data = {
            "conversation": conversation_key(thread_id),
            "parent": parent,
            "role": body.get("role"),
            "author": None,
            "model": converted.model,
            "created_at": iso(times["created_at_ms"]),
            "updated_at": iso(times["updated_at_ms"]),
            "status": STATUS.get(native_status, "aborted"),
            "parts": canonical_parts,
            "files": [],
            "sibling_group": 0,
            "usage": converted.usage,
            "feedback": None,
            "metadata": {
                "message_id": doc.ident,
                "status": native_status,
                "run_id": text(body.get("runId")),
                "creation_time": _creation_time(body),
                **times,
            },
        }
        raw = {"message": body, "messageParts": [part.body for part in parts]}
        key = message_key(thread_id, doc.ident)
        run = data["metadata"]["run_id"]
        return self.make(
            "message", key, data, raw, [data["conversation"], parent, f"run:{run}" if run else None]
        )

    def run(self, doc: Doc) -> Record:
        body = doc.body
        thread_id = body["threadId"]
        assistant_message = text(body.get("assistantMessageId"))
        times = _times(body)
        data = {
            "conversation": conversation_key(thread_id),
            "status": body.get("status"),
            "message": message_key(thread_id, assistant_message) if assistant_message else None,
            "created_at": iso(times["created_at_ms"]),
            "updated_at": iso(times["updated_at_ms"]),
            "metadata": {
                "run_id": doc.ident,
                "assistant_message_id": assistant_message,
                "cancel_requested": bool(body.get("cancelRequested", False)),
                **times,
            },
        }
        return self.make("run", f"run:{doc.ident}", data, body, [data["conversation"], data["message"]])

    def run_event(self, doc: Doc) -> Record:
        body = doc.body
        thread_id = body["threadId"]
        run_id = text(body.get("runId"))
        created = ms(body.get("createdAtMs"))
        data = {
            "conversation": conversation_key(thread_id),
            "run": f"run:{run_id}" if run_id else None,
            "kind": text(body.get("kind")),
            "payload": body.get("json"),
            "created_at": iso(created),
            "metadata": {
                "run_id": run_id,
                "receipt_id": text(body.get("receiptId")),
                "signature_id": text(body.get("signatureId")),
                "compiled_id": text(body.get("compiled_id")),
                "created_at_ms": created,
                "creation_time": _creation_time(body),
            },
        }
        return self.make("run_event", run_event_key(doc), data, body, [data["conversation"], data["run"]])

    def assistant(self, owner: str | None, thread_id: str, blueprints: list[tuple[str, Doc]]) -> Record:
        """The owner's autopilot from ``(thread_id, blueprint doc)`` pairs in thread order."""
        chosen: tuple[int, str, Doc, dict] | None = None
        for candidate_thread, doc in blueprints:
            payload = blueprint_payload(doc.body)
            if payload is None:
                continue
            updated = ms(doc.body.get("updatedAtMs")) or ms(doc.body.get("_creationTime")) or 0
            if chosen is None or updated >= chosen[0]:
                chosen = (updated, candidate_thread, doc, payload)
        data = {
            "owner": user_key(owner) if owner else None,
            "name": None,
            "blueprint": chosen[3] if chosen else None,
            "blueprint_source": (
                {
                    "thread": conversation_key(chosen[1]),
                    "updated_at_ms": chosen[0],
                    "document": chosen[2].body.get("_id"),
                }
                if chosen
                else None
            ),
            "blueprints": len(blueprints),
            "metadata": {"owner_id": owner},
        }
        raw = {"blueprints": [doc.body for _, doc in blueprints]}
        return self.make("assistant", assistant_key(owner, thread_id), data, raw, [data["owner"]])

    def file(self, storage_id: str, body: dict[str, Any], sha256: str | None, missing: str | None) -> Record:
        data = {
            "owner": None,
            "filename": storage_id,
            "mime": body.get("contentType"),
            "size": body.get("size") if isinstance(body.get("size"), int) else None,
            "sha256": sha256,
            "blob": blob_ref(sha256) if sha256 else None,
            "missing": missing,
        }
        return self.make("file", f"file:{storage_id}", data, body)


def blueprint_payload(body: dict[str, Any]) -> dict[str, Any] | None:
    """``blueprint`` when it is an object, else the legacy top-level ``docs`` form."""
    if isinstance(body.get("blueprint"), dict):
        return body["blueprint"]
    if isinstance(body.get("docs"), dict):
        bootstrap = body.get("bootstrapState")
        return {
            "docs": body["docs"],
            "bootstrapState": bootstrap if isinstance(bootstrap, dict) else None,
            "memory": body.get("memory", []),
        }
    return None
