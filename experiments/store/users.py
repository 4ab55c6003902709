"""Console accounts (staff, never visitors): roles, argon2 password hashes, lockout, trial
membership.

Passwords are hashed with argon2id (argon2-cffi's defaults) and never stored or returned in
clear. After :data:`MAX_FAILED_ATTEMPTS` failed sign-ins in a row an account is locked for
:data:`LOCK_DURATION`; during the lock even the right password is refused. The count is kept
atomically in the database, so parallel attempts cannot get past it. An unknown address costs
as much time as a wrong password (a dummy hash is verified), and every refusal is shown with the
same words (:data:`SIGN_IN_REFUSED`), so sign-in answers do not tell which addresses have
accounts.

Every change writes an audit entry (:mod:`experiments.store.audit`) in the same transaction.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, case, delete, func, insert, or_, select, update
from sqlalchemy.engine import Row

from experiments.eventlog import trial_members, trials, users
from experiments.store.audit import Actor, audit
from experiments.store.errors import RecordingError
from experiments.store.sql import aware, utcnow
from experiments.store.trials import require_trial

#: Failed sign-ins in a row that lock an account, and for how long.
MAX_FAILED_ATTEMPTS = 5
LOCK_DURATION = timedelta(minutes=15)
#: The shortest password accepted.
MIN_PASSWORD_LENGTH = 12

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password: verified for unknown addresses")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: The one answer to every refused sign-in (unknown address, wrong password, locked or disabled
#: account), so that the answer does not tell which addresses have accounts.
SIGN_IN_REFUSED = (
    "The e-mail address or password is not right, or the account cannot sign in at the moment "
    "(after several wrong passwords it is locked for a while). Check both and try again later, "
    "or ask an admin."
)


class Role(StrEnum):
    """What an account may do: run trials, read results after close, or administer."""

    RESEARCHER = "researcher"
    EVALUATOR = "evaluator"
    ADMIN = "admin"


class AccountError(RecordingError):
    """An account change that is refused (unknown address, a duplicate, a weak password)."""


@dataclass(frozen=True)
class User:
    """A console account as the console sees it (no password hash)."""

    id: int
    email: str
    role: Role
    active: bool
    password_change_required: bool
    failed_attempts: int
    locked_until: datetime | None
    created_at: datetime

    def locked(self, now: datetime) -> bool:
        """Whether sign-in is refused at ``now`` because of failed attempts."""
        return self.locked_until is not None and self.locked_until > now


#: Why a sign-in was refused: wrong address or password, locked after failed attempts, disabled.
SignInRefusal = Literal["bad", "locked", "disabled"]


@dataclass(frozen=True)
class SignIn:
    """The result of :func:`authenticate`: ``user`` when it succeeded, else ``reason``."""

    user: User | None
    reason: SignInRefusal | None = None
    #: With ``reason == "locked"``: until when.
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None

    @property
    def message(self) -> str | None:
        """What to show: :data:`SIGN_IN_REFUSED` for every refusal (None on success)."""
        return None if self.ok else SIGN_IN_REFUSED


def normalize_email(email: str) -> str:
    """The address as stored: trimmed and lower-case; :class:`AccountError` if it is not one
    (also for control characters such as NUL, which no address holds)."""
    normal = email.strip().lower()
    if not _EMAIL.match(normal) or len(normal) > 320 or _CONTROL.search(normal):
        raise AccountError(f"{email!r} is not an e-mail address", "email")
    return normal


def new_password() -> str:
    """A random one-time password (16 URL-safe characters, about 96 bits)."""
    return secrets.token_urlsafe(12)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters", "password"
        )


def _user(row: Row) -> User:
    return User(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        active=bool(row.active),
        password_change_required=bool(row.password_change_required),
        failed_attempts=int(row.failed_attempts),
        locked_until=aware(row.locked_until),
        created_at=aware(row.created_at),  # type: ignore[arg-type]
    )


def find_user(conn: Connection, email: str) -> User | None:
    """The account with this address (any case), or None."""
    try:
        normal = normalize_email(email)
    except AccountError:
        return None
    row = conn.execute(select(users).where(users.c.email == normal)).first()
    return _user(row) if row is not None else None


def get_user(conn: Connection, user_id: int) -> User | None:
    """The account with this id (what a session cookie keeps), or None."""
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return _user(row) if row is not None else None


def require_user(conn: Connection, email: str) -> User:
    """The account with this address; :class:`AccountError` when there is none."""
    user = find_user(conn, email)
    if user is None:
        raise AccountError(f"no account {email!r}; see `nudgelab user list`", "email")
    return user


def list_users(conn: Connection) -> list[User]:
    """Every account, by address."""
    return [_user(row) for row in conn.execute(select(users).order_by(users.c.email))]


def add_user(
    conn: Connection,
    email: str,
    role: Role | str,
    password: str,
    actor: Actor,
    *,
    change_required: bool = True,
) -> User:
    """Create an account. ``change_required``: the password is a one-time one, to be replaced
    at the first sign-in (the console asks for it)."""
    normal = normalize_email(email)
    try:
        role = Role(role)
    except ValueError:
        raise AccountError(
            f"role must be one of {', '.join(r.value for r in Role)}", "role"
        ) from None
    _check_password(password)
    if find_user(conn, normal) is not None:
        raise AccountError(f"an account {normal!r} exists already", "email")
    conn.execute(
        insert(users).values(
            email=normal,
            role=role.value,
            password_hash=_HASHER.hash(password),
            password_change_required=change_required,
            active=True,
            failed_attempts=0,
            created_at=utcnow(),
        )
    )
    audit(conn, actor, "user.add", target=normal, detail=f"role {role.value}")
    return require_user(conn, normal)


def set_password(
    conn: Connection, email: str, password: str, actor: Actor, *, change_required: bool = False
) -> User:
    """Replace an account's password (and lift a lock: the owner or an admin chose a new one)."""
    user = require_user(conn, email)
    _check_password(password)
    conn.execute(
        update(users)
        .where(users.c.id == user.id)
        .values(
            password_hash=_HASHER.hash(password),
            password_change_required=change_required,
            failed_attempts=0,
            locked_until=None,
        )
    )
    audit(conn, actor, "user.password", target=user.email)
    return require_user(conn, user.email)


