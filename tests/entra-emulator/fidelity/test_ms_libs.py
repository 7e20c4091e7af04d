#!/usr/bin/env python3
"""Fidelity test: Microsoft's own Python libraries against the Entra emulator.

Usage: test_ms_libs.py EMULATOR_URL CREDENTIALS_FILE CA_FILE

msal (ConfidentialClientApplication: a client secret, a certificate as private key + SHA-1
thumbprint (RS256 + x5t), and as private key + public certificate (PS256 + x5t#S256)) obtains
tokens from the emulator's authority over HTTPS, trusting only the emulator's generated CA.
msgraph-sdk (with azure-identity's ClientSecretCredential) then pages through every user, every
group, and every group's members and transitive members by following @odata.nextLink, and what it
saw is compared with the emulator's own numbers and directory from its control API. Error paths:
wrong secret (AADSTS7000215), expired secret (7000222), unknown app (700016), unknown tenant
(90002), an unregistered certificate and a forged assertion (700027), missing admin consent (Graph
403 Authorization_RequestDenied), an unknown user (404), and throttling (429 + Retry-After,
retried by the SDK), delta rounds (users/delta with @removed), and msal's authorization-code
flow (PKCE, nonce, ID token with oid/tid/pairwise sub, single-use code, kid in the JWKS). Exits non-zero on any mismatch.
"""

import asyncio
import base64
import datetime
import hashlib
import json
import ssl
import sys
import urllib.request

import httpx
import msal
from azure.identity import ClientSecretCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.groups.item.transitive_members.transitive_members_request_builder import (
    TransitiveMembersRequestBuilder,
)
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user import User
from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
USER_FIELDS = ["id", "userPrincipalName", "mail", "otherMails", "proxyAddresses", "displayName",
               "givenName", "surname", "accountEnabled", "userType"]

failures = []


def check(cond, what):
    print(f"{'ok  ' if cond else 'FAIL'} {what}")
    if not cond:
        failures.append(what)


class Emulator:
    def __init__(self, url, ca):
        self.url = url
        self.ctx = ssl.create_default_context(cafile=ca)

    def call(self, method, path, body=None):
        req = urllib.request.Request(
            f"{self.url}/_emulator/{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(req, context=self.ctx) as r:
            text = r.read()
            return json.loads(text) if text else None


def msal_app(url, tenant, client_id, credential, ca):
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=f"{url}/{tenant}",
        instance_discovery=False,
        verify=ca,
    )


def token_for(url, tenant, client_id, credential, ca):
    return msal_app(url, tenant, client_id, credential, ca).acquire_token_for_client([GRAPH_SCOPE])


