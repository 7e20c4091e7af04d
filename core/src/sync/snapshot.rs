//! The directory as the last applied sync read it, kept in `directory_state` in the transaction
//! of that sync's changes: the users in scope (every user when everyone is in scope) and the
//! sync groups' membership graph. An incremental job (`incremental.rs`) starts from it,
//! re-reads what the admin log names, and hands the planner the whole directory — the same
//! input a full sync would build — so that the plan, and every rule of §3 in it, is the full
//! sync's own.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use dirsync_entity::directory_state;
use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::plan::{RemoteState, RemoteUser};
use crate::google::activity::ActivityKey;
use crate::Result;

/// The id of the only row of `directory_state`.
const ROW_ID: i32 = 1;

/// What the scope was computed from. A snapshot taken under another configuration says nothing
/// about this one: the incremental job then runs as a full sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeKey {
    /// `customer_id` as configured.
    pub customer_id: Option<String>,
    /// `domain` as configured.
    pub domain: Option<String>,
    /// `sync_groups`, lower-cased, sorted.
    pub sync_groups: Vec<String>,
}

impl ScopeKey {
    /// The key of a configuration.
    pub fn new(customer_id: Option<&str>, domain: Option<&str>, sync_groups: &[String]) -> Self {
        let mut groups: Vec<String> = sync_groups.iter().map(|g| g.to_lowercase()).collect();
        groups.sort();
        groups.dedup();
        ScopeKey {
            customer_id: customer_id.map(str::to_owned),
            domain: domain.map(str::to_owned),
            sync_groups: groups,
        }
    }
}

/// One member of a group, as scope needs it: a provider drops the members scope does not follow
/// (outside addresses, unknown kinds).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    /// A user, by id.
    User(String),
    /// A nested group, by id.
    Group(String),
    /// Everyone in the account.
    Customer,
}

/// A group reached from the sync groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Its primary address, lower-cased: the admin log names groups by address.
    pub email: String,
    /// Its direct members.
    pub members: Vec<Edge>,
}

/// The sync groups and every group reachable from them, with their direct members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    /// The sync groups' ids.
    pub roots: Vec<String>,
    /// Every group reached from them, by id.
    pub nodes: BTreeMap<String, Node>,
}

/// Who a graph puts in scope.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// The users reached.
    pub users: HashSet<String>,
    /// A `CUSTOMER` member was reached: everyone is in scope.
    pub everyone: bool,
    /// The groups reached, roots included.
    pub groups: BTreeSet<String>,
}

impl Graph {
    /// The users and groups reachable from the roots (each group followed once, so cycles end).
    pub fn reach(&self) -> Reach {
        let mut reach = Reach::default();
        let mut queue: Vec<&str> = self.roots.iter().map(String::as_str).collect();
        while let Some(id) = queue.pop() {
            if !reach.groups.insert(id.to_owned()) {
                continue;
            }
            let Some(node) = self.nodes.get(id) else {
                continue;
            };
            for e in &node.members {
                match e {
                    Edge::User(u) => {
                        reach.users.insert(u.clone());
                    }
                    Edge::Group(g) => queue.push(g),
                    Edge::Customer => reach.everyone = true,
                }
            }
        }
        reach
    }

    /// Keeps only the edges to users `keep` accepts (groups and `CUSTOMER` edges stay).
    pub fn retain_users(&mut self, keep: impl Fn(&str) -> bool) {
        for n in self.nodes.values_mut() {
            n.members
                .retain(|e| !matches!(e, Edge::User(u) if !keep(u)));
        }
    }

    /// Drops the groups no longer reachable from the roots.
    pub fn prune(&mut self) {
        let reached = self.reach().groups;
        self.nodes.retain(|id, _| reached.contains(id));
    }
}

/// The directory as a sync read it. `U` and `G` are [`RemoteUser`] and [`Graph`] when read
/// back, and references when written ([`Snapshot::encode_with`]: no copy of 100,000 users).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotOf<U, G> {
    /// The configuration it was read under.
    pub scope_key: ScopeKey,
    /// When the last full read began: every admin event before it (less a margin for clock
    /// skew, [`COVERED_MARGIN`]) is reflected in the users and the graph.
    pub full_read_at: DateTime<Utc>,
    /// Users in the account at the last full read, for the "fewer calls than a full sync" test.
    pub account_users: u64,
    /// Groups in the account at the last full read (0 without sync groups).
    pub account_groups: u64,
    /// The users in scope (everyone in the account when everyone is in scope), by id.
    pub users: Vec<U>,
    /// The membership graph; `None` without sync groups.
    pub graph: Option<G>,
}

/// The snapshot as read back.
pub type Snapshot = SnapshotOf<RemoteUser, Graph>;

/// Events this long before a full read began are taken as reflected by it; nearer ones are
/// applied again (a re-read is harmless), in case Google's clock and this server's differ.
pub const COVERED_MARGIN: chrono::Duration = chrono::Duration::seconds(60);

impl Snapshot {
    /// The text to store: this snapshot's configuration and graph with the users in scope of
    /// `remote` (what the run planned), sorted by id. A full sync's snapshot holds no users of
    /// its own until then; an incremental job's have moved into `remote`.
    pub fn encode_with(&self, remote: &RemoteState) -> String {
        let mut users: Vec<&RemoteUser> = remote
            .users
            .iter()
            .filter(|u| remote.contains(u.id.as_str()))
            .collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        let snap = SnapshotOf {
            scope_key: self.scope_key.clone(),
            full_read_at: self.full_read_at,
            account_users: self.account_users,
            account_groups: self.account_groups,
            users,
            graph: self.graph.as_ref(),
        };
        serde_json::to_string(&snap).expect("a snapshot serializes")
    }
}

