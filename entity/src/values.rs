//! The enums that columns store by name. Each name is written once, in [`stored_enum!`], and
//! serves the database, serde (the wire), the OpenAPI schema (feature `openapi`) and `as_str`,
//! so that they cannot drift apart. The first doc line of each enum is its schema description.
//!
//! A stored name that is none of the enum's is an error naming the column
//! ([`Undecodable`], inside [`DbErr::TryIntoErr`]), never a default: read as a default, a
//! damaged `users.auth_method` would let a directory user escape the sync, a damaged
//! `api_keys.role` would hand out a role nobody granted. This is why these enums implement
//! SeaORM's value traits themselves rather than derive `DeriveActiveEnum`, whose decoding error
//! is a message naming neither the column nor a type that the core could match on.
//!
//! Text columns that hold JSON are typed the same way ([`JsonText`], [`Fields`]): both databases
//! store them as `TEXT`, which SeaORM's `FromJsonQueryResult` (made for JSON column types) does
//! not promise to decode on PostgreSQL, and a text that does not decode is again an
//! [`Undecodable`] naming the column. The stored text is what `serde_json` writes, as before.

use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, StringLen, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, QueryResult, TryGetError, TryGetable, Value};

/// A stored value that does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// `table.column`.
    pub column: &'static str,
    /// What would have decoded, e.g. `one of local, directory`.
    pub expected: String,
    /// The stored text.
    pub found: String,
}

impl std::fmt::Display for Undecodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} holds {:?}, expected {}",
            self.column, self.found, self.expected
        )
    }
}

impl std::error::Error for Undecodable {}

impl Undecodable {
    /// The error a query returns for it.
    pub fn into_db_err(self) -> DbErr {
        DbErr::TryIntoErr {
            from: "stored text",
            into: self.column,
            source: Box::new(self),
        }
    }

    /// The decoding failure a query error carries, if it is one.
    pub fn of(err: &DbErr) -> Option<&Undecodable> {
        match err {
            DbErr::TryIntoErr { source, .. } => source.downcast_ref(),
            _ => None,
        }
    }
}

/// A name given by a person that names no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What was named, e.g. `role`.
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The valid names: `a, b, c`.
    pub valid: String,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown {} {:?}; valid values are {}",
            self.what, self.name, self.valid
        )
    }
}

impl std::error::Error for UnknownName {}

/// Declares an enum stored by name in one column (`table.column`): the names are given once,
/// and feed serde, utoipa, `as_str`, `from_name` and SeaORM's value traits. The names are
/// `tt`, not `literal`: a `literal` fragment reaches derive macros wrapped in an invisible
/// group, which serde reads but utoipa silently ignores (the schema showed the variant names).
/// Each use derives `ToSchema` itself (`#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]`
/// among its attributes), so that one whose schema lists the names in another order than the
/// declaration ([`Role`]) can build it from the same names by hand.
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident in $column:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:tt, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The column that stores it (`table.column`).
            pub const COLUMN: &'static str = $column;

            /// The name, on the wire and in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value called `name`, if any.
            pub fn from_name(name: &str) -> Option<$name> {
                match name {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Parses a name given by a person (a command-line argument), with an error that
            /// lists the valid ones.
            pub fn parse(name: &str) -> Result<$name, UnknownName> {
                $name::from_name(name).ok_or_else(|| UnknownName {
                    what: $column.rsplit('.').next().unwrap_or($column),
                    name: name.to_owned(),
                    valid: $name::names(),
                })
            }

            /// The names, for messages: `a, b, c`.
            pub fn names() -> String {
                [$($text),+].join(", ")
            }

            fn decode(found: String) -> Result<$name, Undecodable> {
                $name::from_name(&found).ok_or_else(|| Undecodable {
                    column: $column,
                    expected: format!("one of {}", $name::names()),
                    found,
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$name> for Value {
            fn from(v: $name) -> Value {
                Value::String(Some(Box::new(v.as_str().to_owned())))
            }
        }

        impl TryGetable for $name {
            fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
                $name::decode(String::try_get_by(res, idx)?)
                    .map_err(|e| TryGetError::DbErr(e.into_db_err()))
            }
        }

        impl ValueType for $name {
            fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
                match v {
                    Value::String(Some(s)) => $name::from_name(&s).ok_or(ValueTypeErr),
                    _ => Err(ValueTypeErr),
                }
            }
            fn type_name() -> String {
                stringify!($name).to_owned()
            }
            fn array_type() -> ArrayType {
                ArrayType::String
            }
            fn column_type() -> ColumnType {
                ColumnType::String(StringLen::None)
            }
        }

        impl Nullable for $name {
            fn null() -> Value {
                Value::String(None)
            }
        }
    };
}

stored_enum! {
    /// How a user signs in, and who manages it.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum AuthMethod in "users.auth_method" {
        /// Managed here; may have a password.
        Local = "local",
        /// Managed by Google Workspace through the sync ("Directory Services"); signs in with
        /// Google.
        Directory = "directory",
    }
}