def disable_user(conn: Connection, email: str, actor: Actor) -> User:
    """Disable an account: it can no longer sign in (a session the console holds ends too,
    as the console re-reads the account on every request)."""
    return _set_active(conn, email, False, actor)


def enable_user(conn: Connection, email: str, actor: Actor) -> User:
    """Enable a disabled account again."""
    return _set_active(conn, email, True, actor)


def _set_active(conn: Connection, email: str, active: bool, actor: Actor) -> User:
    user = require_user(conn, email)
    conn.execute(update(users).where(users.c.id == user.id).values(active=active))
    audit(conn, actor, "user.enable" if active else "user.disable", target=user.email)
    return require_user(conn, user.email)


def authenticate(conn: Connection, email: str, password: str, now: datetime) -> SignIn:
    """Check a sign-in at ``now``; count a failure, lock after too many, reset on success.

    Call it in a transaction and commit whatever it returns (the counters change either way).
    The attempt is counted *before* the password is checked, with one atomic
    ``UPDATE … SET failed_attempts = failed_attempts + 1 … RETURNING`` that skips a locked
    account: the row stays locked by that UPDATE until the caller commits, so parallel
    attempts on one account are checked one after another, and no more than
    :data:`MAX_FAILED_ATTEMPTS` passwords are ever tried before the lock. A locked account is
    refused before its password is checked; a disabled one after (so a wrong password to a
    disabled account is just ``bad``). Show every refusal as :data:`SIGN_IN_REFUSED`, whatever
    its ``reason``: the reason (kept for tests and logs) tells which addresses have accounts.
    """
    try:
        normal = normalize_email(email)
    except AccountError:
        _verify(_DUMMY_HASH, password)
        return SignIn(None, "bad")
    counted = conn.execute(
        update(users)
        .where(
            users.c.email == normal,
            or_(users.c.locked_until.is_(None), users.c.locked_until <= now),
        )
        .values(
            # An expired lock starts a new count.
            failed_attempts=case(
                (users.c.locked_until.is_not(None), 1), else_=users.c.failed_attempts + 1
            ),
            locked_until=None,
        )
        .returning(users.c.id, users.c.failed_attempts, users.c.password_hash, users.c.active)
    ).first()
    if counted is None:  # unknown, or locked
        _verify(_DUMMY_HASH, password)  # the same time as any other answer
        row = conn.execute(select(users.c.locked_until).where(users.c.email == normal)).first()
        if row is None:
            return SignIn(None, "bad")
        return SignIn(None, "locked", aware(row.locked_until))
    if not _verify(counted.password_hash, password):
        return _failed(conn, counted.id, normal, int(counted.failed_attempts), now)
    if not counted.active:
        return SignIn(None, "disabled")  # counted as a failure: no sign-in happened
    values: dict[str, object] = {"failed_attempts": 0, "locked_until": None}
    if _HASHER.check_needs_rehash(counted.password_hash):
        values["password_hash"] = _HASHER.hash(password)
    conn.execute(update(users).where(users.c.id == counted.id).values(**values))
    return SignIn(get_user(conn, counted.id))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _failed(conn: Connection, user_id: int, email: str, failures: int, now: datetime) -> SignIn:
    """A wrong password, the ``failures``-th in a row (already counted): lock at the limit."""
    if failures < MAX_FAILED_ATTEMPTS:
        return SignIn(None, "bad")
    until = now + LOCK_DURATION
    conn.execute(
        update(users).where(users.c.id == user_id).values(failed_attempts=0, locked_until=until)
    )
    system = Actor("nudgelab", "console")
    detail = f"{MAX_FAILED_ATTEMPTS} failed sign-ins in a row; locked until {until.isoformat()}"
    audit(conn, system, "user.locked", target=email, detail=detail, at=now)
    return SignIn(None, "locked", until)