/// What `directory_state` holds besides the snapshot, which only an incremental job reads
/// ([`load_snapshot`]): at 100,000 users it is megabytes.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Admin events up to here are applied.
    pub cursor: Option<DateTime<Utc>>,
    /// The newest event applied.
    pub newest_event_at: Option<DateTime<Utc>>,
    /// Activities applied within the overlap window.
    pub applied: Vec<ActivityKey>,
    /// Whether the admin log was readable at the last connection test or incremental job.
    pub events_available: Option<bool>,
    /// Why not.
    pub events_reason: Option<String>,
    /// The last incremental job applied; `None` when saved by a full job leaves it as it was.
    pub last_incremental_job_id: Option<Uuid>,
    /// Where the directory's changes are read from next
    /// ([`crate::provider::DirectoryProvider::change_marker`]; Entra's delta links, as JSON):
    /// the provider's own text, which it decodes. `None` for Google, and before the first
    /// full sync that obtained one.
    pub change_marker: Option<String>,
}

/// Repair hint for a damaged `directory_state` row.
const REPAIR_STATE: &str = "delete the directory_state row: the next full sync writes it again";

/// Reads the state (not the snapshot); an empty one before the first sync.
pub async fn load<C: ConnectionTrait>(db: &C) -> Result<State> {
    use directory_state::Column as C;
    type Row = (
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        String,
        Option<bool>,
        Option<String>,
        Option<Uuid>,
        Option<String>,
    );
    let row: Option<Row> = directory_state::Entity::find_by_id(ROW_ID)
        .select_only()
        .columns([
            C::Cursor,
            C::NewestEventAt,
            C::Applied,
            C::EventsAvailable,
            C::EventsReason,
            C::LastIncrementalJobId,
            C::DeltaLinks,
        ])
        .into_tuple()
        .one(db)
        .await?;
    let Some((cursor, newest_event_at, applied, events_available, events_reason, last, marker)) =
        row
    else {
        return Ok(State::default());
    };
    let applied = serde_json::from_str(&applied).map_err(|_| {
        crate::stored::invalid(
            "directory_state.applied",
            "a JSON list of applied activities",
            REPAIR_STATE,
        )
    })?;
    Ok(State {
        cursor,
        newest_event_at,
        applied,
        events_available,
        events_reason,
        last_incremental_job_id: last,
        change_marker: marker,
    })
}

/// Reads the snapshot; `None` before the first applied sync. Damage is an error naming the
/// repair, never an empty directory (which would plan everyone's departure).
pub async fn load_snapshot<C: ConnectionTrait>(db: &C) -> Result<Option<Snapshot>> {
    let text: Option<Option<String>> = directory_state::Entity::find_by_id(ROW_ID)
        .select_only()
        .column(directory_state::Column::Snapshot)
        .into_tuple()
        .one(db)
        .await?;
    let Some(text) = text.flatten() else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|_| {
        crate::stored::invalid(
            "directory_state.snapshot",
            "the directory as the last sync read it (JSON)",
            REPAIR_STATE,
        )
    })
}

/// Writes what a sync read and applied, with its snapshot's text (in the caller's transaction:
/// the sync's own). Whether the admin log is readable is [`record_events_access`]'s, so that a
/// connection test during a long sync is not overwritten by what the sync saw when it began.
pub async fn save<C: ConnectionTrait>(db: &C, state: State, snapshot: String) -> Result<()> {
    use directory_state::Column as C;
    let mut columns = vec![
        C::Cursor,
        C::NewestEventAt,
        C::Applied,
        C::Snapshot,
        C::DeltaLinks,
        C::UpdatedAt,
    ];
    if state.last_incremental_job_id.is_some() {
        columns.push(C::LastIncrementalJobId);
    }
    upsert(db, state, Some(snapshot), &columns).await
}

/// Records whether the admin log is readable (connection test, incremental job), and nothing
/// else of the state.
pub async fn record_events_access<C: ConnectionTrait>(
    db: &C,
    available: bool,
    reason: Option<String>,
) -> Result<()> {
    use directory_state::Column as C;
    let state = State {
        events_available: Some(available),
        events_reason: reason,
        ..State::default()
    };
    upsert(
        db,
        state,
        None,
        &[C::EventsAvailable, C::EventsReason, C::UpdatedAt],
    )
    .await
}

/// Inserts the row from `state` and `snapshot`, or updates `columns` of the existing one.
async fn upsert<C: ConnectionTrait>(
    db: &C,
    state: State,
    snapshot: Option<String>,
    columns: &[directory_state::Column],
) -> Result<()> {
    let applied = serde_json::to_string(&state.applied).expect("keys serialize");
    let row = directory_state::ActiveModel {
        id: Set(ROW_ID),
        cursor: Set(state.cursor),
        newest_event_at: Set(state.newest_event_at),
        applied: Set(applied),
        snapshot: Set(snapshot),
        events_available: Set(state.events_available),
        events_reason: Set(state.events_reason),
        last_incremental_job_id: Set(state.last_incremental_job_id),
        updated_at: Set(Utc::now()),
        delta_links: Set(state.change_marker),
    };
    directory_state::Entity::insert(row)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(directory_state::Column::Id)
                .update_columns(columns.iter().copied())
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
}