stored_enum! {
    /// The kind of a stored address.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum EmailKind in "user_emails.kind" {
        /// The user's primary address; listed first.
        Primary = "primary",
        /// Another address of the user (Google's editable and non-editable aliases alike).
        Alias = "alias",
    }
}

stored_enum! {
    /// What a caller may do. Ordered: each role includes the ones below it.
    pub enum Role in "api_keys.role" {
        /// Read users, privileges, lookup.
        Reader = "reader",
        /// Also read configuration, run and read sync jobs.
        Operator = "operator",
        /// Everything.
        Admin = "admin",
    }
}

/// The schema of [`Role`] is built by hand for one reason: the API lists the roles strongest
/// first (`admin, operator, reader`) and calls the enum `RoleName`, while the declaration runs
/// weakest first so that the derived order means "includes". The names are still the table's.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Role {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A role."))
            .enum_values(Some(Role::ALL.iter().rev().map(|r| r.as_str())))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Role {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("RoleName")
    }
}

stored_enum! {
    /// Job states: `queued` and `running` are active, the others final.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum JobStatus in "sync_jobs.status" {
        /// Waiting for a worker.
        Queued = "queued",
        /// A worker holds its lease.
        Running = "running",
        /// Done; for a real run, the changes are written.
        Succeeded = "succeeded",
        /// Ended by an error; nothing written.
        Failed = "failed",
        /// Too many deletions planned; nothing written, the plan kept.
        Blocked = "blocked",
        /// Cancelled; nothing written.
        Cancelled = "cancelled",
    }
}

impl JobStatus {
    /// True for the final states.
    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

stored_enum! {
    /// How a job was started.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum Trigger in "sync_jobs.trigger" {
        /// Through the HTTP API.
        Api = "api",
        /// By the schedule.
        Schedule = "schedule",
        /// By `dirsync sync`.
        Cli = "cli",
    }
}

stored_enum! {
    /// What a job reads: the whole directory, or only what the admin log says changed.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum JobKind in "sync_jobs.kind" {
        /// Every user and the sync groups' members, as every sync did before incremental sync.
        Full = "full",
        /// The objects named by the admin log since the cursor, re-read from the Directory API.
        Incremental = "incremental",
    }
}

stored_enum! {
    /// Where a running job is.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum Phase in "sync_jobs.phase" {
        /// Reading the admin log (an incremental job).
        ReadingEvents = "reading_events",
        /// Paging through the directory's users.
        FetchingUsers = "fetching_users",
        /// Reading the sync groups.
        FetchingGroups = "fetching_groups",
        /// Reading the groups' members.
        FetchingMembers = "fetching_members",
        /// Comparing Google with the local users.
        Planning = "planning",
        /// Writing the plan.
        Applying = "applying",
    }
}

