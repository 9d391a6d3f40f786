"""Blueprint → autopilot profile and policy: the original importer's mapping (issue #1654).

A blueprint (``apps/web/convex/autopilot/defaults.ts``) holds ``docs.user``,
``docs.identity``, ``docs.character``, ``docs.rules`` and ``bootstrapState``. It becomes:

- profile: ``owner_display_name`` = ``docs.user.addressAs`` ?? ``docs.user.name`` ?? the
  owner's name ?? ``Autopilot Owner`` (≤ 120); ``autopilot_voice`` = ``identity.vibe`` ??
  ``character.vibe``; ``persona_summary`` = ``Identity: … || Voice: … || Core truths: a | b
  || Boundaries: … || Rules: <body, whitespace collapsed>`` (≤ 2000); ``principles`` =
  the core truths; ``preferences`` and ``onboarding_answers`` as below; schema 1.
- policy: no model, empty tool lists, approval required, no spend caps, the app's L402
  host allowlist, ``data_policy = {source: khala_blueprint, rules, continuity}``.

With ``skip_blueprints`` (or no blueprint) the same functions give the defaults the
original importer wrote. Column lengths are applied later, by the sink, with counters
(the original wrote ``autopilot_voice`` uncut into a varchar(64) column).
"""

from __future__ import annotations

import re
from typing import Any

PERSONA_LIMIT = 2000
_SPACE = re.compile(r"\s+")


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return stripped or None


def _section(docs: dict[str, Any], name: str) -> dict[str, Any]:
    value = docs.get(name)
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return (
        [item for item in value if isinstance(item, str) and item.strip()] if isinstance(value, list) else []
    )


def profile(blueprint: dict[str, Any] | None, owner_name: str) -> dict[str, Any]:
    """The ``autopilot_profiles`` content (without the autopilot id and timestamps)."""
    blueprint = blueprint or {}
    docs = blueprint.get("docs") if isinstance(blueprint.get("docs"), dict) else {}
    user, identity = _section(docs, "user"), _section(docs, "identity")
    character, rules = _section(docs, "character"), _section(docs, "rules")
    bootstrap = blueprint.get("bootstrapState") if isinstance(blueprint.get("bootstrapState"), dict) else {}
    voice = _text(identity.get("vibe")) or _text(character.get("vibe"))
    truths, boundaries = _strings(character.get("coreTruths")), _strings(character.get("boundaries"))
    identity_name = _text(identity.get("name"))
    persona = []
    if identity_name:
        persona.append(f"Identity: {identity_name}")
    if voice:
        persona.append(f"Voice: {voice}")
    if truths:
        persona.append("Core truths: " + " | ".join(truths))
    if boundaries:
        persona.append("Boundaries: " + " | ".join(boundaries))
    body = _text(rules.get("body"))
    if body:
        persona.append("Rules: " + _SPACE.sub(" ", body))
    user_fields = {name: _text(user.get(name)) for name in ("name", "addressAs", "pronouns", "timeZone")}
    return {
        "owner_display_name": _text(user.get("addressAs"))
        or _text(user.get("name"))
        or owner_name
        or "Autopilot Owner",
        "persona_summary": " || ".join(persona)[:PERSONA_LIMIT] if persona else None,
        "autopilot_voice": voice,
        "principles": truths,
        "preferences": {
            "user": {**user_fields, "context": _text(user.get("context")), "notes": _text(user.get("notes"))},
            "character": {
                "boundaries": boundaries,
                "continuity": _text(character.get("continuity")),
                "vibe": _text(character.get("vibe")),
            },
            "identity": {
                "name": identity_name,
                "emoji": _text(identity.get("emoji")),
                "creature": _text(identity.get("creature")),
            },
        },
        "onboarding_answers": {
            "bootstrapState": bootstrap,
            "user": user_fields,
            "identity": {"name": identity_name, "vibe": _text(identity.get("vibe"))},
        },
        "schema_version": 1,
    }


def policy(blueprint: dict[str, Any] | None, allowed_hosts: list[str]) -> dict[str, Any]:
    """The ``autopilot_policies`` content (without the autopilot id and timestamps)."""
    blueprint = blueprint or {}
    docs = blueprint.get("docs") if isinstance(blueprint.get("docs"), dict) else {}
    hosts = list(dict.fromkeys(host.strip().lower() for host in allowed_hosts if host.strip()))
    return {
        "model_provider": None,
        "model": None,
        "tool_allowlist": [],
        "tool_denylist": [],
        "l402_require_approval": True,
        "l402_max_spend_msats_per_call": None,
        "l402_max_spend_msats_per_day": None,
        "l402_allowed_hosts": hosts,
        "data_policy": {
            "source": "khala_blueprint",
            "rules": _text(_section(docs, "rules").get("body")),
            "continuity": _text(_section(docs, "character").get("continuity")),
        },
    }
