//! `/v1/integrations` and `/v1/providers`: how a partner connects to each provider.

use actix_web::{
    HttpResponse, delete as http_delete, get as http_get, patch as http_patch, post as http_post,
    web,
};
use connect_broker::auth::Scope;
use connect_broker::integrations::{self, AuthType, Changes, Inject, NewIntegration};
use connect_broker::oauth::catalog::{self, ClientAuth};
use connect_broker::secret::SecretString;
use connect_sdk::types::{
    CreateIntegration, Integration, IntegrationApi, IntegrationAuth, IntegrationInject,
    IntegrationList, Problem, Provider, ProviderList, UpdateIntegration,
};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::AppState;

/// Create an integration.
///
/// Templates from `GET /v1/providers` fill what is omitted; `custom` providers give their
/// endpoints or only an `issuer` (discovery). `client_secret` is sealed and never returned. The
/// answer names the `redirect_uri` to register at the provider.
#[utoipa::path(
    post, path = "/v1/integrations", tag = "integrations", operation_id = "create_integration",
    request_body = CreateIntegration,
    responses(
        (status = 201, description = "Created", body = Integration),
        (status = 400, description = "Malformed JSON or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 409, description = "An integration with this key exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule (or discovery failed)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_post("/integrations")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateIntegration>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Admin)?;

    let input = to_input(body)?;

    let integration = integrations::create(
        &state.db,
        &state.keys.current(),
        &state.http,
        &tenant,
        input,
        state.config.allow_private_upstreams,
    )
    .await?;

    Ok(HttpResponse::Created().json(to_wire(&state, integration)))
}

/// List integrations.
#[utoipa::path(
    get, path = "/v1/integrations", tag = "integrations", operation_id = "list_integrations",
    responses(
        (status = 200, description = "Every integration of the partner", body = IntegrationList),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_get("/integrations")]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Admin)?;

    let all = integrations::list(&state.db, &tenant).await?;

    let data = all.into_iter().map(|i| to_wire(&state, i)).collect();
    Ok(HttpResponse::Ok().json(IntegrationList {
        data,
        next_cursor: None,
    }))
}

/// Get an integration.
#[utoipa::path(
    get, path = "/v1/integrations/{key}", tag = "integrations", operation_id = "get_integration",
    params(("key" = String, Path, description = "The integration's key")),
    responses(
        (status = 200, description = "The integration", body = Integration),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 404, description = "No such integration", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_get("/integrations/{key}")]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Admin)?;

    let integration = integrations::get(&state.db, &tenant, &path).await?;

    Ok(HttpResponse::Ok().json(to_wire(&state, integration)))
}

/// Change an integration's client, scopes, API target, redirect following or injection style.
#[utoipa::path(
    patch, path = "/v1/integrations/{key}", tag = "integrations", operation_id = "update_integration",
    params(("key" = String, Path, description = "The integration's key")),
    request_body = UpdateIntegration,
    responses(
        (status = 200, description = "The updated integration", body = Integration),
        (status = 400, description = "Malformed JSON or unknown field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 404, description = "No such integration", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_patch("/integrations/{key}")]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<UpdateIntegration>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Admin)?;

    let auth = body.auth.unwrap_or_default();
    let api = body.api.unwrap_or_default();
    let changes = Changes {
        client_id: auth.client_id,
        client_secret: auth.client_secret.map(SecretString::from),
        scopes: auth.scopes,
        api_base_url: api.base_url,
        allowed_hosts: api.allowed_hosts,
        follow_redirects: api.follow_redirects,
        inject: body.inject.map(to_inject).transpose()?,
    };

    let integration = integrations::update(
        &state.db,
        &state.keys.current(),
        &tenant,
        &path,
        changes,
        state.config.allow_private_upstreams,
    )
    .await?;

    Ok(HttpResponse::Ok().json(to_wire(&state, integration)))
}

/// Delete an integration that no active connection uses.
#[utoipa::path(
    delete, path = "/v1/integrations/{key}", tag = "integrations", operation_id = "delete_integration",
    params(("key" = String, Path, description = "The integration's key")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
        (status = 403, description = "The key lacks the admin scope", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge with error=\"insufficient_scope\" and the scope needed"))),
        (status = 404, description = "No such integration", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Connections still use it", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["admin"]))
)]
#[http_delete("/integrations/{key}")]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = caller.require(Scope::Admin)?;

    integrations::delete(&state.db, &tenant, &path).await?;

    Ok(HttpResponse::NoContent().finish())
}

/// List the built-in provider templates.
#[utoipa::path(
    get, path = "/v1/providers", tag = "integrations", operation_id = "list_providers",
    responses(
        (status = 200, description = "The catalog", body = ProviderList),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "Bearer challenge, with error=\"invalid_token\" for a bad key"))),
    ),
    security(("api_key" = []))
)]
#[http_get("/providers")]
pub async fn providers(_caller: Caller) -> HttpResponse {
    let data = catalog::all()
        .iter()
        .map(|t| Provider {
            key: t.key.into(),
            name: t.name.into(),
            authorization_url: t.authorization_url.into(),
            token_url: t.token_url.into(),
            revocation_url: t.revocation_url.map(Into::into),
            scope_separator: t.scope_separator.into(),
            pkce: t.pkce,
            token_auth: client_auth_name(t.client_auth).into(),
            default_scopes: t.default_scopes.iter().map(|s| (*s).to_owned()).collect(),
            api_base_url: t.api_base_url.into(),
            allowed_hosts: t.allowed_hosts.iter().map(|h| (*h).to_owned()).collect(),
        })
        .collect();
    HttpResponse::Ok().json(ProviderList {
        data,
        next_cursor: None,
    })
}