stored_enum! {
    /// Kinds of change.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum ChangeKind in "sync_changes.kind" {
        /// A new directory user.
        Create = "create",
        /// A user's name, addresses or link changed.
        Update = "update",
        /// A user removed.
        Delete = "delete",
        /// A user suspended or archived in Google.
        Disable = "disable",
        /// A user active again in Google.
        Enable = "enable",
        /// A deleted user's archive folder kept because it holds messages.
        FolderKept = "folder_kept",
        /// A Google user (or one of its addresses) that clashes with another user.
        Conflict = "conflict",
        /// An out-of-scope user kept because it holds `admin`.
        KeptAdmin = "kept_admin",
        /// A directory user no longer in scope, left alone (`auto_delete_users` is off).
        OutOfScope = "out_of_scope",
    }
}

stored_enum! {
    /// Where users come from.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum Provider in "directory_config.provider" {
        /// Google Workspace through the Directory API.
        GoogleWorkspace = "google_workspace",
        /// Microsoft Entra ID (Microsoft 365) through Microsoft Graph.
        MicrosoftEntra = "microsoft_entra",
        /// No directory: only local users.
        None = "none",
    }
}

stored_enum! {
    /// How dirsync proves itself to Microsoft Entra ID: the app registration's credential.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum EntraCredentialKind in "directory_config.entra_credential_kind" {
        /// A client secret (expires; Microsoft prefers certificates).
        ClientSecret = "client_secret",
        /// A certificate whose private key signs a client assertion.
        Certificate = "certificate",
    }
}

stored_enum! {
    /// An auth test's state.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum AuthTestStatus in "auth_tests.status" {
        /// Waiting for the user to sign in.
        Pending = "pending",
        /// The user signed in as expected.
        Succeeded = "succeeded",
        /// The sign-in failed, or the test expired; `reason` says why.
        Failed = "failed",
    }
}

stored_enum! {
    /// A privilege (product.md §1).
    // Stored by name in `user_privileges.privilege` and in the JSON list
    // `directory_config.default_privileges`; both are read as text and a name this version does
    // not know (written by a newer one) is skipped, granting less, never more. Ordered as listed
    // in product.md; lists are answered in that order. The doc line above is the OpenAPI
    // description of `PrivilegeName`, the name the API has always given this enum.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = PrivilegeName))]
    pub enum Privilege in "user_privileges.privilege" {
        /// Administers dirsync and the archive server; a signed-in user holding it acts as `admin`.
        Admin = "admin",
        /// May sign in.
        Login = "login",
        /// May change its own password.
        ChangePassword = "change_password",
        /// May archive e-mail.
        ArchiveEmail = "archive_email",
        /// May modify archive profiles.
        ModifyArchiveProfiles = "modify_archive_profiles",
        /// May delete archive profiles.
        DeleteArchiveProfiles = "delete_archive_profiles",
        /// May export e-mail.
        ExportEmail = "export_email",
        /// May modify export profiles.
        ModifyExportProfiles = "modify_export_profiles",
        /// May delete export profiles.
        DeleteExportProfiles = "delete_export_profiles",
        /// May delete archived e-mail.
        DeleteEmail = "delete_email",
    }
}

stored_enum! {
    /// Access to an archive folder.
    // Stored by name in the JSON list `directory_config.default_folder_access` (a user's own
    // access is three booleans of `folder_access`), read as `Privilege` is.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AccessName))]
    pub enum Access in "directory_config.default_folder_access" {
        /// Read the archived messages.
        Read = "read",
        /// Add messages.
        Write = "write",
        /// Delete messages.
        Delete = "delete",
    }
}

stored_enum! {
    /// What an endpoint is told about.
    // Stored by name in `notification_deliveries.event_type` and in the JSON list
    // `notification_endpoints.events`. The delivery column stays text: the sender passes the name
    // on as it is (a newer version's event included); the delivery log decodes it. Its doc
    // comments are the OpenAPI descriptions.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum EventType in "notification_deliveries.event_type" {
        /// A sync job failed.
        SyncFailed = "sync.failed",
        /// A sync job was blocked by the deletion limit.
        SyncBlocked = "sync.blocked",
        /// A sync job succeeded (with `only_when_changed`: only a real run that changed a user).
        SyncSucceeded = "sync.succeeded",
        /// A connection test failed.
        // (`POST /api/v1/directory/test`)
        DirectoryTestFailed = "directory.test_failed",
    }
}

