//! How many allocations a tenant's devices and users hold. Each device's
//! UDID and app list and each user's name were a heap block of their own
//! (three million at a million devices), and under glibc freeing them was
//! most of what dropping a 1M tenant cost (about 300 ms of a 1 s plan with
//! the drop, measured with the system allocator; the README has the
//! figures). They are now kept inline: copying a tenant allocates the same
//! few blocks at any size. Counted by `allocation-counter`, which tallies
//! this thread's calls.

use std::collections::HashMap;
use std::sync::Arc;

use provkit_policy::{AppId, AppList, Device, Tenant, Udid, User, UserId, UserName};

/// A tenant of `n` devices (both of Apple's UDID formats, three apps each,
/// nothing reported) and `n` users with login names up to 24 bytes.
fn tenant(n: usize) -> Tenant {
    let platform: Arc<str> = "iOS".into();
    let mut t = Tenant::default();
    for i in 0..n {
        let udid = if i % 2 == 0 {
            format!("00008110-{i:016X}")
        } else {
            format!("{i:040x}")
        };
        t.devices.push(Device {
            udid: udid.into(),
            platform: Arc::clone(&platform),
            user: Some(UserId(u32::try_from(i).expect("id"))),
            apps: [AppId(0), AppId(1), AppId(2)].into_iter().collect(),
            reported: Vec::new(),
        });
        t.users.push(User {
            name: format!("first.last{i}@corp.example")
                .chars()
                .take(24)
                .collect::<String>()
                .into(),
        });
    }
    t
}

fn allocations_to_copy(n: usize) -> u64 {
    let t = tenant(n);
    let mut copied = 0;
    let info = allocation_counter::measure(|| {
        let copy = t.clone();
        copied = copy.devices.len() + copy.users.len();
    });
    assert_eq!(copied, 2 * n);
    info.count_total
}

#[test]
fn a_tenant_copy_made_an_allocation_per_udid_app_list_and_name() {
    let small = allocations_to_copy(100);
    let large = allocations_to_copy(10_000);
    eprintln!("allocations to copy: 100 devices {small}, 10,000 devices {large}");
    // The vectors of devices and users and the tenant's empty parts: the
    // same at any size (before: three more for every device and user).
    assert_eq!(small, large, "100 devices: {small}, 10,000: {large}");
    assert!(small <= 4, "{small} allocations");
    // What inline costs in place: an app list no more than a Vec.
    assert_eq!(size_of::<AppList>(), size_of::<Vec<AppId>>());
    assert_eq!(size_of::<Udid>(), 48);
    assert_eq!(size_of::<UserName>(), 32);
}

#[test]
fn inline_text_reads_compares_and_serializes_as_a_str() {
    // Longer than the inline room: spills to the heap, reads the same.
    let long = "L".repeat(100);
    let u = Udid::new(&long);
    assert_eq!(u, long.as_str());
    assert_eq!(u.len(), 100);
    let name = UserName::new("Zoë Ångström, Ops 東京 team");
    assert_eq!(name.as_str(), "Zoë Ångström, Ops 東京 team");
    assert_eq!(name.to_string(), "Zoë Ångström, Ops 東京 team");
    assert_eq!(
        format!("{name:?}"),
        format!("{:?}", "Zoë Ångström, Ops 東京 team")
    );
    // Hashed as the str it holds: a map keyed by names is searched by &str.
    let mut m: HashMap<UserName, u32> = HashMap::new();
    m.insert(UserName::new("ann"), 1);
    m.insert(name.clone(), 2);
    assert_eq!(m.get("ann"), Some(&1));
    assert_eq!(m.get("Zoë Ångström, Ops 東京 team"), Some(&2));
    // Ordered as the str: byte order.
    let mut v = vec![Udid::new("b"), Udid::new("B"), Udid::new("a")];
    v.sort();
    assert_eq!(v, ["B", "a", "b"]);
    // The same JSON as a String, both ways, and a non-string is refused.
    let json = serde_json::to_string(&name).expect("json");
    assert_eq!(json, serde_json::to_string(name.as_str()).expect("json"));
    assert_eq!(serde_json::from_str::<UserName>(&json).expect("back"), name);
    assert!(serde_json::from_str::<Udid>("42").is_err());
    let apps: AppList = serde_json::from_str("[3, 1, 2, 7, 9]").expect("apps");
    assert_eq!(
        apps.as_slice(),
        [AppId(3), AppId(1), AppId(2), AppId(7), AppId(9)]
    );
    assert_eq!(serde_json::to_string(&apps).expect("json"), "[3,1,2,7,9]");
}
