//! HTTP handlers, one module per area of product.md §5. Handlers are thin: they prove the
//! caller's role, call into `dirsync-core`, and map the answer to a response type.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub mod api_keys;
pub mod audit;
pub mod directory;
pub mod folders;
pub mod me;
pub mod notifications;
pub mod privileges;
pub mod probes;
pub mod signin;
pub mod sync;
pub mod users;

/// Registers every route; used by the server and by `dirsync openapi`.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.configure(probes::configure);
    cfg.configure(signin::configure_root);
    cfg.service(
        utoipa_actix_web::scope("/api/v1")
            .configure(api_keys::configure)
            .configure(users::configure)
            .configure(privileges::configure)
            .configure(folders::configure)
            .configure(me::configure)
            .configure(audit::configure)
            .configure(notifications::configure)
            .configure(sync::configure)
            .configure(signin::configure)
            .configure(directory::configure),
    );
}

/// An e-mail address as the server checks it (`core::users::Email`): `local@domain`, at most 254
/// characters. Used as `value_type` so that lists of addresses declare the format of each item.
pub struct EmailAddress;

impl PartialSchema for EmailAddress {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(254))
            .into()
    }
}

impl ToSchema for EmailAddress {}

/// Paging parameters of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 500 (default 50).
    #[serde(default, deserialize_with = "crate::integer::query_opt")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> From<dirsync_core::paging::Page<T>> for Paged<T> {
    fn from(p: dirsync_core::paging::Page<T>) -> Self {
        Paged {
            items: p.items,
            next_cursor: p.next_cursor,
        }
    }
}