stored_enum! {
    /// Where a delivery is.
    // Stored in `notification_deliveries.status`, read as text by the sender's queries (which
    // compare it with `pending`) and decoded by the delivery log. Its doc comments are the
    // OpenAPI descriptions.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum DeliveryStatus in "notification_deliveries.status" {
        /// Not delivered yet; another attempt will be made.
        // (at `next_attempt_at`)
        Pending = "pending",
        /// An attempt was answered with a 2xx.
        Delivered = "delivered",
        /// Every attempt failed, or the endpoint was removed.
        Failed = "failed",
    }
}

/// A value stored as JSON text in one column: what [`JsonText`] needs to name that column when
/// the text does not decode.
pub trait StoredJson: serde::Serialize + serde::de::DeserializeOwned {
    /// `table.column`.
    const COLUMN: &'static str;
    /// What the text should be, for the error: `a JSON job summary`.
    const EXPECTED: &'static str;
}

/// A column of JSON text, decoded into `T` when read and written as `serde_json` writes `T`. A
/// text that does not decode fails the query with [`Undecodable`] (never a default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText<T>(pub T);

impl<T: StoredJson> JsonText<T> {
    /// The decoded value.
    pub fn into_inner(self) -> T {
        self.0
    }

    /// Decodes stored text as the column does, for a reader that reads the text itself to pass
    /// over one row that does not decode instead of failing with it.
    pub fn decode(text: String) -> Result<JsonText<T>, Undecodable> {
        serde_json::from_str(&text)
            .map(JsonText)
            .map_err(|_| undecodable_json(T::COLUMN, T::EXPECTED, text))
    }
}

/// The error for JSON text that does not decode. The text is cut short: unlike an enum's name,
/// it may be long.
fn undecodable_json(column: &'static str, expected: &str, mut text: String) -> Undecodable {
    const SHOWN: usize = 100;
    if let Some((cut, _)) = text.char_indices().nth(SHOWN) {
        text.truncate(cut);
        text.push('…');
    }
    Undecodable {
        column,
        expected: expected.to_owned(),
        found: text,
    }
}

impl<T: StoredJson> From<JsonText<T>> for Value {
    fn from(v: JsonText<T>) -> Value {
        let text = serde_json::to_string(&v.0).expect("a StoredJson value serializes");
        Value::String(Some(Box::new(text)))
    }
}

impl<T: StoredJson> TryGetable for JsonText<T> {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        JsonText::decode(String::try_get_by(res, idx)?)
            .map_err(|e| TryGetError::DbErr(e.into_db_err()))
    }
}

impl<T: StoredJson> ValueType for JsonText<T> {
    fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
        match v {
            Value::String(Some(s)) => JsonText::decode(*s).map_err(|_| ValueTypeErr),
            _ => Err(ValueTypeErr),
        }
    }
    fn type_name() -> String {
        format!("JsonText<{}>", std::any::type_name::<T>())
    }
    fn array_type() -> ArrayType {
        ArrayType::String
    }
    fn column_type() -> ColumnType {
        ColumnType::Text
    }
}

impl<T: StoredJson> Nullable for JsonText<T> {
    fn null() -> Value {
        Value::String(None)
    }
}

/// The details of an audit entry (`audit_events.details`): any JSON value, an object as
/// written, secrets already redacted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct AuditDetails(pub serde_json::Value);

impl StoredJson for AuditDetails {
    const COLUMN: &'static str = "audit_events.details";
    const EXPECTED: &'static str = "a JSON value";
}

/// The events a notification endpoint is sent (`notification_endpoints.events`), sorted.
impl StoredJson for Vec<EventType> {
    const COLUMN: &'static str = "notification_endpoints.events";
    const EXPECTED: &'static str = "a JSON list of event types";
}

