"""The deployment's event-signing key: its rotation (SPEC §18)."""

from __future__ import annotations

import secrets as random
from datetime import timedelta

from orchestrator import secrets
from orchestrator.domain.feed import FeedEvent
from orchestrator.domain.signing import Keyring
from orchestrator.errors import SigningKeyRotationConflict, SigningKeyRotationInProgress
from orchestrator.services.access import authorize_deployment_admin
from orchestrator.services.context import Context
from orchestrator.store.feeds import DEPLOYMENT_FEED


def signing_keys_view(keyring: Keyring, ctx: Context) -> dict[str, str | None]:
    return {**keyring.public(ctx.clock.now()).model_dump(), "valid_from": keyring.valid_from}


def current(ctx: Context) -> Keyring:
    """Never older than the last rotation (as ``/state``)."""
    return secrets.signing_keyring(at_least=ctx.signing.rotations())


def rotate(ctx: Context, subject: str) -> Keyring:
    """A new key signs from now on. The previous one stays listed until the transition
    expires and signs every event up to the rotation's own ``signing_key_rotated``, which
    every node receives from the deployment feed (one write)."""
    authorize_deployment_admin(ctx.settings.deployment_admins, subject)
    keyring = secrets.signing_keyring(fresh=True)
    now = ctx.clock.now()
    if keyring.in_transition(now):
        # Rotating again would make the key being retired sign nothing and the new one
        # "previous": a node that has not read the last rotation yet could verify neither.
        raise SigningKeyRotationInProgress(
            f"The previous rotation's transition lasts until {keyring.transition_expires}; rotate after it."
        )
    event_id = ctx.ids.new_id()
    rotated = keyring.rotated(
        random.token_urlsafe(48), event_id, now, timedelta(seconds=ctx.settings.signing_key_transition_seconds)
    )
    try:
        secrets.store_signing_keyring(rotated)
    except secrets.KeyringChanged as exc:
        raise SigningKeyRotationConflict("Another rotation of the signing key happened at the same time.") from exc
    # Every container's next /state sees it and stops serving its cached keyring.
    ctx.signing.published(rotated.rotations, now)
    public = rotated.public(now)
    fields = {
        "public_key": public.current,
        "valid_from": rotated.valid_from,
        "transition_expires": rotated.transition_expires,
        # What the agent reads (its api.SigningKeys), beside the fields SPEC §18 names.
        "current": public.current,
        "previous": public.previous,
    }
    ctx.feeds.append(DEPLOYMENT_FEED, FeedEvent.new(event_id, "signing_key_rotated", now, fields), now)
    return rotated
