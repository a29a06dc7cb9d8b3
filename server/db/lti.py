"""Storage functions for LTI 1.3 (server/lti/): platforms, logins in flight, linked users and rooms."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.kernel.clock import utcnow
from server.db.models import (LtiContext, LtiLineItem, LtiMembership, LtiPlatform, LtiRoomServices, LtiState,
                              LtiUser)


async def add_platform(s: AsyncSession, issuer: str, client_id: str, deployment_ids: list[str],
                       auth_login_url: str, key_set_url: str, token_url: str,
                       frame_origins: list[str]) -> LtiPlatform:
    """Insert a platform; the caller's transaction raises IntegrityError when ``(issuer,
    client_id)`` is registered already."""
    p = LtiPlatform(issuer=issuer, client_id=client_id, deployment_ids=json.dumps(deployment_ids),
                    auth_login_url=auth_login_url, key_set_url=key_set_url, token_url=token_url,
                    frame_origins=json.dumps(frame_origins), created_at=utcnow())
    s.add(p)
    await s.flush()
    return p


async def platforms(s: AsyncSession) -> list[LtiPlatform]:
    return list((await s.execute(select(LtiPlatform).order_by(LtiPlatform.id))).scalars())


async def platform(s: AsyncSession, platform_id: int) -> LtiPlatform | None:
    return await s.get(LtiPlatform, platform_id)


async def platforms_of(s: AsyncSession, issuer: str) -> list[LtiPlatform]:
    return list((await s.execute(select(LtiPlatform).where(LtiPlatform.issuer == issuer)
                                 .order_by(LtiPlatform.id))).scalars())


async def remove_platform(s: AsyncSession, platform_id: int) -> bool:
    return (await s.execute(delete(LtiPlatform).where(LtiPlatform.id == platform_id))).rowcount > 0


async def add_state(s: AsyncSession, state: str, nonce: str, platform_id: int, ttl_s: float,
                    storage_target: str | None = None) -> None:
    now = utcnow()
    await s.execute(delete(LtiState).where(LtiState.expires_at < now))  # forgotten logins
    s.add(LtiState(state=state, nonce=nonce, platform_id=platform_id, expires_at=now + timedelta(seconds=ttl_s),
                   storage_target=storage_target))
    await s.flush()


async def take_state(s: AsyncSession, state: str) -> tuple[str, int, datetime, str | None] | None:
    """Delete the login ``state`` and return its ``(nonce, platform_id, expires_at,
    storage_target)``; None when it is unknown or another launch took it first (the DELETE
    decides between racing ones)."""
    row = (await s.execute(delete(LtiState).where(LtiState.state == state)
                           .returning(LtiState.nonce, LtiState.platform_id, LtiState.expires_at,
                                      LtiState.storage_target))).first()
    return tuple(row) if row else None


async def linked_user(s: AsyncSession, issuer: str, sub: str) -> int | None:
    return (await s.execute(select(LtiUser.user_id).where(LtiUser.issuer == issuer, LtiUser.sub == sub))).scalar()


async def link_user(s: AsyncSession, issuer: str, sub: str, user_id: int) -> None:
    s.add(LtiUser(issuer=issuer, sub=sub, user_id=user_id))
    await s.flush()


async def linked_room(s: AsyncSession, issuer: str, deployment_id: str, context_id: str) -> int | None:
    return (await s.execute(select(LtiContext.room_id).where(
        LtiContext.issuer == issuer, LtiContext.deployment_id == deployment_id,
        LtiContext.context_id == context_id))).scalar()


async def link_room(s: AsyncSession, issuer: str, deployment_id: str, context_id: str, room_id: int) -> None:
    s.add(LtiContext(issuer=issuer, deployment_id=deployment_id, context_id=context_id, room_id=room_id))
    await s.flush()


async def linked_subs(s: AsyncSession, issuer: str, user_ids: list[int]) -> dict[int, str]:
    """``{user id: sub}`` of the users among ``user_ids`` linked to ``issuer``."""
    if not user_ids:
        return {}
    rows = await s.execute(select(LtiUser.user_id, LtiUser.sub).where(LtiUser.issuer == issuer,
                                                                      LtiUser.user_id.in_(user_ids)))
    return {uid: sub for uid, sub in rows}


async def context_of_room(s: AsyncSession, room_id: int) -> LtiContext | None:
    return (await s.execute(select(LtiContext).where(LtiContext.room_id == room_id).limit(1))).scalar()


# -- where memberships came from (roster sync) ---------------------------------------------------
async def mark_lti_member(s: AsyncSession, room_id: int, user_id: int) -> None:
    if await s.get(LtiMembership, (room_id, user_id)) is None:
        s.add(LtiMembership(room_id=room_id, user_id=user_id))
        await s.flush()


async def lti_member_ids(s: AsyncSession, room_id: int) -> set[int]:
    return set((await s.execute(select(LtiMembership.user_id).where(LtiMembership.room_id == room_id))).scalars())


async def unmark_lti_member(s: AsyncSession, room_id: int, user_id: int) -> None:
    await s.execute(delete(LtiMembership).where(LtiMembership.room_id == room_id, LtiMembership.user_id == user_id))


# -- the services a course room's platform offers ----------------------------------------------
async def set_services(s: AsyncSession, room_id: int, platform_id: int, memberships_url: str | None,
                       lineitems_url: str | None, ags_scopes: list[str]) -> None:
    """Keep what the latest launch offered (a launch without a service claim keeps the URL the
    room had: some launches, e.g. Deep Linking, carry none)."""
    row = await s.get(LtiRoomServices, room_id)
    if row is None:
        row = LtiRoomServices(room_id=room_id, platform_id=platform_id, ags_scopes="[]")
        s.add(row)
    row.platform_id = platform_id
    if memberships_url:
        row.memberships_url = memberships_url
    if lineitems_url:
        row.lineitems_url = lineitems_url
        row.ags_scopes = json.dumps(ags_scopes)
    await s.flush()


async def services(s: AsyncSession, room_id: int) -> LtiRoomServices | None:
    return await s.get(LtiRoomServices, room_id, populate_existing=True)


async def claim_sync(s: AsyncSession, room_id: int, stale_before: datetime) -> bool:
    """Take the room's roster sync (True) unless another one claimed it after ``stale_before``
    (the UPDATE decides between racing processes)."""
    res = await s.execute(update(LtiRoomServices).where(
        LtiRoomServices.room_id == room_id, LtiRoomServices.memberships_url.is_not(None),
        or_(LtiRoomServices.sync_claimed_at.is_(None), LtiRoomServices.sync_claimed_at < stale_before))
        .values(sync_claimed_at=utcnow()))
    return res.rowcount > 0


async def finish_sync(s: AsyncSession, room_id: int, error: str | None) -> None:
    values: dict = {"sync_claimed_at": None, "sync_error": error[:500] if error else None}
    if error is None:
        values["synced_at"] = utcnow()
    await s.execute(update(LtiRoomServices).where(LtiRoomServices.room_id == room_id).values(**values))


async def rooms_due(s: AsyncSession, synced_before: datetime, limit: int) -> list[int]:
    """Rooms with a roster service whose last sync is older than ``synced_before`` (oldest first)."""
    rows = await s.execute(select(LtiRoomServices.room_id).where(
        LtiRoomServices.memberships_url.is_not(None),
        or_(LtiRoomServices.synced_at.is_(None), LtiRoomServices.synced_at < synced_before))
        .order_by(LtiRoomServices.synced_at.is_not(None), LtiRoomServices.synced_at).limit(limit))
    return list(rows.scalars())


# -- gradebook line items --------------------------------------------------------------------
async def line_item(s: AsyncSession, session_id: int) -> str | None:
    row = await s.get(LtiLineItem, session_id, populate_existing=True)
    return row.lineitem_url if row else None


async def save_line_item(s: AsyncSession, session_id: int, url: str) -> None:
    row = await s.get(LtiLineItem, session_id)
    if row is None:
        s.add(LtiLineItem(session_id=session_id, lineitem_url=url, sent_at=utcnow()))
    else:
        row.lineitem_url, row.sent_at = url, utcnow()
    await s.flush()