/// Counts per change kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = JobSummary))]
pub struct Summary {
    /// Users created.
    pub created: u64,
    /// Users updated.
    pub updated: u64,
    /// Users deleted.
    pub deleted: u64,
    /// Users disabled (suspended or archived in Google).
    pub disabled: u64,
    /// Users enabled again.
    pub enabled: u64,
    /// In-scope users already up to date.
    pub unchanged: u64,
    /// Conflicts reported and skipped.
    pub conflicts: u64,
    /// Archive folders kept for deleted users.
    pub folders_kept: u64,
    /// Out-of-scope admins kept.
    pub kept_admin: u64,
    /// Out-of-scope users left alone.
    pub out_of_scope: u64,
}

/// A job's counts, once planned (`sync_jobs.summary`).
impl StoredJson for Summary {
    const COLUMN: &'static str = "sync_jobs.summary";
    const EXPECTED: &'static str = "a JSON job summary";
}

/// A change's fields, name → `[old, new]`, held as the JSON object text stored with the change
/// in `sync_changes.fields` (`{"full_name":["Old","New"],…}`, sorted by name). A plan holds one
/// per created user: one string is a fifth of the memory of a map of JSON values, which matters
/// at 100,000 users. It always holds JSON: built by [`Fields::from_pairs`], or read from the
/// column, where a text that is not JSON fails the query with [`Undecodable`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Box<str>);

impl Fields {
    const COLUMN: &'static str = "sync_changes.fields";
    const EXPECTED: &'static str = "a JSON object of fields";

    /// No fields.
    pub fn new() -> Fields {
        Fields::default()
    }

    /// The fields of `pairs`, sorted by name (names are distinct).
    pub fn from_pairs(mut pairs: Vec<(&'static str, [serde_json::Value; 2])>) -> Fields {
        use serde_json::Value;
        if pairs.is_empty() {
            return Fields::new();
        }
        pairs.sort_by_key(|(name, _)| *name);
        let map: serde_json::Map<String, Value> = pairs
            .into_iter()
            .map(|(name, [old, new])| (name.to_string(), Value::Array(vec![old, new])))
            .collect();
        Fields(Value::Object(map).to_string().into_boxed_str())
    }

    /// True when no field changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The JSON object text (`{}` when no field changed).
    pub fn as_json(&self) -> &str {
        if self.0.is_empty() {
            "{}"
        } else {
            &self.0
        }
    }

    /// The fields as a JSON value (what the API shows).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.as_json()).expect("Fields always hold JSON")
    }

    fn decode(text: String) -> Result<Fields, Undecodable> {
        if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_err() {
            return Err(undecodable_json(Fields::COLUMN, Fields::EXPECTED, text));
        }
        Ok(if text == "{}" {
            Fields::new()
        } else {
            Fields(text.into_boxed_str())
        })
    }
}

impl From<Fields> for Value {
    fn from(f: Fields) -> Value {
        let text = if f.is_empty() {
            "{}".to_owned()
        } else {
            f.0.into_string()
        };
        Value::String(Some(Box::new(text)))
    }
}

impl TryGetable for Fields {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        Fields::decode(String::try_get_by(res, idx)?)
            .map_err(|e| TryGetError::DbErr(e.into_db_err()))
    }
}

impl ValueType for Fields {
    fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
        match v {
            Value::String(Some(s)) => Fields::decode(*s).map_err(|_| ValueTypeErr),
            _ => Err(ValueTypeErr),
        }
    }
    fn type_name() -> String {
        "Fields".to_owned()
    }
    fn array_type() -> ArrayType {
        ArrayType::String
    }
    fn column_type() -> ColumnType {
        ColumnType::Text
    }
}

