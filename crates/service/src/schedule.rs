//! The scheduler's step: among every process serving one database, the
//! holder of the scheduler lease plans the tenant and queues what the plan
//! says (commands into the outbox, notification stages as due); the others
//! do nothing. Delivery is the connectors' and channels' work.

use chrono::{DateTime, Duration, Utc};
use provkit_store::Store;

use crate::{ServiceError, plan};

/// The lease the scheduler holds.
pub const LEASE: &str = "scheduler";

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Step {
    /// Whether this process holds the lease (and so planned).
    pub leader: bool,
    /// The lease's holder after the step.
    pub holder: String,
    /// Commands the plan has (queued now or pending from earlier).
    pub commands: usize,
    /// Notification stages due.
    pub notifications: usize,
    /// Whether it planned.
    pub planned: bool,
    /// The tenant's last change, as the store knows it (pass it back as
    /// `seen` next time).
    pub change: Option<String>,
}

/// Takes or renews the scheduler lease for `holder` until `now + ttl`;
/// when it holds the lease, and `due` or the tenant changed since the
/// change it `seen` last (any process's audited write), plans at `now` and
/// queues the plan in one transaction (commands already pending are not
/// queued again).
///
/// # Errors
/// Store failures (nothing is queued then; the next step tries again).
pub fn step(
    store: &mut dyn Store,
    holder: &str,
    now: DateTime<Utc>,
    ttl: Duration,
    due: bool,
    seen: Option<&str>,
) -> Result<Step, ServiceError> {
    let lease = store.lease(LEASE, holder, now, now + ttl)?;
    let leader = lease.holder == holder;
    let change = store.last_change()?;
    let mut out = Step {
        leader,
        holder: lease.holder,
        commands: 0,
        notifications: 0,
        planned: false,
        change,
    };
    let changed = out.change.as_deref() != seen;
    if leader && (due || changed) {
        out.planned = true;
        let view = plan::plan_and_enqueue(store, now, now)?;
        out.commands = view.commands.len();
        out.notifications = view.notifications.len();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use provkit_store::MemoryStore;

    #[test]
    fn one_leader_until_its_lease_lapses() {
        let mut store = MemoryStore::default();
        let t0 = DateTime::UNIX_EPOCH;
        let ttl = Duration::seconds(30);
        let at = |s: i64| t0 + Duration::seconds(s);
        let a = step(&mut store, "a", at(0), ttl, true, None).unwrap();
        assert!(a.leader && a.planned);
        let b = step(&mut store, "b", at(10), ttl, true, None).unwrap();
        assert!(!b.leader && !b.planned);
        assert_eq!(b.holder, "a");
        // a renews at 20 s without planning (nothing due, nothing changed);
        // b still waits at 45 s; then a stops renewing.
        let a = step(&mut store, "a", at(20), ttl, false, None).unwrap();
        assert!(a.leader && !a.planned);
        assert!(
            !step(&mut store, "b", at(45), ttl, true, None)
                .unwrap()
                .leader
        );
        let b = step(&mut store, "b", at(51), ttl, true, None).unwrap();
        assert!(b.leader, "a's lease lapsed at 50 s");
        assert!(
            !step(&mut store, "a", at(52), ttl, true, None)
                .unwrap()
                .leader
        );
        // A change by anyone makes the leader plan.
        let actor = provkit_store::Actor {
            name: "x".into(),
            at: at(53),
        };
        store
            .import_inventory(
                &serde_json::from_str(r#"{"users": ["u"]}"#).unwrap(),
                &actor,
            )
            .unwrap();
        let b = step(&mut store, "b", at(54), ttl, false, b.change.as_deref()).unwrap();
        assert!(b.planned, "changed since it last looked");
        let b = step(&mut store, "b", at(55), ttl, false, b.change.as_deref()).unwrap();
        assert!(!b.planned, "nothing new");
    }
}
