"""The api-key flow, driven only through the Python client generated from openapi/openapi.json.

Run by tests/e2e/conformance.rs with the generated package on PYTHONPATH and CONNECT_URL,
CONNECT_API_KEY (an admin key) and UPSTREAM_URL (a local httpbin) in the environment. It creates
an `api_key` integration at httpbin, a vault, deposits a key, proxies `/anything` (the echoed key
must come back redacted), revokes the connection (the proxy must then refuse), and deletes the
vault. Exits non-zero with a message on the first thing that does not hold.
"""

import json
import os
import sys
import uuid

from connect_client import AuthenticatedClient
from connect_client.api.connections import (
    deposit_api_key,
    get_connection,
    revoke_connection,
)
from connect_client.api.integrations import create_integration
from connect_client.api.proxy import proxy_get
from connect_client.api.vaults import create_vault, delete_vault, get_vault
from connect_client.models import (
    ConnectionDeleted,
    CreateConnection,
    CreateIntegration,
    CreateVault,
    Integration,
    IntegrationApi,
    IntegrationAuth,
    IntegrationInject,
    Problem,
    Vault,
    VaultDeleted,
)


def text(value):
    """An enum member's value, or the string itself (some statuses are plain strings)."""
    return str(getattr(value, "value", value))


def expect(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def main():
    base = os.environ["CONNECT_URL"]
    upstream = os.environ["UPSTREAM_URL"]
    secret = "canary-" + uuid.uuid4().hex
    suffix = uuid.uuid4().hex[:8]
    client = AuthenticatedClient(base_url=base, token=os.environ["CONNECT_API_KEY"])

    key = f"echo-{suffix}"
    created = create_integration.sync_detailed(
        client=client,
        body=CreateIntegration(
            key=key,
            provider="custom",
            auth=IntegrationAuth(type_="api_key"),
            api=IntegrationApi(base_url=upstream, allowed_hosts=["127.0.0.1"]),
            inject=IntegrationInject(style="header", name="X-Api-Key"),
        ),
    )
    expect(created.status_code == 201, f"create integration: {created.status_code} {created.content!r}")
    expect(isinstance(created.parsed, Integration), f"integration parsed: {created.parsed!r}")
    expect(created.parsed.key == key, "integration key")

    vault = create_vault.sync_detailed(
        client=client, body=CreateVault(external_user_id=f"u-{suffix}")
    )
    expect(vault.status_code == 201, f"create vault: {vault.status_code} {vault.content!r}")
    expect(isinstance(vault.parsed, Vault), f"vault parsed: {vault.parsed!r}")
    vault_id = vault.parsed.id
    expect(vault_id.startswith("vlt_"), f"vault id {vault_id}")

    deposit = deposit_api_key.sync_detailed(
        vault_id=vault_id,
        client=client,
        body=CreateConnection(integration=key, api_key=secret),
    )
    expect(deposit.status_code == 201, f"deposit: {deposit.status_code} {deposit.content!r}")
    connection_id = deposit.parsed.id
    expect(connection_id.startswith("con_"), f"connection id {connection_id}")
    expect(secret not in deposit.content.decode(), "the deposit answer must not hold the key")

    fetched = get_connection.sync_detailed(
        vault_id=vault_id, connection_id=connection_id, client=client
    )
    expect(fetched.status_code == 200, f"get connection: {fetched.status_code}")
    expect(text(fetched.parsed.status) == "active", f"status {fetched.parsed.status}")

    proxied = proxy_get.sync_detailed(
        connection_id=connection_id, path="anything", client=client
    )
    expect(proxied.status_code == 200, f"proxy: {proxied.status_code} {proxied.content!r}")
    echo = json.loads(proxied.content)
    sent = {k.lower(): v for k, v in echo["headers"].items()}
    expect("x-api-key" in sent, f"httpbin saw no X-Api-Key header: {sorted(sent)}")
    expect(secret not in proxied.content.decode(), "the echoed key must come back redacted")
    expect(
        "authorization" not in sent or os.environ["CONNECT_API_KEY"] not in sent["authorization"],
        "the partner's own API key must not be forwarded",
    )

    revoked = revoke_connection.sync_detailed(
        vault_id=vault_id, connection_id=connection_id, client=client
    )
    expect(revoked.status_code == 200, f"revoke: {revoked.status_code} {revoked.content!r}")
    expect(isinstance(revoked.parsed, ConnectionDeleted), f"revoke parsed: {revoked.parsed!r}")
    expect(text(revoked.parsed.status) == "revoked", "revoked status")

    refused = proxy_get.sync_detailed(
        connection_id=connection_id, path="anything", client=client
    )
    expect(refused.status_code == 409, f"proxy after revoke: {refused.status_code}")
    expect(isinstance(refused.parsed, Problem), f"problem parsed: {refused.parsed!r}")
    expect(refused.parsed.code == "connection_revoked", f"code {refused.parsed.code}")

    deleted = delete_vault.sync_detailed(vault_id=vault_id, client=client)
    expect(deleted.status_code == 200, f"delete vault: {deleted.status_code}")
    expect(isinstance(deleted.parsed, VaultDeleted), f"delete parsed: {deleted.parsed!r}")
    expect(text(deleted.parsed.status) == "revoked", "vault revoked")
    after = get_vault.sync_detailed(vault_id=vault_id, client=client)
    expect(after.status_code == 200, f"get deleted vault: {after.status_code}")
    expect(text(after.parsed.status) == "revoked", "the deleted vault reads as revoked")

    print("api-key flow completed")


if __name__ == "__main__":
    main()