impl Nullable for Fields {
    fn null() -> Value {
        Value::String(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T>(all: &[T], name: fn(T) -> &'static str)
    where
        T: Copy + PartialEq + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
        T: ValueType + Into<Value>,
    {
        for k in all {
            let json = serde_json::to_value(k).unwrap();
            assert_eq!(json, name(*k));
            assert_eq!(serde_json::from_value::<T>(json).unwrap(), *k);
            assert_eq!(<T as ValueType>::try_from((*k).into()).unwrap(), *k);
        }
    }

    #[test]
    fn every_name_round_trips_through_serde_and_the_database_value() {
        round_trip(AuthMethod::ALL, AuthMethod::as_str);
        round_trip(EmailKind::ALL, EmailKind::as_str);
        round_trip(Role::ALL, Role::as_str);
        round_trip(JobStatus::ALL, JobStatus::as_str);
        round_trip(Trigger::ALL, Trigger::as_str);
        round_trip(Phase::ALL, Phase::as_str);
        round_trip(JobKind::ALL, JobKind::as_str);
        round_trip(ChangeKind::ALL, ChangeKind::as_str);
        round_trip(Provider::ALL, Provider::as_str);
        round_trip(EntraCredentialKind::ALL, EntraCredentialKind::as_str);
        round_trip(AuthTestStatus::ALL, AuthTestStatus::as_str);
        round_trip(Privilege::ALL, Privilege::as_str);
        round_trip(Access::ALL, Access::as_str);
        round_trip(EventType::ALL, EventType::as_str);
        round_trip(DeliveryStatus::ALL, DeliveryStatus::as_str);
    }

    #[test]
    fn json_text_round_trips_as_serde_json_writes_it() {
        let summary = Summary {
            created: 2,
            conflicts: 1,
            ..Summary::default()
        };
        let value: Value = JsonText(summary).into();
        assert_eq!(
            value,
            Value::String(Some(Box::new(serde_json::to_string(&summary).unwrap())))
        );
        assert_eq!(
            <JsonText<Summary> as ValueType>::try_from(value).unwrap(),
            JsonText(summary)
        );
        let events = vec![EventType::SyncFailed, EventType::DirectoryTestFailed];
        let value: Value = JsonText(events.clone()).into();
        assert_eq!(
            value,
            Value::String(Some(Box::new(
                r#"["sync.failed","directory.test_failed"]"#.into()
            )))
        );
        assert_eq!(
            <JsonText<Vec<EventType>> as ValueType>::try_from(value).unwrap(),
            JsonText(events)
        );
    }

    #[test]
    fn json_text_that_does_not_decode_is_undecodable_naming_the_column() {
        let err = JsonText::<Summary>::decode(r#"{"created":"#.into()).unwrap_err();
        assert_eq!(err.column, "sync_jobs.summary");
        assert_eq!(err.expected, "a JSON job summary");
        assert_eq!(err.found, r#"{"created":"#);
        let long = format!("[{}", "1,".repeat(200));
        let err = JsonText::<AuditDetails>::decode(long).unwrap_err();
        assert_eq!(err.column, "audit_events.details");
        assert_eq!(
            err.found.chars().count(),
            101,
            "cut to 100 characters and an ellipsis"
        );
        let err = Fields::decode("full_name".into()).unwrap_err();
        assert_eq!(err.column, "sync_changes.fields");
    }

    #[test]
    fn fields_are_stored_as_their_json_text() {
        let f = Fields::from_pairs(vec![
            (
                "full_name",
                [serde_json::json!("Old"), serde_json::json!("New")],
            ),
            (
                "disabled",
                [serde_json::json!(false), serde_json::json!(true)],
            ),
        ]);
        let text = r#"{"disabled":[false,true],"full_name":["Old","New"]}"#;
        assert_eq!(f.as_json(), text);
        let value: Value = f.clone().into();
        assert_eq!(value, Value::String(Some(Box::new(text.into()))));
        assert_eq!(<Fields as ValueType>::try_from(value).unwrap(), f);
        let none: Value = Fields::new().into();
        assert_eq!(none, Value::String(Some(Box::new("{}".into()))));
        assert_eq!(
            <Fields as ValueType>::try_from(none).unwrap(),
            Fields::new()
        );
    }

    #[test]
    fn an_unknown_name_is_undecodable_naming_the_column() {
        let err = AuthMethod::decode("Directory".into()).unwrap_err();
        assert_eq!(err.column, "users.auth_method");
        assert_eq!(err.expected, "one of local, directory");
        let db = err.clone().into_db_err();
        assert_eq!(Undecodable::of(&db), Some(&err));
    }
}
