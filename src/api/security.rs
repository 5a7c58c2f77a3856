//! Bearer authentication: resolves the request context once, for every operation that
//! takes a [`Bearer`].

use std::sync::Arc;

use poem::Request;
use poem_openapi::SecurityScheme;

use crate::auth::Context;
use crate::tenant::Tenants;

#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "resolve")]
pub struct Bearer(pub Context);

async fn resolve(req: &Request, bearer: poem_openapi::auth::Bearer) -> poem::Result<Context> {
    let tenants = req
        .data::<Arc<Tenants>>()
        .expect("the server puts Tenants in the request data");
    Ok(Context::from_token(tenants, &bearer.token).await?)
}
