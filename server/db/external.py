"""Storage functions for external identities (server/accounts/external.py), rooms linked to an
LMS back end's external ids and its service credentials (server/provision/)."""
from __future__ import annotations

import hashlib

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import ExternalIdentity, ExternalRoom, ServiceCredential, User
from server.kernel.clock import utcnow


def username_for(issuer: str, subject: str) -> str:
    """A username nobody can sign up with (sign-up allows 32 characters; this is 44, and the
    account has no password): ``ext-`` and a hash of the link."""
    return "ext-" + hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:40]


async def linked_user(s: AsyncSession, issuer: str, subject: str) -> tuple[User, ExternalIdentity] | None:
    """The user linked to ``(issuer, subject)`` and the link (one query), or None."""
    row = (await s.execute(select(User, ExternalIdentity).join(ExternalIdentity, ExternalIdentity.user_id == User.id)
                           .where(ExternalIdentity.issuer == issuer, ExternalIdentity.subject == subject))).first()
    return (row[0], row[1]) if row else None


async def link_user(s: AsyncSession, issuer: str, subject: str, user_id: int, email: str | None = None) -> ExternalIdentity:
    """Insert the link; the caller's transaction raises IntegrityError when it exists already."""
    link = ExternalIdentity(issuer=issuer, subject=subject, user_id=user_id, email=email, created_at=utcnow())
    s.add(link)
    await s.flush()
    return link


async def linked_room(s: AsyncSession, issuer: str, external_id: str) -> int | None:
    return (await s.execute(select(ExternalRoom.room_id).where(
        ExternalRoom.issuer == issuer, ExternalRoom.external_id == external_id))).scalar()


async def link_room(s: AsyncSession, issuer: str, external_id: str, room_id: int) -> None:
    s.add(ExternalRoom(issuer=issuer, external_id=external_id, room_id=room_id))
    await s.flush()


async def add_credential(s: AsyncSession, name: str, issuer: str, secret_hash: str, user_id: int) -> ServiceCredential:
    cred = ServiceCredential(name=name, issuer=issuer, secret_hash=secret_hash, user_id=user_id, created_at=utcnow())
    s.add(cred)
    await s.flush()
    return cred


async def credential_by_hash(s: AsyncSession, secret_hash: str) -> ServiceCredential | None:
    return (await s.execute(select(ServiceCredential).where(ServiceCredential.secret_hash == secret_hash))).scalar()


async def credential_by_name(s: AsyncSession, name: str) -> ServiceCredential | None:
    return (await s.execute(select(ServiceCredential).where(ServiceCredential.name == name))).scalar()


async def credentials(s: AsyncSession) -> list[ServiceCredential]:
    return list((await s.execute(select(ServiceCredential).order_by(ServiceCredential.id))).scalars())


async def touch_credential(s: AsyncSession, cred_id: int) -> None:
    await s.execute(update(ServiceCredential).where(ServiceCredential.id == cred_id).values(last_used_at=utcnow()))
