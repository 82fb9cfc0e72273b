"""The session's signing key, trusted keys and shared cache: loaded once, on first use, from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_inferedgeforge.model.errors import ForgeError
from pytest_inferedgeforge.plugin.settings import get_settings

if TYPE_CHECKING:
    from securesystemslib.signer import Key

    from pytest_inferedgeforge.engine.shared_cache import SharedCache
    from pytest_inferedgeforge.engine.signing import SigningKey

_LOADED = pytest.StashKey[dict[str, Any]]()


def _loaded(config: pytest.Config, name: str, load: Any) -> Any:
    memo = config.stash.setdefault(_LOADED, {})
    if name not in memo:
        try:
            memo[name] = load()
        except ForgeError as exc:
            raise pytest.UsageError(str(exc)) from exc
    return memo[name]


def trusted_keys(config: pytest.Config) -> list[Key]:
    from pytest_inferedgeforge.model.keys import load_public_keys

    return _loaded(config, "trust", lambda: load_public_keys(list(get_settings(config).trust)))  # type: ignore[no-any-return]


def signer(config: pytest.Config) -> SigningKey | None:
    from pytest_inferedgeforge.engine.signing import load_signing_key

    settings = get_settings(config)
    path = settings.sign_key
    return _loaded(config, "signer",  # type: ignore[no-any-return]
                   lambda: load_signing_key(path, oms=settings.oms) if path else None)


def shared_cache(config: pytest.Config) -> SharedCache | None:
    from pytest_inferedgeforge.engine.shared_cache import connect

    settings = get_settings(config)
    url = settings.cache
    if url is None:
        return None
    return _loaded(config, "cache",  # type: ignore[no-any-return]
                   lambda: connect(url, list(settings.trust), settings.cache_push))


def load_sharing(config: pytest.Config) -> None:
    """Read the configured key files and open the cache at configure time, so a bad key or URL is a usage error
    before anything runs (and costs nothing when none is configured)."""
    settings = get_settings(config)
    if settings.trust:
        trusted_keys(config)
    if settings.sign_key:
        signer(config)
    if settings.cache:
        shared_cache(config)
