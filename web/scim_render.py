"""SCIM JSON: resources, list responses, errors and the discovery documents (RFC 7643/7644).

Only rendering: the values come from `service.scim`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from service.scim import GROUP_SCHEMA, USER_SCHEMA, GroupView, Page, UserView

LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
MEDIA_TYPE = "application/scim+json"
# Always returned, whatever `attributes` / `excludedAttributes` say (RFC 7643 §7).
_ALWAYS = frozenset({"id", "schemas", "meta"})


def _when(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def _meta(kind: str, location: str, created: datetime | None, modified: datetime | None) -> dict[str, Any]:
    return {"resourceType": kind, "created": _when(created), "lastModified": _when(modified), "location": location}


def user(view: UserView, base: str) -> dict[str, Any]:
    row = view.row
    name = {k: v for k, v in (("givenName", row.given_name), ("familyName", row.family_name)) if v is not None}
    out: dict[str, Any] = {"schemas": [USER_SCHEMA], "id": row.scim_id}
    if row.idp_external_id is not None:
        out["externalId"] = row.idp_external_id
    out["userName"] = row.email
    if name:
        out["name"] = name
    if row.display_name is not None:
        out["displayName"] = row.display_name
    out["emails"] = [{"value": row.email, "type": "work", "primary": True}]
    out["active"] = row.active
    out["meta"] = _meta("User", f"{base}/Users/{row.scim_id}", row.created_at, row.updated_at)
    return out


def group(view: GroupView, base: str) -> dict[str, Any]:
    row = view.row
    out: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": row.scim_id}
    if row.idp_external_id is not None:
        out["externalId"] = row.idp_external_id
    out["displayName"] = view.display_name
    if view.members is not None:
        # value and $ref only: display and type would differ from what the client wrote.
        out["members"] = [{"value": scim_id, "$ref": f"{base}/Users/{scim_id}"} for scim_id, _ in view.members]
    out["meta"] = _meta("Group", f"{base}/Groups/{row.scim_id}", row.created_at, row.updated_at)
    return out


def project(resource: dict[str, Any], attributes: Iterable[str], excluded: Iterable[str]) -> dict[str, Any]:
    """`attributes` / `excludedAttributes` (top-level names, or `name.givenName`)."""
    wanted = {a.split(":")[-1].lower() for a in attributes}
    dropped = {a.split(":")[-1].lower() for a in excluded}
    if not wanted and not dropped:
        return resource
    out: dict[str, Any] = {}
    for key, value in resource.items():
        low = key.lower()
        if low in _ALWAYS:
            out[key] = value
            continue
        if wanted:
            subs = {w.split(".", 1)[1] for w in wanted if w.startswith(low + ".")}
            if low in wanted:
                out[key] = value
            elif subs and isinstance(value, Mapping):
                out[key] = {k: v for k, v in value.items() if k.lower() in subs}
            elif subs and isinstance(value, list):
                out[key] = [{k: v for k, v in item.items() if k.lower() in subs} for item in value]
            continue
        if low in dropped:
            continue
        subs = {d.split(".", 1)[1] for d in dropped if d.startswith(low + ".")}
        if subs and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k.lower() not in subs}
        out[key] = value
    return out


def list_response(page: Page[Any], resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [LIST_SCHEMA], "totalResults": page.total, "startIndex": page.start,
            "itemsPerPage": len(resources), "Resources": resources}


def error(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status)}
    if scim_type:
        out["scimType"] = scim_type
    out["detail"] = detail
    return out


# --- discovery ---------------------------------------------------------------------------------


def service_provider_config(base: str, max_body_bytes: int) -> dict[str, Any]:
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/dirsync/dirsync/blob/main/docs/scim.md",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": max_body_bytes},
        "filter": {"supported": True, "maxResults": 1000},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "Bearer token", "primary": True,
            "description": "The directory's token from `dirsync scim token NAME`, as Authorization: Bearer",
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }


def resource_types(base: str) -> list[dict[str, Any]]:
    return [
        {"schemas": [RESOURCE_TYPE_SCHEMA], "id": "User", "name": "User", "endpoint": "/Users",
         "description": "A user; userName is the email address (the user's key)", "schema": USER_SCHEMA,
         "schemaExtensions": [], "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/User"}},
        {"schemas": [RESOURCE_TYPE_SCHEMA], "id": "Group", "name": "Group", "endpoint": "/Groups",
         "description": "A group; names are shorter than 25 characters", "schema": GROUP_SCHEMA,
         "schemaExtensions": [], "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/Group"}},
    ]


def _attr(name: str, *, kind: str = "string", required: bool = False, mutability: str = "readWrite",
          returned: str = "default", uniqueness: str = "none", multi: bool = False,
          subs: list[dict[str, Any]] | None = None, case_exact: bool = False,
          refs: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": kind, "multiValued": multi, "description": name,
                           "required": required, "caseExact": case_exact, "mutability": mutability,
                           "returned": returned, "uniqueness": uniqueness}
    if subs is not None:
        out["subAttributes"] = subs
    if refs is not None:
        out["referenceTypes"] = refs
    return out


def schemas(base: str) -> list[dict[str, Any]]:
    """Only what dirsync keeps (research/scim.md pitfall 13): `emails` mirrors userName
    (read-only); `active` is always present."""
    user_attrs = [
        _attr("userName", required=True, uniqueness="server"),
        _attr("name", kind="complex", subs=[_attr("givenName"), _attr("familyName")]),
        _attr("displayName"),
        _attr("emails", kind="complex", multi=True, mutability="readOnly", subs=[
            _attr("value", mutability="readOnly"), _attr("type", mutability="readOnly"),
            _attr("primary", kind="boolean", mutability="readOnly")]),
        _attr("active", kind="boolean", required=True),
        _attr("externalId", case_exact=True),
    ]
    group_attrs = [
        _attr("displayName", required=True, uniqueness="server"),
        _attr("members", kind="complex", multi=True, subs=[
            _attr("value", mutability="immutable"),
            _attr("$ref", kind="reference", mutability="immutable", refs=["User"])]),
        _attr("externalId", case_exact=True),
    ]
    return [
        {"schemas": [SCHEMA_SCHEMA], "id": USER_SCHEMA, "name": "User", "description": "User",
         "attributes": user_attrs, "meta": {"resourceType": "Schema", "location": f"{base}/Schemas/{USER_SCHEMA}"}},
        {"schemas": [SCHEMA_SCHEMA], "id": GROUP_SCHEMA, "name": "Group", "description": "Group",
         "attributes": group_attrs, "meta": {"resourceType": "Schema", "location": f"{base}/Schemas/{GROUP_SCHEMA}"}},
    ]