def new_key_and_cert(name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode(), cert.fingerprint(hashes.SHA1()).hex().upper()


def check_tokens(url, creds, ca, emu):
    tenant, client_id = creds["tenant_id"], creds["client_id"]
    emu.call("POST", "counts/reset")
    r = token_for(url, tenant, client_id, creds["client_secret"], ca)
    check("access_token" in r and r.get("token_type") == "Bearer", f"msal: a token with the client secret ({sorted(r)})")
    check(r.get("token_source") == "identity_provider", "msal: the token came from the emulator")
    r = token_for(url, tenant, client_id, {"private_key": creds["private_key_pem"], "thumbprint": creds["thumbprint"]}, ca)
    check("access_token" in r, f"msal: a token with the certificate (private key + SHA-1 thumbprint, RS256 + x5t): {r.get('error_description', 'ok')[:120]}")
    r = token_for(url, tenant, client_id, {"private_key": creds["private_key_pem"], "public_certificate": creds["certificate_pem"]}, ca)
    check("access_token" in r, f"msal: a token with the certificate (private key + public certificate, PS256 + x5t#S256): {r.get('error_description', 'ok')[:120]}")
    counts = emu.call("GET", "counts")
    check(counts["token"] == 3 and counts["discovery"] >= 1, f"the emulator saw 3 token requests and discovery ({counts['token']}, {counts['discovery']})")

    r = token_for(url, tenant, client_id, "not-the-secret", ca)
    check(r.get("error") == "invalid_client" and 7000215 in r.get("error_codes", []), f"wrong secret: invalid_client, AADSTS7000215 ({r.get('error')}, {r.get('error_codes')})")
    check("Trace ID:" in r.get("error_description", "") and r.get("correlation_id"), "the error body carries trace and correlation ids")
    expired = emu.call("POST", f"apps/{client_id}/secrets", {"expires_in_days": -1})["secret"]
    r = token_for(url, tenant, client_id, expired, ca)
    check(7000222 in r.get("error_codes", []), f"expired secret: AADSTS7000222 ({r.get('error_codes')})")
    r = token_for(url, tenant, "11111111-2222-3333-4444-555555555555", creds["client_secret"], ca)
    check(r.get("error") == "unauthorized_client" and 700016 in r.get("error_codes", []), f"unknown app: unauthorized_client, AADSTS700016 ({r.get('error')}, {r.get('error_codes')})")
    try:
        msal_app(url, "no-such-tenant.example", client_id, creds["client_secret"], ca)
        check(False, "unknown tenant: msal refuses the authority")
    except ValueError as e:
        check("Unable to get authority configuration" in str(e), f"unknown tenant: msal's discovery fails ({str(e)[:70]}...)")
    raw = httpx.post(f"{url}/no-such-tenant.example/oauth2/v2.0/token", verify=emu.ctx, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": creds["client_secret"], "scope": GRAPH_SCOPE})
    check(raw.status_code == 400 and raw.json().get("error_codes") == [90002], f"unknown tenant at the token endpoint: 400, AADSTS90002 ({raw.status_code})")

    other_key, other_cert, other_thumb = new_key_and_cert("not-registered")
    r = token_for(url, tenant, client_id, {"private_key": other_key, "public_certificate": other_cert}, ca)
    check(700027 in r.get("error_codes", []) and "not registered" in r.get("error_description", ""), f"an unregistered certificate: AADSTS700027 ({r.get('error_codes')})")
    # The registered thumbprint, signed with another key: a forged assertion.
    r = token_for(url, tenant, client_id, {"private_key": other_key, "thumbprint": creds["thumbprint"]}, ca)
    check(700027 in r.get("error_codes", []) and "signature validation" in r.get("error_description", ""), f"a forged assertion: AADSTS700027 signature validation ({r.get('error_codes')})")
    # Registering it makes it work.
    emu.call("POST", f"apps/{client_id}/certificates", {"pem": other_cert})
    r = token_for(url, tenant, client_id, {"private_key": other_key, "thumbprint": other_thumb}, ca)
    check("access_token" in r, "a certificate registered through the control API signs in")


def check_sign_in(url, creds, ca, emu):
    """The authorization-code flow as msal runs it: PKCE, nonce, client_info, ID token checks."""
    tenant, client_id = creds["tenant_id"], creds["client_id"]
    redirect = "http://localhost:8462/oidc/signin"
    emu.call("POST", f"apps/{client_id}/redirect-uris", {"uri": redirect})
    user = next(u for u in emu.call("GET", "directory")["users"] if u["accountEnabled"] and u["userType"] == "Member")
    app = msal_app(url, tenant, client_id, creds["client_secret"], ca)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=redirect, login_hint=user["userPrincipalName"], response_mode="query")
    r = httpx.get(flow["auth_uri"], verify=emu.ctx, follow_redirects=False)
    check(r.status_code == 302 and r.headers["location"].startswith(redirect), f"authorize redirects back with a code ({r.status_code})")
    params = dict(httpx.URL(r.headers["location"]).params)
    result = app.acquire_token_by_auth_code_flow(flow, params)
    claims = result.get("id_token_claims", {})
    check("id_token" in result and claims.get("oid") == user["id"] and claims.get("tid") == tenant,
          f"msal redeems the code: ID token with oid and tid ({result.get('error_description', 'ok')[:100]})")
    check(claims.get("preferred_username") == user["userPrincipalName"] and claims.get("sub") not in (None, user["id"]),
          "preferred_username is the UPN, sub is pairwise (not the object id)")
    check(claims.get("iss") == f"https://login.microsoftonline.com/{tenant}/v2.0" and claims.get("nonce") == hashlib.sha256(flow["nonce"].encode()).hexdigest(),
          "iss is Microsoft's for the tenant and the nonce msal sent (its hash) comes back")
    again = app.acquire_token_by_authorization_code(params["code"], ["User.Read"], redirect_uri=redirect)
    check(54005 in again.get("error_codes", []), f"a code redeems once (AADSTS54005: {again.get('error_codes')})")
    keys = httpx.get(f"{url}/{tenant}/discovery/v2.0/keys", verify=emu.ctx).json()["keys"]
    header = json.loads(base64.urlsafe_b64decode(result["id_token"].split(".")[0] + "=="))
    check(any(k["kid"] == header["kid"] for k in keys), "the ID token's kid is in the JWKS")


def graph_client(url, tenant, client_id, secret, ca, ctx):
    cred = ClientSecretCredential(
        tenant, client_id, secret, authority=url, disable_instance_discovery=True, connection_verify=ca,
    )
    auth = AzureIdentityAuthenticationProvider(cred, scopes=[GRAPH_SCOPE])
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=ctx))
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