fn client_auth_name(auth: ClientAuth) -> &'static str {
    match auth {
        ClientAuth::ClientSecretBasic => "client_secret_basic",
        ClientAuth::ClientSecretPost => "client_secret_post",
    }
}

fn to_input(body: CreateIntegration) -> Result<NewIntegration, ApiError> {
    let invalid =
        |field: &str, reason: &str| ApiError::from(connect_broker::Error::invalid(field, reason));
    let auth_type = match body.auth.auth_type.as_deref() {
        None | Some("oauth2") => Some(AuthType::Oauth2),
        Some("api_key") => Some(AuthType::ApiKey),
        Some(_) => return Err(invalid("auth.type", "must be oauth2 or api_key")),
    };
    let token_auth = match body.auth.token_auth.as_deref() {
        None => None,
        Some("client_secret_basic") => Some(ClientAuth::ClientSecretBasic),
        Some("client_secret_post") => Some(ClientAuth::ClientSecretPost),
        Some(_) => {
            return Err(invalid(
                "auth.token_auth",
                "must be client_secret_basic or client_secret_post",
            ));
        }
    };
    let inject = match body.inject {
        None => None,
        Some(IntegrationInject { style, name }) => Some(match (style.as_str(), name) {
            ("bearer", None) => Inject::Bearer,
            ("basic", None) => Inject::Basic,
            ("header", Some(name)) => Inject::Header { name },
            ("query", Some(name)) => Inject::Query { name },
            _ => {
                return Err(invalid(
                    "inject",
                    "style is bearer or basic, or header or query with a name",
                ));
            }
        }),
    };
    Ok(NewIntegration {
        key: body.key,
        provider: body.provider,
        auth_type,
        client_id: body.auth.client_id,
        client_secret: body.auth.client_secret.map(SecretString::from),
        scopes: body.auth.scopes,
        authorization_url: body.auth.authorization_url,
        token_url: body.auth.token_url,
        revocation_url: body.auth.revocation_url,
        issuer: body.auth.issuer,
        scope_separator: body.auth.scope_separator,
        pkce: body.auth.pkce,
        token_auth,
        token_path: body.auth.token_path,
        api_base_url: body.api.base_url,
        allowed_hosts: body.api.allowed_hosts,
        follow_redirects: body.api.follow_redirects,
        inject,
    })
}

fn to_inject(inject: IntegrationInject) -> Result<Inject, ApiError> {
    Ok(match (inject.style.as_str(), inject.name) {
        ("bearer", None) => Inject::Bearer,
        ("basic", None) => Inject::Basic,
        ("header", Some(name)) => Inject::Header { name },
        ("query", Some(name)) => Inject::Query { name },
        _ => {
            let reason = "style is bearer or basic, or header or query with a name";
            return Err(connect_broker::Error::invalid("inject", reason).into());
        }
    })
}

fn to_wire(state: &AppState, integration: integrations::Integration) -> Integration {
    let auth = match &integration.oauth {
        Some(o) => IntegrationAuth {
            auth_type: Some("oauth2".into()),
            client_id: Some(o.client_id.clone()),
            client_secret: None,
            scopes: Some(o.scopes.clone()),
            authorization_url: Some(o.authorization_url.clone()),
            token_url: Some(o.token_url.clone()),
            revocation_url: o.revocation_url.clone(),
            issuer: o.issuer.clone(),
            scope_separator: Some(o.scope_separator.clone()),
            pkce: Some(o.pkce),
            token_auth: Some(client_auth_name(o.token_auth).into()),
            token_path: o.token_path.clone(),
        },
        None => IntegrationAuth {
            auth_type: Some("api_key".into()),
            ..IntegrationAuth::default()
        },
    };
    let inject = match integration.inject {
        Inject::Bearer => IntegrationInject {
            style: "bearer".into(),
            name: None,
        },
        Inject::Basic => IntegrationInject {
            style: "basic".into(),
            name: None,
        },
        Inject::Header { name } => IntegrationInject {
            style: "header".into(),
            name: Some(name),
        },
        Inject::Query { name } => IntegrationInject {
            style: "query".into(),
            name: Some(name),
        },
    };
    Integration {
        redirect_uri: integrations::redirect_uri(
            &state.config.public_url,
            &integration.partner_id,
            &integration.key,
        ),
        created_at: super::time(integration.created_at),
        key: integration.key,
        provider: integration.provider,
        auth,
        api: IntegrationApi {
            base_url: Some(integration.api_base_url),
            allowed_hosts: Some(integration.allowed_hosts),
            follow_redirects: Some(integration.follow_redirects),
        },
        inject,
    }
}
