"""NATS decentralized authentication for tests, without `nsc`: NKeys (ed25519 keys from the
`nkeys` package) and the JWTs an operator, an account and a user need, signed here, plus
the `.creds` file a client presents and a nats-server configuration in operator mode with
a memory resolver.

A NATS JWT is `base64url(header).base64url(claims).base64url(signature)`, the header
`{"typ": "JWT", "alg": "ed25519-nkey"}`, the signature ed25519 over the first two parts by
the issuer's key, and the claims name the issuer (`iss`) and subject (`sub`) by their
public NKeys, with what the subject is under `nats` (`type` and `version: 2`)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys

# Limits that mean "none" (JWT v2 reads a missing limit as 0, which forbids everything).
NO_LIMITS = {"subs": -1, "data": -1, "payload": -1}
ACCOUNT_LIMITS = {
    **NO_LIMITS,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
}


@dataclass
class Key:
    """An NKey: its seed (secret, `S...`) and public key (`O...`, `A...` or `U...`)."""

    seed: bytes
    public: str

    @classmethod
    def new(cls, prefix: int) -> Key:
        seed = nkeys.encode_seed(os.urandom(32), prefix)
        return cls(seed, nkeys.from_seed(bytearray(seed)).public_key.decode())

    def sign(self, data: bytes) -> bytes:
        return nkeys.from_seed(bytearray(self.seed)).sign(data)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(issuer: Key, subject: str, name: str, nats: dict[str, Any]) -> str:
    """A JWT with these claims, signed by `issuer`."""
    claims: dict[str, Any] = {
        "iat": int(time.time()),
        "iss": issuer.public,
        "name": name,
        "sub": subject,
        "nats": {**nats, "version": 2},
    }
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).rstrip(b"=").decode()
    header = b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = b64(json.dumps(claims).encode())
    signed = f"{header}.{body}"
    return f"{signed}.{b64(issuer.sign(signed.encode()))}"


@dataclass
class Account:
    """An account under an operator, its JWT, and what users it signs."""

    key: Key
    jwt: str

    def user(self, name: str) -> tuple[Key, str]:
        """A new user of this account and its JWT (publish and subscribe anything)."""
        user = Key.new(nkeys.PREFIX_BYTE_USER)
        claims = {"type": "user", "pub": {}, "sub": {}, **NO_LIMITS}
        return user, jwt(self.key, user.public, name, claims)


@dataclass
class Operator:
    """An operator: its key and self-signed JWT."""

    key: Key
    jwt: str

    @classmethod
    def new(cls, name: str = "socklab-test") -> Operator:
        key = Key.new(nkeys.PREFIX_BYTE_OPERATOR)
        return cls(key, jwt(key, key.public, name, {"type": "operator"}))

    def account(self, name: str) -> Account:
        key = Key.new(nkeys.PREFIX_BYTE_ACCOUNT)
        claims = {"type": "account", "limits": ACCOUNT_LIMITS, "default_permissions": {}}
        return Account(key, jwt(self.key, key.public, name, claims))


def write_creds(path: Path, user: Key, user_jwt: str) -> Path:
    """The `.creds` file a NATS client reads: the user's JWT and NKey seed."""
    path.write_text(
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user.seed.decode()}\n"
        "------END USER NKEY SEED------\n"
    )
    path.chmod(0o600)
    return path


def operator_config(path: Path, operator: Operator, system: Account, *accounts: Account) -> Path:
    """A nats-server configuration in operator mode with `system` as its system account,
    knowing it and `accounts` (a memory resolver: accounts only from this file)."""
    preload = "\n".join(f'  {a.key.public}: "{a.jwt}"' for a in (system, *accounts))
    path.write_text(
        f'operator: "{operator.jwt}"\n'
        f"system_account: {system.key.public}\n"
        "resolver: MEMORY\n"
        f"resolver_preload: {{\n{preload}\n}}\n"
    )
    return path