async def all_pages(first, builder):
    """Follows @odata.nextLink with with_url(); returns (items, pages)."""
    page, items, pages = await first, [], 0
    while True:
        pages += 1
        items.extend(page.value or [])
        if not page.odata_next_link:
            return items, pages
        check(page.odata_next_link.startswith("https://127.0.0.1"), "nextLink points at the emulator") if pages == 1 else None
        page = await builder.with_url(page.odata_next_link).get()


async def check_graph(url, creds, ca, emu):
    client = graph_client(url, creds["tenant_id"], creds["client_id"], creds["client_secret"], ca, emu.ctx)
    stats = emu.call("GET", "stats")
    fixture = emu.call("GET", "directory")
    emu.call("POST", "counts/reset")

    qp = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=USER_FIELDS, top=999)
    users, pages = await all_pages(client.users.get(RequestConfiguration(query_parameters=qp)), client.users)
    check(len(users) == stats["users"], f"users: {len(users)} listed, emulator has {stats['users']}")
    check(pages == -(-stats["users"] // 999), f"user pages of 999: {pages}")
    check(len({u.id for u in users}) == len(users), "no user twice")
    by_id = {u["id"]: u for u in fixture["users"]}
    same = all(
        u.user_principal_name == by_id[u.id]["userPrincipalName"]
        and u.mail == by_id[u.id]["mail"]
        and list(u.proxy_addresses or []) == by_id[u.id]["proxyAddresses"]
        and list(u.other_mails or []) == by_id[u.id]["otherMails"]
        and u.account_enabled == by_id[u.id]["accountEnabled"]
        and u.user_type == by_id[u.id]["userType"]
        for u in users
    )
    check(same, "every user's $select-ed fields equal the emulator's directory")
    check(any(p.startswith("SMTP:") for u in users for p in (u.proxy_addresses or [])), "proxyAddresses carry SMTP: primaries")
    check(sum(1 for u in users if u.user_type == "Guest") == stats["guests"], f"guests: {stats['guests']}")

    small = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=100)
    page = await client.users.get(RequestConfiguration(query_parameters=small))
    check(len(page.value) == 100 and page.odata_next_link, "the default property set, 100 a page, with a nextLink")
    check(page.value[0].account_enabled is None and page.value[0].user_principal_name, "without $select only the default properties come back")

    gq = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(select=["id", "displayName", "mail", "mailEnabled", "securityEnabled", "groupTypes"], top=50)
    groups, gpages = await all_pages(client.groups.get(RequestConfiguration(query_parameters=gq)), client.groups)
    check(len(groups) == stats["groups"], f"groups: {len(groups)} listed, emulator has {stats['groups']} ({gpages} pages of 50)")
    check(any("Unified" in (g.group_types or []) for g in groups), "Microsoft 365 groups have groupTypes Unified")

    # Every group's members and transitive members, with plain Graph reads and
    # azure-identity's token: msgraph-sdk's models take ~0.1 s of CPU to deserialise one
    # directory object, too slow for thousands. The SDK reads the largest groups below.
    cred = ClientSecretCredential(creds["tenant_id"], creds["client_id"], creds["client_secret"], authority=url,
                                  disable_instance_discovery=True, connection_verify=ca)
    token = cred.get_token(GRAPH_SCOPE).token
    direct_ok = transitive_ok = typed_ok = True
    member_total = transitive_total = 0
    with httpx.Client(verify=emu.ctx, headers={"Authorization": f"Bearer {token}"}) as http:
        def plain_pages(link):
            items = []
            while link:
                r = http.get(link)
                r.raise_for_status()
                body = r.json()
                items.extend(body["value"])
                link = body.get("@odata.nextLink")
            return items
        for g in groups:
            members = plain_pages(f"{url}/v1.0/groups/{g.id}/members?$select=id,userPrincipalName,mail")
            tmembers = plain_pages(f"{url}/v1.0/groups/{g.id}/transitiveMembers?$select=id,userPrincipalName,mail")
            member_total += len(members)
            transitive_total += len(tmembers)
            direct_ok &= len(members) == stats["group_members"][g.id]
            transitive_ok &= len(tmembers) == stats["group_transitive_members"][g.id]
            typed_ok &= sum(m["@odata.type"] == "#microsoft.graph.user" for m in tmembers) == stats["group_transitive_users"][g.id]
            typed_ok &= all(m["@odata.type"] in ("#microsoft.graph.user", "#microsoft.graph.group") for m in tmembers)
    check(direct_ok and member_total == stats["members"], f"azure-identity + plain reads: every group's members: {member_total}, emulator {stats['members']}")
    check(transitive_ok and transitive_total == stats["transitive_members"], f"azure-identity + plain reads: every group's transitive members: {transitive_total}, emulator {stats['transitive_members']}")
    check(typed_ok, "transitive members carry @odata.type (users and groups)")
    largest = sorted(groups, key=lambda g: -stats["group_transitive_members"][g.id])[:2]
    tq = RequestConfiguration(query_parameters=TransitiveMembersRequestBuilder.TransitiveMembersRequestBuilderGetQueryParameters(select=["id", "userPrincipalName"]))
    for g in largest:
        gb = client.groups.by_group_id(g.id)
        tmembers, tpages = await all_pages(gb.transitive_members.get(tq), gb.transitive_members)
        check(len(tmembers) == stats["group_transitive_members"][g.id] and tpages > 1,
              f"msgraph-sdk: {len(tmembers)} transitive members of a large group in {tpages} pages, typed: {sum(isinstance(m, User) for m in tmembers)} users, {sum(isinstance(m, Group) for m in tmembers)} groups")
    counts = emu.call("GET", "counts")
    check(counts["transitive_members"] > len(groups), f"large groups page their transitive members ({counts['transitive_members']} requests for {len(groups)} groups)")

    try:
        await client.users.by_user_id("00000000-0000-0000-0000-000000000000").get()
        check(False, "an unknown user is 404")
    except ODataError as e:
        check(e.response_status_code == 404 and e.error.code == "Request_ResourceNotFound", f"an unknown user: 404 Request_ResourceNotFound ({e.response_status_code})")
        check(bool(e.error.inner_error and e.error.inner_error.request_id), "the error carries innerError.request-id")

    upn = users[0].user_principal_name
    one = await client.users.by_user_id(upn).get()
    check(one.id == users[0].id, "a user by UPN")

    # Throttling: the SDK's retry handler honours 429 + Retry-After.
    emu.call("POST", "counts/reset")
    emu.call("POST", "faults", {"kind": "rate_limit", "max_per_second": 2, "retry_after_secs": 1})
    pages = await asyncio.gather(*(client.groups.get() for _ in range(8)))
    emu.call("DELETE", "faults")
    counts = emu.call("GET", "counts")
    retried = counts["groups_list"] - 8
    check(all(len(p.value) > 0 for p in pages) and retried > 0, f"429 + Retry-After: 8 concurrent reads succeed after {retried} retries")

    # Delta: a full round through msgraph-sdk, a change, the next round.
    dq = RequestConfiguration(query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=["id", "userPrincipalName"]))
    page, round_users, delta_pages = await client.users.delta.get(dq), 0, 0
    while True:
        delta_pages += 1
        round_users += len(page.value or [])
        if not page.odata_next_link:
            break
        page = await client.users.delta.with_url(page.odata_next_link).get()
    delta_link = page.odata_delta_link
    check(round_users == stats["users"] and delta_link and "deltatoken" in delta_link.lower(),
          f"delta: the first round lists {round_users} users in {delta_pages} pages and ends in a deltaLink")
    victim, renamed = users[3], users[4]
    emu.call("POST", "directory/changes", [
        {"op": "delete_user", "user": victim.id},
        {"op": "rename_upn", "user": renamed.id, "new_upn": "renamed.fidelity@example.com"},
    ])
    page = await client.users.delta.with_url(delta_link).get()
    seen = {u.id: u for u in page.value}
    check(set(seen) == {victim.id, renamed.id} and seen[renamed.id].user_principal_name == "renamed.fidelity@example.com",
          f"delta: the next round has the rename and the deletion ({len(seen)} entries)")
    removed = (seen[victim.id].additional_data or {}).get("@removed") if victim.id in seen else None
    check(removed == {"reason": "changed"}, f"delta: a soft-deleted user comes with @removed reason changed ({removed})")

    # Missing admin consent: a token without roles, Graph answers 403.
    bare = emu.call("POST", "apps", {"name": "no-consent", "roles": []})
    nc = graph_client(url, bare["tenant_id"], bare["client_id"], bare["client_secret"], ca, emu.ctx)
    try:
        await nc.users.get()
        check(False, "without admin consent Graph refuses")
    except ODataError as e:
        check(e.response_status_code == 403 and e.error.code == "Authorization_RequestDenied", f"without admin consent: 403 Authorization_RequestDenied ({e.response_status_code}, {e.error.code})")
    emu.call("PUT", f"apps/{bare['client_id']}/roles", {"roles": ["User.Read.All"]})
    nc2 = graph_client(url, bare["tenant_id"], bare["client_id"], bare["client_secret"], ca, emu.ctx)
    page = await nc2.users.get()
    check(len(page.value) > 0, "after consent to User.Read.All a new token reads users")
    try:
        await nc2.groups.get()
        check(False, "User.Read.All alone does not read groups")
    except ODataError as e:
        check(e.response_status_code == 403, f"User.Read.All alone: groups answer 403 ({e.response_status_code})")


def main():
    url, creds_file, ca = sys.argv[1:4]
    with open(creds_file) as f:
        creds = json.load(f)
    emu = Emulator(url, ca)
    check_tokens(url, creds, ca, emu)
    check_sign_in(url, creds, ca, emu)
    asyncio.run(check_graph(url, creds, ca, emu))
    if failures:
        print(f"FAILED: {len(failures)} checks: {failures}")
        sys.exit(1)
    print("PASSED: msal and msgraph-sdk against the Entra emulator")


if __name__ == "__main__":
    main()