# -- trial membership --------------------------------------------------------------------------


def add_member(conn: Connection, trial_id: str, email: str, actor: Actor) -> bool:
    """Add an account to a trial; False when it was a member already."""
    require_trial(conn, trial_id)
    user = require_user(conn, email)
    if is_member(conn, trial_id, user):
        return False
    conn.execute(
        insert(trial_members).values(trial_id=trial_id, user_id=user.id, added_at=utcnow())
    )
    audit(conn, actor, "member.add", trial_id=trial_id, target=user.email)
    return True


def remove_member(conn: Connection, trial_id: str, email: str, actor: Actor) -> bool:
    """Remove an account from a trial; False when it was not a member."""
    user = require_user(conn, email)
    removed = conn.execute(
        delete(trial_members).where(
            trial_members.c.trial_id == trial_id, trial_members.c.user_id == user.id
        )
    ).rowcount
    if removed:
        audit(conn, actor, "member.remove", trial_id=trial_id, target=user.email)
    return bool(removed)


def trials_for(conn: Connection, user: User) -> list[str]:
    """The ids of the trials this account may see: all for admins and evaluators, a
    researcher's own (those it is a member of)."""
    if user.role is not Role.RESEARCHER:
        every = conn.execute(select(trials.c.id).order_by(trials.c.id)).scalars()
        return [str(trial_id) for trial_id in every]
    rows = conn.execute(
        select(trial_members.c.trial_id)
        .where(trial_members.c.user_id == user.id)
        .order_by(trial_members.c.trial_id)
    ).scalars()
    return [str(trial_id) for trial_id in rows]


def members(conn: Connection, trial_id: str) -> list[User]:
    """The accounts added to a trial, by address."""
    rows = conn.execute(
        select(users)
        .join(trial_members, trial_members.c.user_id == users.c.id)
        .where(trial_members.c.trial_id == trial_id)
        .order_by(users.c.email)
    )
    return [_user(row) for row in rows]


def is_member(conn: Connection, trial_id: str, user: User) -> bool:
    """Whether ``user`` was added to the trial."""
    return bool(
        conn.execute(
            select(func.count())
            .select_from(trial_members)
            .where(trial_members.c.trial_id == trial_id, trial_members.c.user_id == user.id)
        ).scalar_one()
    )
